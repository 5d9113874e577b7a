"""The benchmark keeps working: one ``--quick`` run (tiny sizes) in a subprocess.

Never asserts a timing: only that every figure is produced, the table is printed, the JSON is
complete and every record of the throughput runs reached the receiver.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
#: A quick run takes 10-20 s on 2 busy cores; past this it is stuck, not slow.
RUN_TIMEOUT = 90.0

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


@dataclass(frozen=True)
class QuickRun:
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any]
    chart: Path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    out_dir = tmp_path_factory.mktemp("bench")
    out, chart = out_dir / "latest.json", out_dir / "chart.png"
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out), "--chart", str(chart)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    result = json.loads(out.read_text()) if out.exists() else {}
    return QuickRun(done.returncode, done.stdout, done.stderr, result, chart)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_run_exits_cleanly(quick_run: QuickRun) -> None:
    """``run.py --quick`` exits 0 and says it was a quick run."""
    assert 0 == quick_run.returncode, quick_run.stderr[-3000:]
    assert True is quick_run.result["quick"]


def test_table_names_every_figure(quick_run: QuickRun) -> None:
    """The printed table has a row for each of the eight figures and the targets."""
    labels = [
        "1 caller overhead",
        "2 throughput",
        "3 memory",
        "4 wire",
        "5 exit",
        "6 import",
        "7 scaling",
        "8 stdlib logging",
        "targets",
    ]
    missing = [label for label in labels if label not in quick_run.stdout]
    assert [] == missing


def test_json_records_machine_versions_and_date(quick_run: QuickRun) -> None:
    """The JSON names the CPU, the core count, the library versions, the date and the receiver."""
    result = quick_run.result
    assert {"cpu", "cores", "platform"} <= set(result["machine"])
    versions = result["versions"]
    assert [] == [k for k in ("python", "loguru", "orjson", "urllib3") if not versions[k]]
    assert result["date"].startswith("20")
    assert result["receiver"]["kind"] in ("real", "fake")


def test_json_has_every_figure_as_a_number(quick_run: QuickRun) -> None:
    """Each figure of the issue is present as a finite number."""
    f = quick_run.result["figures"]
    values = {
        "caller vlogs_us": f["caller_overhead"]["vlogs_us"],
        "caller noop_us": f["caller_overhead"]["noop_us"],
        "caller ratio": f["caller_overhead"]["ratio"],
        "throughput vlogs": f["throughput"]["vlogs"]["rps"],
        "throughput tail": f["throughput"]["vlogs"]["tail_ms"],
        "sent while logging": f["throughput"]["vlogs"]["sent_while_logging"],
        "same, GIL yields off": f["throughput"]["vlogs_gil_yields_off"]["sent_while_logging"],
        "sustained, sent": f["sustained"]["yields_on"]["sent"],
        "sustained off, sent": f["sustained"]["yields_off"]["sent"],
        "throughput file": f["throughput"]["loguru_serialize_file"]["rps"],
        "memory per record": f["memory"]["rss_bytes_per_record"],
        "memory line": f["memory"]["line_bytes"],
        "memory ratio": f["memory"]["ratio"],
        "wire gzip": f["wire"]["gzip"]["bytes_per_record"],
        "wire none": f["wire"]["none"]["bytes_per_record"],
        "wire ratio": f["wire"]["ratio_none_over_default"],
        "exit up": f["exit"]["up_overhead_ms"],
        "exit down": f["exit"]["down_overhead_ms"],
        "import": f["import"]["loguru_vlogs_ms"],
        "stdlib VLogsHandler us": f["stdlib"]["vlogs_us"],
        "stdlib no-op handler us": f["stdlib"]["noop_us"],
        "stdlib VLogsHandler cpu us": f["stdlib"]["vlogs_cpu_us"],
        "stdlib VLogsHandler rps": f["stdlib"]["vlogs_throughput"]["rps"],
    }
    assert {} == {name: v for name, v in values.items() if not _number(v)}


def test_scaling_covers_1_2_4_8_threads_and_enqueue(quick_run: QuickRun) -> None:
    """The scaling figure has a row per thread count and one with enqueue=True."""
    rows = quick_run.result["figures"]["scaling"]["rows"]
    assert [(1, False), (2, False), (4, False), (8, False), (1, True)] == [
        (r["threads"], r["enqueue"]) for r in rows
    ]
    assert [] == [r for r in rows if not (_number(r["ratio"]) and _number(r["throughput_rps"]))]
    # The control sink (same CPU per record, no lock, no I/O) runs at every thread count.
    assert _number(quick_run.result["figures"]["scaling"]["control_burn_us"])
    assert [] == [r for r in rows if not r["enqueue"] and not _number(r["control_ratio"])]


def test_throughput_runs_deliver_every_record(quick_run: QuickRun) -> None:
    """Every throughput run ended with all its records stored by the receiver."""
    f = quick_run.result["figures"]
    runs = {
        f"{key}/{name}": run
        for key in ("throughput", "throughput_null_receiver")
        if key in f
        for name in (
            "vlogs",
            "vlogs_gil_yields_off",
            "victorialogs_handler",
            "victorialogs_handler_via_loguru",
        )
        if f[key].get(name) is not None
        for run in [f[key][name]]
    }
    for name in ("vlogs_throughput", "victorialogs_handler_throughput"):
        if f["stdlib"].get(name) is not None:
            runs[f"stdlib/{name}"] = f["stdlib"][name]
    assert {} == {name: run for name, run in runs.items() if run["complete"] is not True}


def test_handler_comparison_present_or_explained(quick_run: QuickRun) -> None:
    """With victorialogs-handler installed its ratio is a number; without it the JSON says why."""
    throughput = quick_run.result["figures"]["throughput"]
    stdlib = quick_run.result["figures"]["stdlib"]
    if importlib.util.find_spec("vlogs_handler") is not None:
        assert _number(throughput["ratio_vs_handler"])
        assert _number(throughput["ratio_vs_handler_via_loguru"])
        for key in (
            "caller_ratio_vs_handler",
            "cpu_ratio_vs_handler",
            "throughput_ratio_vs_handler",
        ):
            assert _number(stdlib[key]), key
    else:
        assert throughput["skipped"].startswith("victorialogs-handler is not installed")
        assert stdlib["skipped"].startswith("victorialogs-handler is not installed")


def test_targets_list_each_goal_of_the_issue(quick_run: QuickRun) -> None:
    """The targets list names overhead, throughput, memory, wire and both exit goals."""
    names = " | ".join(t["name"] for t in quick_run.result["targets"])
    expected = ["caller overhead", "throughput", "memory", "wire", "server up", "server down"]
    assert [] == [word for word in expected if word not in names]


def test_chart_written_when_matplotlib_is_installed(quick_run: QuickRun) -> None:
    """A PNG is written when matplotlib is importable; otherwise the run says it skipped it."""
    if importlib.util.find_spec("matplotlib") is None:
        assert "chart: skipped" in quick_run.stdout
    else:
        assert b"\x89PNG" == quick_run.chart.read_bytes()[:4]
