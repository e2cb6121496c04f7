"""An RQ worker told to stop (SIGTERM): it finishes its task within the grace period, or
stops it and hands its work back, queued again at once (clypai.observability.Worker)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.utils import timezone

from clips.models import Clip
from clips.sweep import work_hand_back
from clypai.queues import get_queue
from tests.factories import ClipFactory
from tests.processes import manage, process_env, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def sleep_then_write(path: str, seconds: float) -> None:
    """A task the worker runs: it takes `seconds`, then leaves its mark."""
    Path(path + ".started").write_text("1")
    time.sleep(seconds)
    Path(path).write_text("done")


@pytest.fixture
def default_queue(settings):
    settings.CLYPAI_JOBS_INLINE = False
    queue = get_queue("default")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def _worker(settings, media_root, tmp_path, grace: float):
    env = process_env(settings, media_root, tmp_path / "work", CLYPAI_STOP_GRACE_SECONDS=grace)
    return manage(env, "rqworker", "default", log=tmp_path / "worker.log")


def test_a_worker_given_sigterm_finishes_its_task_first(
    settings, media_root, tmp_path, default_queue
):
    mark = str(tmp_path / "mark")
    task = default_queue.enqueue(sleep_then_write, mark, 3.0)
    worker = _worker(settings, media_root, tmp_path, grace=60)
    try:
        assert wait_for(lambda: os.path.exists(mark + ".started"), 60)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        stop(worker)
    assert Path(mark).read_text() == "done"
    assert task.get_status(refresh=True) == "finished"


def test_a_worker_whose_grace_ends_hands_its_clip_back_queued_at_once(
    settings, media_root, tmp_path, default_queue, team
):
    clip = ClipFactory(team=team, status="processing", stage="transcribe")
    Clip.objects.filter(pk=clip.pk).update(heartbeat_at=timezone.now())  # alive, not stale
    assert work_hand_back("clips.tasks.clip_process_task", [clip.pk]) is True
    clip.refresh_from_db()
    assert (clip.status, clip.attempts, clip.stage) == ("pending", 1, "requeued")
    queued = get_queue("analysis").fetch_job(clip.pk)
    assert queued is not None and queued.get_status() == "queued"
    assert queued.func_name == "clips.tasks.clip_process_task"
    # A second hand-back (or one for work that finished) changes nothing.
    assert work_hand_back("clips.tasks.clip_process_task", [clip.pk]) is False
    assert work_hand_back("webhooks.tasks.delivery_attempt_task", ["whd_x"]) is False


def test_a_worker_past_its_grace_stops_the_task_and_exits(
    settings, media_root, tmp_path, default_queue
):
    mark = str(tmp_path / "mark")
    default_queue.enqueue(sleep_then_write, mark, 120.0)
    worker = _worker(settings, media_root, tmp_path, grace=2)
    try:
        assert wait_for(lambda: os.path.exists(mark + ".started"), 60)
        signalled = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        assert time.monotonic() - signalled < 15  # the grace, not the task's 120 s
    finally:
        stop(worker)
    assert not os.path.exists(mark)
    log = (tmp_path / "worker.log").read_text()
    assert "cold shut down" in log
