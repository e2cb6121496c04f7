"""POST /choppity/v1/clips: a job from a URL or an upload, validated as the document says."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from clips.models import Job
from projects.models import MonthlyUsage
from tests.choppity.conftest import error_of
from tests.factories import UploadFactory

pytestmark = pytest.mark.django_db

URL_EXAMPLE = {
    "source": {"url": "https://example.com/podcast.mp4"},
    "criteria": "funny moments",
    "target_duration": 60,
    "language": "en",
}


def create(client, body, **kwargs):
    return client.post("/choppity/v1/clips", body, format="json", **kwargs)


def test_it_answers_202_queued_with_a_uuid_and_unix_ms_for_the_documents_url_example(chop, team):
    before = int(time.time() * 1000)
    response = create(chop, URL_EXAMPLE)
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"job_id", "status", "created_at"}
    assert body["status"] == "queued"
    assert before - 1000 <= body["created_at"] <= int(time.time() * 1000) + 1000
    job = Job.objects.get(pk=uuid.UUID(body["job_id"]))
    assert response["Location"] == f"/choppity/v1/clips/{job.pk}"
    assert (
        job.team,
        job.source_url,
        job.criteria,
        job.target_duration,
        job.language,
        job.clip_video,
        job.status,
    ) == (team, "https://example.com/podcast.mp4", "funny moments", 60.0, "en", "preview", "queued")
    assert MonthlyUsage.objects.get(team=team).clips_created == 1


def test_it_starts_a_job_from_an_upload_of_the_team(chop, team):
    upload = UploadFactory(team=team)
    response = create(chop, {"source": {"upload_id": str(upload.uuid)}, "criteria": "key insights"})
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.upload, job.source_url, job.criteria, job.target_duration) == (
        upload,
        "",
        "key insights",
        None,
    )


@pytest.mark.parametrize(
    ("asked", "kept"),
    [(0.5, 5.0), (5, 5.0), (42.5, 42.5), (300, 300.0), (3600, 300.0), (1e300, 300.0)],
)
def test_any_positive_target_duration_is_accepted_and_clamped_to_what_the_pipeline_cuts(
    chop, asked, kept
):
    """The document gives target_duration no limits: any positive number is accepted."""
    response = create(chop, {**URL_EXAMPLE, "target_duration": asked})
    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=response.json()["job_id"]).target_duration == kept


def test_the_language_defaults_to_the_teams_preferred_language_else_auto(chop, team):
    job = Job.objects.get(pk=create(chop, {"source": URL_EXAMPLE["source"]}).json()["job_id"])
    assert job.language == ""  # detected by the transcriber
    team.preferred_language = "es"
    team.save()
    job = Job.objects.get(pk=create(chop, {"source": URL_EXAMPLE["source"]}).json()["job_id"])
    assert job.language == "es"
    job = Job.objects.get(pk=create(chop, {**URL_EXAMPLE, "language": "de"}).json()["job_id"])
    assert job.language == "de"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "source"),
        ({"criteria": "funny moments"}, "source"),
        ({"source": {}}, "source"),
        ({"source": None}, "source"),
        ({"source": "https://example.com/podcast.mp4"}, "source"),
        ({"source": {"url": None, "upload_id": None}}, "source"),
        (
            {
                "source": {
                    "url": "https://example.com/a.mp4",
                    "upload_id": "9f8e7d6c-5b4a-3c2b-1a09-0f8e7d6c5b4a",
                }
            },
            "source",
        ),
        ({"source": {"url": "not a url"}}, "source.url"),
        ({"source": {"url": "ftp://example.com/podcast.mp4"}}, "source.url"),
        ({"source": {"url": "https://user:secret@example.com/podcast.mp4"}}, "source.url"),
        ({"source": {"url": "https:///podcast.mp4"}}, "source.url"),
        ({"source": {"url": 42}}, "source.url"),
        ({"source": {"url": "https://example.com/a.mp4", "file": "x"}}, "source.file"),
        ({"source": {"upload_id": "9f8e7d6c-5b4a-3c2b-1a09-0f8e7d6c5b4a"}}, "source.upload_id"),
        ({"source": {"upload_id": "upl_notauuid"}}, "source.upload_id"),
        ({**URL_EXAMPLE, "language": "xx"}, "language"),
        ({**URL_EXAMPLE, "language": "english"}, "language"),
        ({**URL_EXAMPLE, "language": "EN"}, "language"),
        ({**URL_EXAMPLE, "language": ""}, "language"),
        ({**URL_EXAMPLE, "target_duration": "60"}, "target_duration"),
        ({**URL_EXAMPLE, "target_duration": True}, "target_duration"),
        ({**URL_EXAMPLE, "target_duration": 0}, "target_duration"),
        ({**URL_EXAMPLE, "target_duration": -30}, "target_duration"),
        ({**URL_EXAMPLE, "criteria": "x" * 1001}, "criteria"),
        ({**URL_EXAMPLE, "webhook_url": "https://example.com/hook"}, "webhook_url"),
    ],
)
def test_it_refuses_an_invalid_request_naming_the_field(chop, body, field):
    error = error_of(create(chop, body), 400, "BAD_REQUEST")
    assert error["field"] == field
    assert Job.objects.count() == 0


def test_a_body_that_is_not_a_json_object_is_a_bad_request(chop):
    error_of(create(chop, ["source"]), 400, "BAD_REQUEST")
    error_of(
        chop.post("/choppity/v1/clips", "{not json", content_type="application/json"),
        400,
        "BAD_REQUEST",
    )
    error_of(chop.post("/choppity/v1/clips", {"source": "x"}), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_another_teams_upload_is_unknown_here(chop, other_caller):
    upload = UploadFactory(team=other_caller.team)
    error = error_of(create(chop, {"source": {"upload_id": str(upload.uuid)}}), 400, "BAD_REQUEST")
    assert error["field"] == "source.upload_id"
    assert Job.objects.count() == 0


def test_an_exhausted_clip_quota_answers_429_in_the_same_shape(chop, team):
    team.monthly_clip_quota = 0
    team.save()
    error = error_of(create(chop, URL_EXAMPLE), 429, "QUOTA_EXCEEDED")
    assert error["details"]["used"] == 0 and error["details"]["limit"] == 0
    assert error["details"]["reset_at"] > time.time() * 1000
    assert Job.objects.count() == 0


def test_a_crash_outside_the_views_still_answers_this_surface_s_json_shape(rf):
    from clypai.views import handler500

    response = handler500(rf.get("/choppity/v1/clips/anything"))
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}
    }
    native = handler500(rf.get("/v1/clips"))
    assert json.loads(native.content)["error"]["code"] == "internal_error"
