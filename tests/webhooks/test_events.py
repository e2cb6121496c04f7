"""Events fired by the real state transitions of clips, jobs, renders and exports, each
delivered to a loopback receiver with the object as the /v1/ API shows it."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from clips.exporting import export_process
from clips.models import Clip, Export, FullRender, Job, Source
from clips.states import clip_claim, clip_fail, full_render_finish, job_fail, job_refresh
from clips.sweep import clips_sweep
from projects.services import default_project
from tests.factories import ClipFactory
from webhooks.models import WebhookDelivery, WebhookEvent

from .support import deliver, endpoint_for

pytestmark = pytest.mark.django_db(transaction=True)


def _delivered(queue, team, type) -> list[dict]:
    """Run each delivery of `type` to the end; the payloads the receiver verified."""
    payloads = []
    for delivery in WebhookDelivery.objects.filter(event__team=team, event__type=type):
        delivered = deliver(queue, delivery.pk)
        assert delivered.status == "succeeded", delivered.last_error
        payloads.append(delivered.event.payload)
    return payloads


def _types(team) -> list[str]:
    return list(
        WebhookEvent.objects.filter(team=team).order_by("created_at").values_list("type", flat=True)
    )


def test_a_failed_clip_sends_clip_failed_with_the_clip_as_the_api_shows_it(
    caller, receiver, webhooks_queue
):
    created = endpoint_for(caller, receiver.url(), events=["clip.failed"])
    clip = ClipFactory(team=caller.team, status="processing")
    clip_fail(clip, message="Clip generation failed: no audio", code="processing_failed")

    (payload,) = _delivered(webhooks_queue, caller.team, "clip.failed")
    shown = caller.client.get(f"/v1/clips/{clip.pk}").json()["data"]
    assert payload["data"] == shown
    assert payload["data"]["status"] == "failed"
    assert payload["data"]["error"]["message"] == "Clip generation failed: no audio"
    (request,) = receiver.requests
    assert Webhook(created["secret"]).verify(request.body, request.headers) == payload


def test_clip_processing_is_sent_on_the_first_claim_only(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url(), events=["clip.processing"])
    clip = ClipFactory(team=caller.team)
    assert clip_claim(clip.pk) is not None
    assert clip_claim(clip.pk) is None  # taken: no second event
    # A retry (the clip back to pending after a passing error) is claimed again quietly.
    Clip.objects.filter(pk=clip.pk).update(status="pending", attempts=1)
    assert clip_claim(clip.pk) is not None
    (payload,) = _delivered(webhooks_queue, caller.team, "clip.processing")
    assert payload["data"]["id"] == clip.pk and payload["data"]["status"] == "processing"


def test_only_subscribed_enabled_endpoints_get_an_event(caller, other_caller, receiver):
    endpoint_for(caller, receiver.url("/exports"), events=["export.ready"])
    endpoint_for(other_caller, receiver.url("/theirs"), events=["*"])
    clip_fail(ClipFactory(team=caller.team), message="Clip generation failed: x")
    assert WebhookEvent.objects.count() == 0  # nobody of this team listens to clip.failed
    assert WebhookDelivery.objects.count() == 0


def test_a_rolled_back_transition_sends_nothing(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url())
    clip = ClipFactory(team=caller.team, status="processing")
    with pytest.raises(RuntimeError), transaction.atomic():
        clip_fail(clip, message="Clip generation failed: x")
        raise RuntimeError("the transition's transaction failed after it")
    assert WebhookEvent.objects.count() == 0
    assert webhooks_queue.count == 0


def test_a_failing_emit_never_breaks_the_transition(caller, receiver, monkeypatch, caplog):
    from clips import events

    endpoint_for(caller, receiver.url())

    def broken(clip):
        raise ValueError("a bug in a payload")

    monkeypatch.setattr(events, "clip_data", broken)
    clip = ClipFactory(team=caller.team, status="processing")
    clip_fail(clip, message="Clip generation failed: x")
    assert Clip.objects.get(pk=clip.pk).status == "failed"
    assert "could not emit clip.failed" in caplog.text


def test_jobs_send_job_error_and_job_done(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url(), events=["job.done", "job.error"])
    project = default_project(team=caller.team)
    failing = Job.objects.create(
        team=caller.team, project=project, source_url="https://e.com/a.mp4", status="processing"
    )
    job_fail(failing, message="Clip generation failed: unreadable", code="processing_failed")
    done = Job.objects.create(
        team=caller.team, project=project, source_url="https://e.com/b.mp4", status="processing"
    )
    second = ClipFactory(team=caller.team, job=done, rank=2, status="completed")
    first = ClipFactory(team=caller.team, job=done, rank=1, status="exported")
    job_refresh(done.pk)
    job_refresh(done.pk)  # already done: nothing more

    (error,) = _delivered(webhooks_queue, caller.team, "job.error")
    assert error["data"]["id"] == str(failing.pk) and error["data"]["status"] == "error"
    assert error["data"]["error"] == {
        "code": "processing_failed",
        "message": "Clip generation failed: unreadable",
    }
    (finished,) = _delivered(webhooks_queue, caller.team, "job.done")
    assert finished["data"]["status"] == "done" and finished["data"]["error"] is None
    assert finished["data"]["clipIds"] == [first.pk, second.pk]
    assert finished["data"]["createdAt"].endswith("Z")


def test_a_job_whose_clip_failed_sends_job_error(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url(), events=["job.error"])
    job = Job.objects.create(
        team=caller.team,
        project=default_project(team=caller.team),
        source_url="https://e.com/a.mp4",
        status="processing",
    )
    ClipFactory(team=caller.team, job=job, rank=1, status="failed", error="Clip failed: x")
    job_refresh(job.pk)
    (payload,) = _delivered(webhooks_queue, caller.team, "job.error")
    assert payload["data"]["error"]["message"] == "Clip failed: x"


def test_full_renders_send_render_done_and_render_failed(
    settings, caller, receiver, webhooks_queue
):
    settings.CLYPAI_PUBLIC_URL = "https://clyp.example.org"
    endpoint_for(caller, receiver.url(), events=["render.done", "render.failed"])
    done = ClipFactory(
        team=caller.team, status="completed", full_render_status="processing", video="clips/x.mp4"
    )
    failed = ClipFactory(team=caller.team, status="completed", full_render_status="processing")
    full_render_finish(done.pk)
    full_render_finish(failed.pk, error="Render failed: disk full")
    full_render_finish(failed.pk, error="again")  # not processing any more: nothing

    (ok,) = _delivered(webhooks_queue, caller.team, "render.done")
    assert ok["data"]["clipId"] == done.pk and ok["data"]["id"] == str(done.uuid)
    assert ok["data"]["status"] == "done" and ok["data"]["error"] is None
    assert ok["data"]["videoUrl"].startswith("https://clyp.example.org/")
    (bad,) = _delivered(webhooks_queue, caller.team, "render.failed")
    assert bad["data"]["status"] == "error" and bad["data"]["videoUrl"] is None
    assert bad["data"]["error"] == "Render failed: disk full"


def test_the_sweeps_failures_send_their_events(settings, caller, receiver, webhooks_queue):
    settings.CLYPAI_MAX_ATTEMPTS = 1
    endpoint_for(caller, receiver.url())
    old = timezone.now() - timedelta(seconds=settings.CLYPAI_STALE_SECONDS + 60)
    clip = ClipFactory(team=caller.team)
    Clip.objects.filter(pk=clip.pk).update(status="processing", heartbeat_at=old, updated_at=old)
    job = Job.objects.create(
        team=caller.team,
        project=default_project(team=caller.team),
        source_url="https://e.com/a.mp4",
        status="processing",
        stage="transcribe",
        heartbeat_at=old,
    )
    rendered = ClipFactory(team=caller.team, status="completed")
    Clip.objects.filter(pk=rendered.pk).update(full_render_status="processing", updated_at=old)
    FullRender.objects.create(clip=rendered, heartbeat_at=old)

    report = clips_sweep()
    assert {clip.pk, str(job.pk), rendered.pk} <= set(report.failed)
    assert sorted(_types(caller.team)) == ["clip.failed", "job.error", "render.failed"]
    (failed_clip,) = _delivered(webhooks_queue, caller.team, "clip.failed")
    assert "worker was lost" in failed_clip["data"]["error"]["message"]
    (failed_job,) = _delivered(webhooks_queue, caller.team, "job.error")
    assert failed_job["data"]["id"] == str(job.pk)
    (failed_render,) = _delivered(webhooks_queue, caller.team, "render.failed")
    assert failed_render["data"]["clipId"] == rendered.pk


def test_an_export_that_cannot_be_made_sends_export_failed(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url(), events=["export.failed", "export.ready"])
    clip = ClipFactory(team=caller.team, status="completed")  # no source to render from
    export = Export.objects.create(clip=clip, format="mp4", quality="low")
    export_process(export_id=export.pk)
    (payload,) = _delivered(webhooks_queue, caller.team, "export.failed")
    assert payload["data"]["id"] == export.pk and payload["data"]["clipId"] == clip.pk
    assert payload["data"]["status"] == "failed" and payload["data"]["error"]
    assert payload["data"]["exportUrl"] is None


# On real media ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_job_on_real_media_sends_processing_completed_and_done(
    settings, caller, receiver, shared_media, tmp_path
):
    """Inline mode: each first attempt is made at once, in the processing itself."""
    from clips.services import JobSpec, job_create, upload_create

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    created = endpoint_for(caller, receiver.url())
    video = shared_media / "cuts" / "big_buck_bunny_0-30s_720p.webm"
    with open(video, "rb") as fh:
        upload = upload_create(
            team=caller.team,
            file=File(fh, name=video.name),
            filename=video.name,
            sha256=hashlib.sha256(video.read_bytes()).hexdigest(),
        )
    job = job_create(team=caller.team, spec=JobSpec(upload=upload, count=1, clip_video="none"))
    job.refresh_from_db()
    assert job.status == "done", job.error
    (clip,) = job.clips.all()

    payloads = [Webhook(created["secret"]).verify(r.body, r.headers) for r in receiver.requests]
    assert [p["type"] for p in payloads] == ["clip.processing", "clip.completed", "job.done"]
    assert payloads[1]["data"] == caller.client.get(f"/v1/clips/{clip.pk}").json()["data"]
    assert payloads[2]["data"]["clipIds"] == [clip.pk]
    assert len({p["id"] for p in payloads}) == 3


@pytest.mark.slow
def test_a_real_export_sends_export_ready_and_clip_exported(
    settings, caller, receiver, shared_media, tmp_path
):
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    settings.CLYPAI_PUBLIC_URL = "https://clyp.example.org"
    created = endpoint_for(caller, receiver.url(), events=["export.ready", "clip.exported"])
    video = shared_media / "talking_head" / "grid_concat_11clips_33s.mp4"
    data = video.read_bytes()
    source = Source(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/grid.mp4", File(fh), save=False)
    source.save()
    clip = ClipFactory(
        team=caller.team,
        source=source,
        status="completed",
        start_time=3.0,
        end_time=6.0,
        duration=3.0,
        enable_captions=False,
        words=[],
        metadata={"hooks": [], "highlights": [], "reason": "test"},
    )
    response = caller.client.post(
        f"/v1/clips/{clip.pk}/export", {"format": "mp4", "quality": "low"}, format="json"
    )
    assert response.status_code == 200, response.json()

    payloads = [Webhook(created["secret"]).verify(r.body, r.headers) for r in receiver.requests]
    assert [p["type"] for p in payloads] == ["export.ready", "clip.exported"]
    ready = payloads[0]["data"]
    assert ready["id"] == response.json()["data"]["id"] and ready["clipId"] == clip.pk
    assert ready["status"] == "completed" and ready["fileSize"] > 0
    assert ready["exportUrl"].startswith("https://clyp.example.org/")
    assert payloads[1]["data"]["status"] == "exported"
