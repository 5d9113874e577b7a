"""The project's own checks run with the suite: ruff (lint + format) and mypy strict."""

from __future__ import annotations

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
    """`loguru_vlogs.__all__` is the public API: the sink and the version."""
    import loguru_vlogs

    assert ["VLogsSink", "__version__"] == sorted(loguru_vlogs.__all__)


def test_every_option_is_in_the_readme_table() -> None:
    """Each VLogsSink argument has a row (default, unit, meaning) in the README option table."""
    import inspect

    from loguru_vlogs import VLogsSink

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[
        readme.index("## Options") : readme.index("## Configuration from the environment")
    ]
    names = [n for n in inspect.signature(VLogsSink.__init__).parameters if n != "self"]
    missing = [n for n in names if f"| `{n}` |" not in table]
    assert [] == missing
