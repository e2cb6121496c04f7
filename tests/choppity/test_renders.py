"""POST /choppity/v1/clips/{clipId}/renders and GET /choppity/v1/renders/{renderId}:
one active full render per clip, render minutes, and the render's status."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from django.core.files.base import ContentFile

from clips.models import Clip, Job
from projects.models import MonthlyUsage
from tests.choppity.conftest import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip(team, job_factory) -> Clip:
    job = job_factory(team, status=Job.Status.DONE, clips=1, previews=1)
    return job.clips.get()


def trigger(client, clip_id, **kwargs):
    return client.post(f"/choppity/v1/clips/{clip_id}/renders", **kwargs)


def render_seconds(team) -> float:
    usage = MonthlyUsage.objects.filter(team=team).first()
    return usage.render_seconds if usage else 0.0


def test_it_queues_a_full_render_with_an_empty_body(
    chop, team, clip, rq_queues, django_capture_on_commit_callbacks
):
    before = int(time.time() * 1000)
    with django_capture_on_commit_callbacks(execute=True):
        response = trigger(chop, clip.uuid)
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"render_id", "status", "created_at"}
    assert body["render_id"] == str(clip.uuid)  # equals the clipId
    assert body["status"] == "queued"
    assert body["created_at"] >= before - 1000
    assert response["Location"] == f"/choppity/v1/renders/{clip.uuid}"
    clip.refresh_from_db()
    assert (clip.full_render_status, clip.full_render_error) == ("queued", "")
    assert rq_queues["render"].job_ids == [f"{clip.pk}-render"]
    job = rq_queues["render"].fetch_job(f"{clip.pk}-render")
    assert (job.func_name, job.args) == ("clips.tasks.full_render_task", (clip.pk,))
    # Its duration counts against the team's render minutes.
    assert render_seconds(team) == pytest.approx(58.333)


def test_there_is_at_most_one_active_render_per_clip(
    chop, team, clip, rq_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = trigger(chop, clip.uuid).json()
    for active in ("queued", "processing"):
        Clip.objects.filter(pk=clip.pk).update(full_render_status=active)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            again = trigger(chop, clip.uuid)
        assert again.status_code == 202
        # The document: 202, render_id, status "queued"; the active render, unchanged.
        assert again.json() == first == {**first, "status": "queued"}
        assert callbacks == []  # nothing enqueued
        clip.refresh_from_db()
        assert clip.full_render_status == active
    assert render_seconds(team) == pytest.approx(58.333)  # charged once
    assert rq_queues["render"].job_ids == [f"{clip.pk}-render"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_triggers_start_one_render_and_all_answer_it_queued(
    caller, team, job_factory, rq_queues
):
    """Eight clients at once: every one gets the document's 202 queued with the same
    render, one render is queued and it is charged once."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from rest_framework.test import APIClient

    clip = job_factory(team, status=Job.Status.DONE, clips=1, previews=1).clips.get()
    barrier = threading.Barrier(8)

    def one(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
        barrier.wait()
        try:
            response = trigger(client, clip.uuid)
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert {code for code, _ in answers} == {202}
    bodies = {json.dumps(body, sort_keys=True) for _, body in answers}
    assert len(bodies) == 1 and answers[0][1]["status"] == "queued"
    assert rq_queues["render"].job_ids == [f"{clip.pk}-render"]
    assert render_seconds(team) == pytest.approx(58.333)


def test_triggering_again_after_a_render_finished_starts_a_new_one(chop, team, clip):
    first = trigger(chop, clip.uuid).json()
    for finished in ("done", "error"):
        Clip.objects.filter(pk=clip.pk).update(full_render_status=finished, full_render_error="x")
        time.sleep(0.002)
        again = trigger(chop, clip.uuid).json()
        assert again["status"] == "queued"
        assert again["created_at"] > first["created_at"]
        clip.refresh_from_db()
        assert (clip.full_render_status, clip.full_render_error) == ("queued", "")
        first = again
    assert render_seconds(team) == pytest.approx(3 * 58.333)


def test_a_render_past_the_teams_render_minutes_is_refused_and_costs_nothing(chop, team, clip):
    team.monthly_render_minutes = 1
    team.save()
    assert trigger(chop, clip.uuid).status_code == 202  # 0.97 of 1 minute
    Clip.objects.filter(pk=clip.pk).update(full_render_status="done")
    refused = trigger(chop, clip.uuid)
    error = error_of(refused, 429, "QUOTA_EXCEEDED")
    # Retry-After: the seconds until reset_at (clients that retry a 429 only with it).
    assert (
        abs(int(refused["Retry-After"]) - (error["details"]["reset_at"] / 1000 - time.time())) < 5
    )
    assert error["details"]["used"] == 0.97  # minutes
    assert error["details"]["requested"] == 0.97
    assert error["details"]["limit"] == 1
    assert error["details"]["reset_at"] > time.time() * 1000
    clip.refresh_from_db()
    assert clip.full_render_status == "done"  # the earlier render stays as it was
    assert render_seconds(team) == pytest.approx(58.333)


def test_a_clip_whose_preview_is_not_ready_cannot_be_rendered_yet(chop, team, job_factory):
    job = job_factory(team, clips=1, previews=0)
    error = error_of(trigger(chop, job.clips.get().uuid), 409, "CONFLICT")
    assert error["details"] == {"status": "processing"}
    assert render_seconds(team) == 0


def test_another_teams_clip_a_job_id_and_malformed_ids_are_not_found(
    chop, other_caller, job_factory, team
):
    theirs = job_factory(other_caller.team, status=Job.Status.DONE, clips=1, previews=1)
    mine = job_factory(team, status=Job.Status.DONE, clips=1, previews=1)
    for clip_id in (theirs.clips.get().uuid, mine.pk, uuid.uuid4(), "nope", mine.clips.get().pk):
        error_of(trigger(chop, clip_id), 404, "NOT_FOUND")
        error_of(chop.get(f"/choppity/v1/renders/{clip_id}"), 404, "NOT_FOUND")
    assert not Clip.objects.exclude(full_render_status="").exists()


def test_a_clip_never_rendered_has_no_render(chop, clip):
    error_of(chop.get(f"/choppity/v1/renders/{clip.uuid}"), 404, "NOT_FOUND")


def test_the_render_answers_its_status_and_once_done_a_signed_output_url(chop, clip):
    created = trigger(chop, clip.uuid).json()
    response = chop.get(f"/choppity/v1/renders/{clip.uuid}")
    assert response.status_code == 200
    assert response.json() == created

    Clip.objects.filter(pk=clip.pk).update(full_render_status="processing")
    assert chop.get(f"/choppity/v1/renders/{clip.uuid}").json()["status"] == "processing"

    clip.refresh_from_db()
    clip.video.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypisom-full"), save=False)
    Clip.objects.filter(pk=clip.pk).update(full_render_status="done", video=clip.video.name)
    body = chop.get(f"/choppity/v1/renders/{clip.uuid}").json()
    assert set(body) == {"render_id", "status", "created_at", "output_url"}
    assert body["status"] == "done"
    output = chop.__class__().get(body["output_url"].removeprefix("http://testserver"))
    assert b"".join(output.streaming_content) == b"\x00\x00\x00\x18ftypisom-full"

    Clip.objects.filter(pk=clip.pk).update(
        full_render_status="error", full_render_error="Render failed: disk full"
    )
    body = chop.get(f"/choppity/v1/renders/{clip.uuid}").json()
    assert (body["status"], body["error"]) == ("error", "Render failed: disk full")
    assert "output_url" not in body
