"""Exports and re-renders after a transcript correction are durable work like clips: one
whose worker died, or whose enqueue was lost, is found by the sweep and finished; one
that lost its worker too often fails with the reason; a run whose work was given to
another worker stores nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clips import states
from clips.models import Clip, Export, Rerender
from clips.services import clip_words_correct
from clips.sweep import clips_sweep
from clips.tasks import clip_rerender_task, export_process_task
from clypai.queues import get_queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def render_queue(settings):
    """The real "render" queue on Redis (emptied before and after); no inline work."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_STALE_SECONDS = 60
    settings.CLYPAI_MAX_ATTEMPTS = 3
    queue = get_queue("render")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def _export(api, clip, **body):
    response = api.post(
        f"/v1/clips/{clip.pk}/export", {"format": "mp4", "quality": "low", **body}, format="json"
    )
    assert response.status_code in (200, 202), response.content
    return response.json()["data"]


def _worker_died(model, pk, seconds=300):
    """Its worker stopped beating `seconds` ago: SIGKILL, a machine lost."""
    past = timezone.now() - timedelta(seconds=seconds)
    model.objects.filter(pk=pk).update(heartbeat_at=past, updated_at=past)


def test_an_export_whose_worker_died_is_queued_again_and_finished(api, ready_clip, render_queue):
    body = _export(api, ready_clip)
    assert render_queue.job_ids == [body["id"]]
    render_queue.empty()  # the worker took it ...
    claimed = states.export_claim(body["id"])
    assert claimed.status == "processing"
    _worker_died(Export, body["id"])  # ... and died with it

    # Asked again meanwhile, the export is not handed back as it is for ever.
    assert clips_sweep().requeued_stale == [body["id"]]
    export = Export.objects.get(pk=body["id"])
    assert (export.status, export.attempts) == ("queued", 1)
    assert render_queue.job_ids == [body["id"]]

    export_process_task(body["id"])
    export = Export.objects.get(pk=body["id"])
    assert export.status == "completed" and export.file and export.file_size > 0
    assert Clip.objects.get(pk=ready_clip.pk).status == "exported"
    # What the dead worker's run still tries changes nothing.
    assert states.export_complete(claimed, size=1) is False
    states.export_fail(claimed, error="too late")
    assert Export.objects.get(pk=body["id"]).status == "completed"


def test_an_export_whose_enqueue_was_lost_is_queued_again(api, ready_clip, render_queue):
    body = _export(api, ready_clip)
    render_queue.connection.flushdb()  # Redis lost everything
    _worker_died(Export, body["id"])
    assert clips_sweep().requeued_pending == [body["id"]]
    assert render_queue.job_ids == [body["id"]]


def test_a_new_request_queues_again_an_export_whose_task_redis_lost(api, ready_clip, render_queue):
    body = _export(api, ready_clip)
    render_queue.connection.flushdb()
    again = _export(api, ready_clip)
    assert again["id"] == body["id"] and again["status"] == "queued"
    assert render_queue.job_ids == [body["id"]]
    # While its task is there, asking again does not queue it twice.
    _export(api, ready_clip)
    assert render_queue.job_ids == [body["id"]]


def test_an_export_that_lost_its_worker_too_often_fails_with_the_reason(
    api, ready_clip, render_queue
):
    body = _export(api, ready_clip)
    render_queue.empty()
    states.export_claim(body["id"])
    Export.objects.filter(pk=body["id"]).update(attempts=2)
    _worker_died(Export, body["id"])
    assert clips_sweep().failed == [body["id"]]
    export = Export.objects.get(pk=body["id"])
    assert export.status == "failed" and "worker was lost 3 times" in export.error
    assert render_queue.count == 0
    # Asked for again, a failed export starts anew, its lost workers forgotten.
    again = _export(api, ready_clip)
    assert again["status"] == "queued"
    assert Export.objects.get(pk=body["id"]).attempts == 0


def _correct(clip, word="Put"):
    clip.refresh_from_db()
    return clip_words_correct(clip=clip, corrections=[{"index": 0, "word": word}])


def test_a_re_render_whose_worker_died_is_queued_again_and_finished(
    ready_clip, render_queue, settings
):
    from clips.rendering import clip_video_make

    clip_video_make(ready_clip, None, kind="preview")
    ready_clip.refresh_from_db()
    before = ready_clip.preview.read()
    rq_id = f"{ready_clip.pk}-rerender"

    assert _correct(ready_clip) is True
    assert Rerender.objects.get(pk=ready_clip.pk).status == "queued"
    assert render_queue.job_ids == [rq_id]
    render_queue.empty()
    run = states.rerender_claim(ready_clip.pk)
    _worker_died(Rerender, ready_clip.pk)

    assert clips_sweep().requeued_stale == [ready_clip.pk]
    assert render_queue.job_ids == [rq_id]
    clip_rerender_task(ready_clip.pk)
    rerender = Rerender.objects.get(pk=ready_clip.pk)
    assert (rerender.status, rerender.attempts) == ("done", 1)
    ready_clip.refresh_from_db()
    assert ready_clip.preview.read() != before
    assert states.rerender_finish(run, error="too late") is False

    # Queued, its enqueue lost: queued again.
    _correct(ready_clip, "Lay")
    render_queue.connection.flushdb()
    _worker_died(Rerender, ready_clip.pk)
    assert clips_sweep().requeued_pending == [ready_clip.pk]
    assert render_queue.job_ids == [rq_id]


def test_a_correction_while_a_re_render_runs_stops_that_run(ready_clip, render_queue, settings):
    settings.CLYPAI_HEARTBEAT_SECONDS = 0.05
    from clips.rendering import clip_video_make

    clip_video_make(ready_clip, None, kind="preview")
    _correct(ready_clip)
    run = states.rerender_claim(ready_clip.pk)
    with states.rerender_heartbeat(run) as beat:
        _correct(ready_clip, "Lay")  # the run renders words that are no longer the clip's
        from tests.processes import wait_for

        assert wait_for(beat.lost.is_set, 5)
    assert states.rerender_finish(run) is False
    assert Rerender.objects.get(pk=ready_clip.pk).status == "queued"
