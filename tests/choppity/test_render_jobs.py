"""clips.tasks.full_render_task and the sweep's recovery of full renders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clips.models import Clip, FullRender, Job
from clips.services import full_render_request
from clips.sweep import clips_sweep
from clips.tasks import full_render_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clip(team, job_factory) -> Clip:
    return job_factory(team, status=Job.Status.DONE, clips=1, previews=1).clips.get()


def age(clip: Clip, seconds: float, *, heartbeat: bool = True) -> None:
    then = timezone.now() - timedelta(seconds=seconds)
    Clip.objects.filter(pk=clip.pk).update(updated_at=then)
    if heartbeat:
        FullRender.objects.filter(pk=clip.pk).update(heartbeat_at=then)


def test_the_job_does_nothing_unless_the_render_is_queued(clip):
    for state in ("", "processing", "done", "error"):
        Clip.objects.filter(pk=clip.pk).update(full_render_status=state)
        full_render_task(clip.pk)
        clip.refresh_from_db()
        assert clip.full_render_status == state
    full_render_task("clip_gone")  # a deleted clip: nothing to do, no error


def test_a_render_that_cannot_be_made_ends_in_error_with_its_reason(team, clip, rq_queues):
    # No source to render from: whatever the renderer is, this render fails, and says so.
    Clip.objects.filter(pk=clip.pk).update(source=None, source_url="", upload=None)
    clip = full_render_request(Clip.objects.get(pk=clip.pk))
    full_render_task(clip.pk)
    clip.refresh_from_db()
    assert clip.full_render_status == "error"
    assert clip.full_render_error
    assert not clip.video
    assert FullRender.objects.get(pk=clip.pk).heartbeat_at is not None


def test_the_sweep_requeues_a_render_whose_worker_stopped_beating(settings, clip, rq_queues):
    full_render_request(clip)
    rq_queues["render"].empty()
    Clip.objects.filter(pk=clip.pk).update(full_render_status="processing")
    FullRender.objects.filter(pk=clip.pk).update(heartbeat_at=timezone.now())
    assert clips_sweep().requeued_stale == []  # it beats: alive

    age(clip, settings.CLYPAI_STALE_SECONDS + 5)
    report = clips_sweep()
    assert report.requeued_stale == [clip.pk]
    clip.refresh_from_db()
    assert clip.full_render_status == "queued"
    assert FullRender.objects.get(pk=clip.pk).attempts == 1
    assert rq_queues["render"].job_ids == [f"{clip.pk}-render"]
    assert clips_sweep().requeued_stale == []  # once


def test_a_render_that_lost_its_worker_too_often_fails_with_the_reason(settings, clip, rq_queues):
    full_render_request(clip)
    Clip.objects.filter(pk=clip.pk).update(full_render_status="processing")
    FullRender.objects.filter(pk=clip.pk).update(attempts=settings.CLYPAI_MAX_ATTEMPTS - 1)
    age(clip, settings.CLYPAI_STALE_SECONDS + 5)
    assert clips_sweep().failed == [clip.pk]
    clip.refresh_from_db()
    assert clip.full_render_status == "error"
    assert "worker was lost 3 times" in clip.full_render_error


def test_the_sweep_enqueues_a_queued_render_whose_enqueue_was_lost(settings, clip, rq_queues):
    full_render_request(clip)  # queued, and on the render queue
    age(clip, settings.CLYPAI_STALE_SECONDS + 5, heartbeat=False)
    assert clips_sweep().requeued_pending == []  # its RQ job is still waiting

    rq_queues["render"].connection.flushdb()  # Redis lost it
    assert clips_sweep().requeued_pending == [clip.pk]
    assert rq_queues["render"].job_ids == [f"{clip.pk}-render"]
    clip.refresh_from_db()
    assert clip.full_render_status == "queued"
