"""Every test starts and ends with a logger that has no handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger


@pytest.fixture(autouse=True)
def _reset_logger() -> Iterator[None]:
    logger.remove()
    yield
    logger.remove()
