"""Fixtures the clips tests share."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files import File

from clips.models import Clip, Source
from clypai.queues import get_queue


@pytest.fixture
def analysis_queue(settings):
    """The real "analysis" queue on Redis, emptied before and after, jobs not inline."""
    settings.CLYPAI_JOBS_INLINE = False
    queue = get_queue("analysis")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


@pytest.fixture
def ready_clip(settings, team, shared_media, tmp_path):
    """A completed 6 s clip of the GRID talking heads, with words, as processing leaves it."""
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    video = shared_media / "talking_head" / "grid_concat_11clips_33s.mp4"
    data = video.read_bytes()
    source = Source(team=team, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/grid.mp4", File(fh), save=False)
    source.save()
    words = [
        {"word": w, "start": 3.2 + 0.5 * k, "end": 3.6 + 0.5 * k, "probability": 0.9}
        for k, w in enumerate("Bin blue at F two now. Lay green with N.".split())
    ]
    from projects.services import default_project

    return Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=3.0,
        end_time=9.0,
        duration=6.0,
        name="Grid",
        words=words,
        metadata={
            "hooks": [],
            "highlights": [],
            "sentiment": "neutral",
            "topics": [],
            "scoreBreakdown": {},
            "reason": "test",
        },
    )
