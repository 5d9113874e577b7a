"""The project's own checks run with the suite: ruff (lint + format) and mypy strict."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.timeout(300)  # a cold mypy run may take minutes; subprocess.run gives it 240 s
@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        pytest.param(("mypy",), marks=pytest.mark.slow),
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_code_passes_its_own_checks(command: tuple[str, ...]) -> None:
    """ruff check, ruff format --check and mypy (strict on the package) are clean.

    The tools come with the test extra: a missing one fails the test (it is not skipped).
    """
    result = run(*command)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_public_names_are_exactly_the_documented_ones() -> None:
    """`loguru_vlogs.__all__` is the public API: the sink, the handler, the trace patcher and
    the version, each of them there."""
    import loguru_vlogs

    assert ["VLogsHandler", "VLogsSink", "__version__", "trace_patcher"] == sorted(
        loguru_vlogs.__all__
    )
    for name in loguru_vlogs.__all__:
        assert getattr(loguru_vlogs, name) is not None


def option_rows(path: Path, heading: str) -> dict[str, list[str]]:
    """The rows of the option table under ``heading`` in ``path``: option name -> other cells."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    after = text.find("\n## ", start + 1)
    section = text[start : after if after != -1 else len(text)]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(\w+)` \|(.*)\|$", line)
        if match:
            assert match[1] not in rows, f"{match[1]} has two rows under {heading} in {path.name}"
            rows[match[1]] = [cell.strip() for cell in match[2].split(" | ")]
    return rows


def sink_arguments() -> list[str]:
    """The names of VLogsSink's arguments, in order."""
    from loguru_vlogs import VLogsSink

    return [n for n in inspect.signature(VLogsSink.__init__).parameters if n != "self"]


def test_every_option_is_in_the_options_page() -> None:
    """Each VLogsSink argument has one row (default, unit, meaning) in docs/options.md."""
    rows = option_rows(ROOT / "docs" / "options.md", "## Every option")
    names = sink_arguments()
    assert [] == [n for n in names if n not in rows]
    assert [] == [n for n in rows if n not in names]
    assert [] == [n for n, cells in rows.items() if len(cells) != 3 or not all(cells)]


def test_the_readme_options_are_real_and_match_the_options_page() -> None:
    """The README's short option table names only real arguments, with their full-table
    default and unit."""
    short = option_rows(ROOT / "README.md", "## Options")
    full = option_rows(ROOT / "docs" / "options.md", "## Every option")
    assert short, "the README has no option table under ## Options"
    assert [] == [n for n in short if n not in sink_arguments()]
    assert {n: full[n][:2] for n in short} == {n: cells[:2] for n, cells in short.items()}


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file (code blocks skipped)."""
    found: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


DOC_PAGES = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", *ROOT.glob("docs/*.md")])


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_in_the_docs_resolve(page: Path) -> None:
    """Every relative link (and #anchor) of the README, docs/ and benchmarks/ points somewhere."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    assert [] == broken


def test_the_readme_test_command_is_what_ci_runs() -> None:
    """`.ci/run` ends with exactly the README's fresh-machine test command."""
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    fresh = readme[readme.index("## On a fresh machine") : readme.index("\n## Install")]
    assert f"```sh\n{command}\n```" in fresh
    assert command == (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()[-1]


def test_no_module_imports_another_modules_underscore_names() -> None:
    """Modules share only public names (ruff's SLF001 checks attribute access; this checks
    ``from ._x import _name``): a private module's helpers others use are public there."""
    import ast

    offenders = []
    for path in sorted((ROOT / "loguru_vlogs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                offenders += [
                    f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert [] == offenders
