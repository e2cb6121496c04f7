"""Fixtures the clips tests share."""

from __future__ import annotations

import pytest

from clypai.queues import get_queue


@pytest.fixture
def analysis_queue(settings):
    """The real "analysis" queue on Redis, emptied before and after, jobs not inline."""
    settings.CLYPAI_JOBS_INLINE = False
    queue = get_queue("analysis")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()
