"""A user's code type-checks against the package (py.typed): options are Literal-typed, paths
take os.PathLike, stats() is a TypedDict."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

USER_CODE = """
    from pathlib import Path
    from loguru import logger
    from loguru_vlogs import VLogsSink

    sink = VLogsSink(
        "http://localhost:9428",
        overflow="block",
        compression="zstd",
        spool_dir=Path("/tmp/spool"),
        spool_fsync="always",
        ca_certs=Path("/etc/ssl/ca.pem"),
    )
    logger.add(sink)
    sent: int = sink.stats()["sent"]
    last: str | None = sink.stats()["last_error"]

    import logging
    from loguru_vlogs import VLogsHandler, trace_patcher

    def count(reason: str, n: int) -> None: ...

    handler = VLogsHandler(
        ["http://a:9428", "http://b:9428"], overflow="drop_newest", level="INFO", on_drop=count
    )
    logging.getLogger().addHandler(handler)
    dropped: int = handler.stats()["dropped_total"]
    logger.configure(patcher=trace_patcher)
"""


def mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    user = tmp_path / "user.py"
    user.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.timeout(300)
def test_a_users_code_type_checks(tmp_path: Path) -> None:
    """Correct use passes mypy --strict."""
    result = mypy(tmp_path, USER_CODE)
    assert 0 == result.returncode, result.stdout


@pytest.mark.timeout(300)
def test_a_misspelt_option_value_is_a_type_error(tmp_path: Path) -> None:
    """overflow="dropoldest", a stats key that does not exist: mypy says so."""
    code = USER_CODE + '    sink2 = VLogsSink("http://x", overflow="dropoldest")\n'
    code += '    oops = sink.stats()["sentt"]\n'
    result = mypy(tmp_path, code)
    assert 1 == result.returncode
    assert 'Argument "overflow" to "VLogsSink" has incompatible type' in result.stdout
    assert '"Stats" has no key "sentt"' in result.stdout
