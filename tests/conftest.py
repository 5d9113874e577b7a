"""Every test starts and ends with a logger that has no handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use ``vlogs_server`` run against the real server when there is one."""
    for item in items:
        if "vlogs_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_server)


@pytest.fixture(autouse=True)
def _reset_logger() -> Iterator[None]:
    logger.remove()
    yield
    logger.remove()
