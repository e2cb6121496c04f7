"""What HTTP itself can trip a client up on, on both APIs: a trailing slash, a body over
the size limit, a method the path does not take. Each answers in its API's own shape:
/v1's envelope `{"success": false, "error": {…}}`, Choppity's `{"error": {…}}`."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from clips.models import Clip, Job
from tests.choppity.conftest import error_of, make_job
from tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

SOURCE = {"sourceVideoUrl": "https://example.com/video.mp4"}


@pytest.fixture
def chop(caller) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    return client


def v1_error(response, status_code: int, code: str) -> dict:
    assert response.status_code == status_code, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"success", "error"} and body["success"] is False, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


# Trailing slashes ------------------------------------------------------------------------


def test_v1_paths_with_a_trailing_slash_are_accepted(api, team):
    clip = ClipFactory(team=team)
    listed = api.get("/v1/clips/?limit=1")
    assert listed.status_code == 200, listed.content
    assert listed.json()["data"][0]["id"] == clip.pk
    assert api.get(f"/v1/clips/{clip.pk}/").json()["data"]["id"] == clip.pk
    created = api.post("/v1/clips/", SOURCE, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["data"]["status"] == "pending"
    deleted = api.delete(f"/v1/clips/{clip.pk}/")
    assert deleted.json() == {"success": True, "data": {"id": clip.pk, "deleted": True}}
    # An unknown path stays unknown, with or without the slash.
    v1_error(api.get("/v1/nothing-here/"), 404, "not_found")


def test_choppity_paths_with_a_trailing_slash_are_accepted(chop, team):
    job = make_job(team, status=Job.Status.DONE, clips=1, previews=1)
    polled = chop.get(f"/choppity/v1/clips/{job.pk}/")
    assert polled.status_code == 200, polled.content
    assert polled.json()["job_id"] == str(job.pk)
    created = chop.post(
        "/choppity/v1/clips/", {"source": {"url": "https://example.com/a.mp4"}}, format="json"
    )
    assert created.status_code == 202, created.content
    assert created.json()["status"] == "queued"
    error_of(chop.get("/choppity/v1/nothing-here/"), 404, "NOT_FOUND")


# Bodies over the limit -------------------------------------------------------------------


def _oversize(settings) -> bytes:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    return json.dumps({**SOURCE, "name": "x" * 2000}).encode()


def test_a_v1_body_over_the_limit_is_413_in_the_envelope(api, team, settings):
    body = _oversize(settings)
    response = api.post("/v1/clips", body, content_type="application/json")
    error = v1_error(response, 413, "payload_too_large")
    assert error["details"] == {"limit": 1024}
    # With an Idempotency-Key (whose fingerprint reads the body) too, and on a PATCH.
    keyed = api.post("/v1/clips", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    v1_error(keyed, 413, "payload_too_large")
    project = api.post("/v1/projects", {"name": "p"}, format="json").json()["data"]
    patched = api.patch(f"/v1/projects/{project['id']}", body, content_type="application/json")
    v1_error(patched, 413, "payload_too_large")
    assert not Clip.objects.filter(team=team).exists()


def test_a_choppity_body_over_the_limit_is_413_in_its_shape(chop, team, settings):
    body = json.dumps({"source": {"url": "https://example.com/a.mp4"}, "criteria": "x" * 2000})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = chop.post("/choppity/v1/clips", body, content_type="application/json")
    error = error_of(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"limit": 1024}
    assert response["Content-Type"] == "application/json"
    assert not Job.objects.filter(team=team).exists()


# Methods a path does not take ------------------------------------------------------------


def _allowed(response) -> set[str]:
    return {method.strip() for method in response["Allow"].split(",")}


def test_a_wrong_method_on_v1_is_405_in_the_envelope_with_allow(api, team):
    clip = ClipFactory(team=team)
    response = api.put(f"/v1/clips/{clip.pk}", SOURCE, format="json")
    error = v1_error(response, 405, "method_not_allowed")
    assert "PUT" in error["message"]
    assert {"GET", "DELETE"} <= _allowed(response) and "PUT" not in _allowed(response)
    listing = api.delete("/v1/clips")
    v1_error(listing, 405, "method_not_allowed")
    assert {"GET", "POST"} <= _allowed(listing)


def test_a_wrong_method_on_choppity_is_405_in_its_shape_with_allow(chop, team):
    job = make_job(team)
    response = chop.delete(f"/choppity/v1/clips/{job.pk}")
    error_of(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in _allowed(response) and "DELETE" not in _allowed(response)
    creating = chop.get("/choppity/v1/clips")
    error_of(creating, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in _allowed(creating) and "GET" not in _allowed(creating)
