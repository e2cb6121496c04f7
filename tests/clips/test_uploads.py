"""POST /v1/uploads and GET /v1/uploads/{id}: source videos sent as multipart files."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clips.models import Clip, Upload
from tests.factories import UploadFactory

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UPLOAD_FIELDS = {"id", "filename", "contentType", "size", "sha256", "createdAt"}
SPEAKER = "talking_head/grid/bbaf2n.mpg"  # 452,608 bytes of MPEG-1 video


@pytest.fixture
def video(shared_media) -> bytes:
    return (shared_media / SPEAKER).read_bytes()


def error_of(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is False, body
    return body["error"]


def data_of(response, status_code: int = 200):
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is True, body
    return body["data"]


def upload(api, content: bytes, name="bbaf2n.mpg", content_type="video/mpeg"):
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return api.post("/v1/uploads", {"file": file}, format="multipart")


def stored_files(media_root) -> list:
    root = media_root / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_it_stores_an_uploaded_video(api, team, media_root, video):
    data = data_of(upload(api, video), 201)
    assert set(data) == UPLOAD_FIELDS
    assert re.fullmatch(r"upl_[A-Za-z0-9]{16}", data["id"])
    assert data["filename"] == "bbaf2n.mpg"
    assert data["size"] == len(video) == 452608
    assert data["sha256"] == hashlib.sha256(video).hexdigest()
    assert data["contentType"] == "video/mpeg"
    assert ISO_Z.match(data["createdAt"])

    row = Upload.objects.get(pk=data["id"])
    assert row.team == team
    assert row.file.name == f"uploads/{team.pk}/{row.pk}.mpg"
    path = media_root / row.file.name
    assert path.read_bytes() == video
    assert stored_files(media_root) == [path]


def test_the_hash_is_of_the_bytes_received(api, video):
    """The handler hashes chunk by chunk: the result matches hashing the whole file."""
    content = video[:200_000] + b"\x00" * 70_000 + video[-1000:]
    data = data_of(upload(api, content, name="spliced.mpg"), 201)
    assert data["sha256"] == hashlib.sha256(content).hexdigest()
    assert data["size"] == len(content)


def test_it_gets_an_upload(api, video):
    created = data_of(upload(api, video), 201)
    response = api.get(f"/v1/uploads/{created['id']}")
    assert data_of(response) == created


def test_the_same_file_twice_makes_two_uploads_with_one_hash(api, media_root, video):
    first = data_of(upload(api, video), 201)
    second = data_of(upload(api, video), 201)
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert [p.read_bytes() == video for p in stored_files(media_root)] == [True, True]


def test_a_small_file_is_stored_whole(api, media_root):
    content = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256))
    data = data_of(upload(api, content, name="tiny.mp4", content_type="video/mp4"), 201)
    assert data["size"] == len(content)
    assert data["sha256"] == hashlib.sha256(content).hexdigest()
    assert data["contentType"] == "video/mp4"
    row = Upload.objects.get(pk=data["id"])
    assert (media_root / row.file.name).read_bytes() == content
    assert row.file.name.endswith(".mp4")


def test_a_file_without_an_extension_is_stored_as_bin(api, team, media_root):
    data = data_of(upload(api, b"abc", name="recording", content_type=""), 201)
    row = Upload.objects.get(pk=data["id"])
    assert data["filename"] == "recording"
    assert row.file.name == f"uploads/{team.pk}/{row.pk}.bin"


def test_a_filename_cannot_leave_the_upload_folder(api, team, media_root):
    boundary = "BoUnDaRy"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="../../../etc/evil.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        + b"payload"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = api.post(
        "/v1/uploads", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    data = data_of(response, 201)
    assert "/" not in data["filename"] and ".." not in data["filename"]
    row = Upload.objects.get(pk=data["id"])
    assert row.file.name == f"uploads/{team.pk}/{row.pk}.mp4"
    assert (media_root / row.file.name).read_bytes() == b"payload"
    assert not (media_root.parent / "etc").exists()


# Refusals --------------------------------------------------------------------------


def test_it_wants_multipart_not_json(api, media_root):
    response = api.post("/v1/uploads", {"file": "AAAAGGZ0eXA="}, format="json")
    error = error_of(response, 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == "file"
    assert "multipart" in error["message"]
    assert not Upload.objects.exists()


def test_it_needs_a_file_part(api, media_root):
    response = api.post("/v1/uploads", {"video": "nothing"}, format="multipart")
    error = error_of(response, 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == "file"
    assert not Upload.objects.exists()


def test_a_file_under_another_name_is_not_taken(api, media_root, video):
    file = SimpleUploadedFile("bbaf2n.mpg", video, content_type="video/mpeg")
    response = api.post("/v1/uploads", {"video": file}, format="multipart")
    assert error_of(response, 400)["field"] == "file"
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_it_refuses_an_empty_file(api, media_root):
    error = error_of(upload(api, b"", name="empty.mp4"), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == "file"
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_it_refuses_a_file_over_the_limit_while_streaming(api, settings, media_root, video):
    """The request declares less than limit + 64 KiB, so the upload handler must stop it."""
    settings.CLYPAI_MAX_UPLOAD_BYTES = 400_000
    assert 400_000 < len(video) < 400_000 + 64 * 1024
    error = error_of(upload(api, video), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"limit": 400_000}
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_it_refuses_a_request_declaring_too_many_bytes(api, settings, media_root, video):
    settings.CLYPAI_MAX_UPLOAD_BYTES = 1000
    error = error_of(upload(api, video), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"limit": 1000}
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_a_file_of_exactly_the_limit_is_taken(api, settings, video):
    settings.CLYPAI_MAX_UPLOAD_BYTES = len(video)
    data = data_of(upload(api, video), 201)
    assert data["size"] == len(video)
    assert data["sha256"] == hashlib.sha256(video).hexdigest()


def test_one_byte_over_the_limit_is_refused(api, settings, video):
    settings.CLYPAI_MAX_UPLOAD_BYTES = len(video) - 1
    assert error_of(upload(api, video), 413)["code"] == "payload_too_large"
    assert not Upload.objects.exists()


# Teams -----------------------------------------------------------------------------


def test_another_teams_upload_is_not_found(api, other_caller, video):
    theirs = data_of(upload(other_caller.client, video), 201)
    error = error_of(api.get(f"/v1/uploads/{theirs['id']}"), 404)
    assert error == {"code": "not_found", "message": "Upload not found"}
    assert data_of(other_caller.client.get(f"/v1/uploads/{theirs['id']}"))["id"] == theirs["id"]


def test_an_unknown_upload_is_not_found(api):
    assert error_of(api.get("/v1/uploads/upl_doesnotexist000"), 404)["code"] == "not_found"
    assert error_of(api.get("/v1/uploads/upl_%00"), 404)["code"] == "not_found"


def test_uploads_need_authentication(anon, team, video):
    existing = UploadFactory(team=team)
    assert error_of(upload(anon, video), 401)["code"] == "unauthorized"
    assert error_of(anon.get(f"/v1/uploads/{existing.pk}"), 401)["code"] == "unauthorized"
    assert Upload.objects.count() == 1


# Clips from uploads ----------------------------------------------------------------


def test_a_clip_is_made_from_an_upload(api, team, video):
    uploaded = data_of(upload(api, video), 201)
    response = api.post(
        "/v1/clips",
        {"sourceUploadId": uploaded["id"], "name": "From upload", "startTime": 0.5, "endTime": 2.5},
        format="json",
    )
    clip = data_of(response, 201)
    assert clip["sourceUploadId"] == uploaded["id"]
    assert clip["sourceVideoUrl"] is None
    assert clip["status"] == "pending"
    assert clip["duration"] == 2.0
    row = Clip.objects.get(pk=clip["id"])
    assert row.upload_id == uploaded["id"] and row.team == team
    assert data_of(api.get(f"/v1/clips/{clip['id']}"))["sourceUploadId"] == uploaded["id"]


def test_a_clip_cannot_be_made_from_another_teams_upload(api, other_caller, video):
    theirs = data_of(upload(other_caller.client, video), 201)
    response = api.post("/v1/clips", {"sourceUploadId": theirs["id"]}, format="json")
    error = error_of(response, 400)
    assert error["field"] == "sourceUploadId"
    assert not Clip.objects.exists()


def test_the_same_bytes_make_one_source_per_team_and_no_analysis_is_shared(
    api, other_caller, team, video
):
    """Shared by hash across teams, how fast a clip finishes would tell one team that
    another had processed the same video (and what it had found)."""
    from clips.analysis import source_ingest_upload
    from clips.models import Analysis

    ours = Upload.objects.get(pk=data_of(upload(api, video), 201)["id"])
    theirs = Upload.objects.get(pk=data_of(upload(other_caller.client, video), 201)["id"])
    source = source_ingest_upload(ours)
    Analysis.objects.create(source=source, kind="transcript", key="k", result={"text": "ours"})

    other = source_ingest_upload(theirs)
    assert other.pk != source.pk and other.sha256 == source.sha256
    assert (source.team, other.team) == (team, other_caller.team)
    assert not Analysis.objects.filter(source=other).exists()
    # Within a team, the same bytes are one source, analysed once.
    again = Upload.objects.get(pk=data_of(upload(api, video), 201)["id"])
    assert source_ingest_upload(again) == source
