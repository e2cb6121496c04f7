"""GET /choppity/v1/clips/{jobId}: status semantics, clips, previews; auth; unknown paths."""

from __future__ import annotations

import time
from unittest import mock
from urllib.parse import urlsplit

import pytest

from clips.models import Job
from clypai.api.authentication import jwt_issue
from tests.choppity.conftest import error_of
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def poll(client, job):
    response = client.get(f"/choppity/v1/clips/{job.pk}")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_queued_job_answers_its_id_status_time_and_no_clips(chop, team, job_factory):
    job = job_factory(team, status=Job.Status.QUEUED)
    assert poll(chop, job) == {
        "job_id": str(job.pk),
        "status": "queued",
        "created_at": int(job.created_at.timestamp() * 1000),
        "clips": [],
    }


def test_while_previews_render_it_is_processing_with_a_populated_clips_array(
    chop, team, job_factory
):
    job = job_factory(team, clips=2, previews=1)
    body = poll(chop, job)
    assert body["status"] == "processing"
    first, second = body["clips"]
    clips = list(job.clips.order_by("rank"))
    assert first == {
        "id": str(clips[0].uuid),
        "title": "Moment 1",
        "duration": 58.33,
        "score": 0.9,
        "preview_url": first["preview_url"],
    }
    assert second == {
        "id": str(clips[1].uuid),
        "title": "Moment 2",
        "duration": 58.33,
        "score": 0.89,
    }  # no preview_url while it renders


def test_it_is_done_only_when_every_clip_has_its_preview(chop, team, job_factory):
    job = job_factory(team, status=Job.Status.DONE, clips=2, previews=2)
    body = poll(chop, job)
    assert body["status"] == "done"
    assert all(clip["preview_url"] for clip in body["clips"])
    assert "error" not in body


def test_a_finished_job_with_a_clip_lacking_its_preview_is_an_error_not_done(
    chop, team, job_factory
):
    # The pipeline is over, so that preview will never come: polling forever helps no one.
    job = job_factory(team, status=Job.Status.DONE, clips=2, previews=1)
    body = poll(chop, job)
    assert body["status"] == "error"
    assert "preview" in body["error"]
    assert [("preview_url" in clip) for clip in body["clips"]] == [True, False]


def test_a_failed_job_answers_error_with_its_reason(chop, team, job_factory):
    job = job_factory(team, status=Job.Status.ERROR, error="Source video URL is not accessible")
    body = poll(chop, job)
    assert body["status"] == "error"
    assert body["error"] == "Source video URL is not accessible"


def test_a_preview_url_is_a_signed_mp4_link_valid_for_one_hour(chop, team, job_factory):
    job = job_factory(team, status=Job.Status.DONE, clips=1, previews=1)
    url = poll(chop, job)["clips"][0]["preview_url"]
    assert url.startswith("http://testserver/files/")
    anon = chop.__class__()
    path = urlsplit(url).path
    response = anon.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x00\x00\x00\x18ftypmp42"
    assert response["Content-Type"] == "video/mp4"
    with mock.patch("clypai.lib.storage.time.time", return_value=time.time() + 3540):
        assert anon.get(path).status_code == 200
    with mock.patch("clypai.lib.storage.time.time", return_value=time.time() + 3660):
        assert anon.get(path).status_code == 404


@pytest.mark.parametrize(
    "job_id", ["not-a-uuid", "c304d79d-a7c5-48d7-8bdc-ad96086bb7ff", "0" * 40, "%00"]
)
def test_an_unknown_or_malformed_job_id_is_not_found(chop, job_id):
    error_of(chop.get(f"/choppity/v1/clips/{job_id}"), 404, "NOT_FOUND")


def test_another_teams_job_is_not_found(chop, other_caller, job_factory):
    job = job_factory(other_caller.team, clips=1, previews=1)
    error_of(chop.get(f"/choppity/v1/clips/{job.pk}"), 404, "NOT_FOUND")


def test_a_key_a_bearer_key_and_a_bearer_jwt_all_work(caller, team, job_factory):
    job = job_factory(team)
    client = caller.client.__class__()
    for header in (
        f"Key {caller.key}",
        f"Bearer {caller.key}",
        f"Bearer {jwt_issue(user=MembershipFactory(team=team).user, team=team)[0]}",
    ):
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get(f"/choppity/v1/clips/{job.pk}").status_code == 200, header


@pytest.mark.parametrize(
    "header",
    [None, "Key clyp_nope", "Bearer clyp_nope", "Bearer not.a.jwt", "Key", "Basic dXNlcjpwdw=="],
)
def test_a_missing_or_invalid_credential_is_unauthorized(anon, team, job_factory, header):
    job = job_factory(team)
    if header:
        anon.credentials(HTTP_AUTHORIZATION=header)
    response = anon.get(f"/choppity/v1/clips/{job.pk}")
    error_of(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize(
    "path",
    [
        "/choppity/v1/nope",
        "/choppity/v2/clips",
        "/choppity/",
        "/choppity/v1/clips/x/renders/y",
        "/choppity/v1/renders/",  # a trailing slash is accepted: /renders is unknown
    ],
)
def test_unknown_paths_under_choppity_answer_not_found_in_the_same_shape(anon, chop, path):
    for client in (anon, chop):
        error_of(client.get(path), 404, "NOT_FOUND")
        error_of(client.post(path, {}, format="json"), 404, "NOT_FOUND")


def test_a_method_the_endpoint_lacks_is_answered_in_the_same_shape(chop, team, job_factory):
    job = job_factory(team)
    error_of(chop.delete(f"/choppity/v1/clips/{job.pk}"), 405, "METHOD_NOT_ALLOWED")
    error_of(chop.get("/choppity/v1/clips"), 405, "METHOD_NOT_ALLOWED")
