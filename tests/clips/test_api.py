"""POST/GET/DELETE /v1/clips: the clip object and its validation, as the document says."""

from __future__ import annotations

import re

import pytest

from clips.models import Clip
from projects.models import MonthlyUsage
from tests.factories import BrandKitFactory, ClipFactory, ProjectFactory, UploadFactory

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

pytestmark = pytest.mark.django_db

DOC_EXAMPLE = {
    "name": "Product Demo Highlight",
    "sourceVideoUrl": "https://example.com/video.mp4",
    "config": {
        "aspectRatio": "9:16",
        "platform": "tiktok",
        "enableCaptions": True,
        "reframing": True,
        "hookDetection": True,
    },
}


def create(api, body):
    return api.post("/v1/clips", body, format="json")


def error_of(response):
    body = response.json()
    assert body["success"] is False, body
    return body["error"]


def test_it_creates_a_pending_clip_from_the_documents_example(api, team):
    project = ProjectFactory(team=team)
    response = create(api, {"projectId": project.pk, **DOC_EXAMPLE})
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    clip = body["data"]
    assert re.fullmatch(r"clip_[A-Za-z0-9]{16}", clip["id"])
    assert clip["projectId"] == project.pk
    assert clip["name"] == "Product Demo Highlight"
    assert clip["sourceVideoUrl"] == "https://example.com/video.mp4"
    assert clip["status"] == "pending"
    assert clip["config"] == {
        "aspectRatio": "9:16",
        "platform": "tiktok",
        "enableCaptions": True,
        "reframing": True,
        "hookDetection": True,
        "brandKitId": None,
        "maxDuration": None,
        "criteria": None,
        "language": None,
        "layout": "auto",
    }
    assert clip["outputs"] is None and clip["metadata"] is None and clip["error"] is None
    assert ISO_Z.match(clip["createdAt"]) and ISO_Z.match(clip["updatedAt"])
    row = Clip.objects.get(pk=clip["id"])
    assert row.team == team and row.status == "pending" and row.platform == "tiktok"


def test_it_puts_a_clip_without_project_in_the_teams_default_project(api, team):
    response = create(api, {"sourceVideoUrl": "https://example.com/a.mp4"})
    assert response.status_code == 201
    clip = response.json()["data"]
    assert clip["projectId"] == team.projects.get(is_default=True).pk
    assert clip["config"]["aspectRatio"] == "9:16"
    assert clip["config"]["enableCaptions"] is True
    assert clip["startTime"] is None and clip["endTime"] is None and clip["duration"] is None


def test_it_keeps_a_requested_time_range_and_its_duration(api):
    response = create(
        api, {"sourceVideoUrl": "https://example.com/a.mp4", "startTime": 120.5, "endTime": 165.7}
    )
    clip = response.json()["data"]
    assert (clip["startTime"], clip["endTime"], clip["duration"]) == (120.5, 165.7, 45.2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "sourceVideoUrl"),
        ({"sourceVideoUrl": "ftp://example.com/a.mp4"}, "sourceVideoUrl"),
        ({"sourceVideoUrl": "not a url"}, "sourceVideoUrl"),
        ({"sourceVideoUrl": "file:///etc/passwd"}, "sourceVideoUrl"),
        ({"sourceVideoUrl": "https://user:pw@example.com/a.mp4"}, "sourceVideoUrl"),
        ({"sourceVideoUrl": 42}, "sourceVideoUrl"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "startTime": 10}, "endTime"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "endTime": 10}, "startTime"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "startTime": 10, "endTime": 10}, "endTime"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "startTime": 10, "endTime": 5}, "endTime"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "startTime": -1, "endTime": 5}, "startTime"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "startTime": "10", "endTime": 20}, "startTime"),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"aspectRatio": "3:2"}},
            "config.aspectRatio",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"platform": "myspace"}},
            "config.platform",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"maxDuration": 14}},
            "config.maxDuration",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"maxDuration": 301}},
            "config.maxDuration",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"enableCaptions": "yes"}},
            "config.enableCaptions",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"brandKitId": "brand_nope"}},
            "config.brandKitId",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"language": "xx"}},
            "config.language",
        ),
        (
            {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"aspect_ratio": "9:16"}},
            "config.aspect_ratio",
        ),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "config": "9:16"}, "config"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "projectId": "proj_nope"}, "projectId"),
        ({"sourceVideoUrl": "https://e.com/a.mp4", "colour": "red"}, "colour"),
        ({"sourceUploadId": "upl_nope"}, "sourceUploadId"),
        (
            {
                "sourceVideoUrl": "https://e.com/a.mp4",
                "startTime": 0,
                "endTime": 100,
                "config": {"maxDuration": 30},
            },
            "endTime",
        ),
    ],
)
def test_it_rejects_a_bad_request_naming_the_field_and_creates_nothing(api, team, body, field):
    response = create(api, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert error["message"]
    assert Clip.objects.count() == 0
    assert not MonthlyUsage.objects.filter(team=team, clips_created__gt=0).exists()


def test_it_rejects_both_a_url_and_an_upload(api, team):
    upload = UploadFactory(team=team)
    response = create(api, {"sourceVideoUrl": "https://e.com/a.mp4", "sourceUploadId": upload.pk})
    assert response.status_code == 400
    assert error_of(response)["field"] == "sourceUploadId"


def test_it_accepts_an_upload_of_its_own_team_only(api, team, other_caller):
    own = UploadFactory(team=team)
    foreign = UploadFactory(team=other_caller.team)
    assert create(api, {"sourceUploadId": own.pk}).status_code == 201
    response = create(api, {"sourceUploadId": foreign.pk})
    assert response.status_code == 400
    assert error_of(response)["field"] == "sourceUploadId"


def test_it_refuses_another_teams_project_and_brand_kit(api, other_caller):
    project = ProjectFactory(team=other_caller.team)
    brand_kit = BrandKitFactory(team=other_caller.team)
    response = create(api, {"sourceVideoUrl": "https://e.com/a.mp4", "projectId": project.pk})
    assert error_of(response)["field"] == "projectId"
    response = create(
        api, {"sourceVideoUrl": "https://e.com/a.mp4", "config": {"brandKitId": brand_kit.pk}}
    )
    assert error_of(response)["field"] == "config.brandKitId"


def test_it_applies_its_own_brand_kit(api, team):
    brand_kit = BrandKitFactory(team=team)
    response = create(
        api,
        {
            "sourceVideoUrl": "https://e.com/a.mp4",
            "config": {
                "brandKitId": brand_kit.pk,
                "criteria": "funny moments",
                "language": "en",
                "maxDuration": 60,
            },
        },
    )
    config = response.json()["data"]["config"]
    assert config["brandKitId"] == brand_kit.pk
    assert config["criteria"] == "funny moments"
    assert config["language"] == "en"
    assert config["maxDuration"] == 60


def test_it_answers_malformed_json_in_the_envelope(api):
    response = api.post("/v1/clips", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


def test_it_rejects_a_body_that_is_not_an_object(api):
    response = api.post("/v1/clips", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


def test_it_gets_a_clip_with_every_field(api, team):
    clip = ClipFactory(
        team=team,
        status="completed",
        start_time=1.0,
        end_time=3.5,
        duration=2.5,
        metadata={
            "hooks": [{"time": 1.2, "text": "Watch this", "confidence": 0.9}],
            "highlights": [1.5],
            "sentiment": "positive",
            "topics": ["demo"],
        },
    )
    response = api.get(f"/v1/clips/{clip.pk}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) >= {
        "id",
        "projectId",
        "name",
        "sourceVideoUrl",
        "status",
        "duration",
        "startTime",
        "endTime",
        "config",
        "outputs",
        "metadata",
        "createdAt",
        "updatedAt",
    }
    assert data["metadata"]["hooks"][0]["text"] == "Watch this"
    assert data["metadata"]["sentiment"] == "positive"
    assert data["duration"] == 2.5


def test_a_failed_clip_says_why(api, team):
    clip = ClipFactory(
        team=team,
        status="failed",
        error="Clip generation failed: no video stream",
        error_code="processing_failed",
        error_details={"streams": ["audio"]},
    )
    data = api.get(f"/v1/clips/{clip.pk}").json()["data"]
    assert data["status"] == "failed"
    assert data["error"] == {
        "code": "processing_failed",
        "message": "Clip generation failed: no video stream",
        "details": {"streams": ["audio"]},
    }


# The document's "Processing Failed" error, exactly as it shows it.
DOC_PROCESSING_FAILED = {
    "success": False,
    "error": {
        "code": "processing_failed",
        "message": "Clip generation failed: Unsupported video codec",
        "details": {"codec": "h265", "supportedCodecs": ["h264", "vp9"]},
    },
}


def test_a_clip_that_failed_on_its_codec_carries_the_documents_error_in_data_error(api, team):
    doc = DOC_PROCESSING_FAILED["error"]
    clip = ClipFactory(
        team=team,
        status="failed",
        error=doc["message"],
        error_code=doc["code"],
        error_details=doc["details"],
    )
    fetched = api.get(f"/v1/clips/{clip.pk}")
    assert fetched.status_code == 200
    assert fetched.json()["data"]["error"] == doc
    # The OpenAPI document shows it so, as an example of GET /v1/clips/{clip_id}.
    document = api.get("/v1/openapi.json").json()
    get = document["paths"]["/v1/clips/{clip_id}"]["get"]
    examples = get["responses"]["200"]["content"]["application/json"]["examples"]
    assert [e["value"]["data"]["error"] for e in examples.values()] == [doc]
    schema = document["components"]["schemas"]["ClipErrorOut"]
    assert set(schema["properties"]) == {"code", "message", "field", "details"}


def test_a_failed_export_answers_the_documents_processing_failed_error(api, team):
    from clips.models import Export

    clip = ClipFactory(team=team, status="completed")
    export = Export.objects.create(
        clip=clip,
        format="mp4",
        quality="high",
        platform="twitter",
        status="failed",
        error="The clip is 147.0 s long; this export allows at most 140 s",
        error_details={"found": {"duration": 147.0}, "limit": {"maxSeconds": 140}},
    )
    response = api.get(f"/v1/exports/{export.pk}")
    assert response.status_code == 422
    body = response.json()
    assert set(body) == set(DOC_PROCESSING_FAILED) and body["success"] is False
    assert set(body["error"]) == set(DOC_PROCESSING_FAILED["error"])
    assert body["error"]["code"] == "processing_failed"
    assert body["error"]["message"] == (
        "Clip export failed: The clip is 147.0 s long; this export allows at most 140 s"
    )
    assert body["error"]["details"] == {
        "found": {"duration": 147.0},
        "limit": {"maxSeconds": 140},
        "exportId": export.pk,
    }


def test_another_teams_clip_is_not_found(api, other_caller):
    clip = ClipFactory(team=other_caller.team)
    for response in (
        api.get(f"/v1/clips/{clip.pk}"),
        api.delete(f"/v1/clips/{clip.pk}"),
        api.post(f"/v1/clips/{clip.pk}/export", {"format": "mp4"}, format="json"),
    ):
        assert response.status_code == 404
        assert error_of(response) == {"code": "not_found", "message": "Clip not found"}
    assert Clip.objects.filter(pk=clip.pk).exists()


def test_it_deletes_a_clip_and_its_files(api, team, media_root):
    from django.core.files.base import ContentFile

    clip = ClipFactory(team=team, status="completed")
    clip.captions.save("x.srt", ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"))
    path = media_root / clip.captions.name
    assert path.exists()
    response = api.delete(f"/v1/clips/{clip.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"id": clip.pk, "deleted": True}}
    assert not Clip.objects.filter(pk=clip.pk).exists()
    # Files go once the transaction commits (the test transaction does not): check the row.
    assert api.get(f"/v1/clips/{clip.pk}").status_code == 404


def test_unknown_routes_under_v1_answer_json(api):
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_method_not_allowed_is_in_the_envelope(api, team):
    clip = ClipFactory(team=team)
    response = api.put(f"/v1/clips/{clip.pk}", {}, format="json")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
