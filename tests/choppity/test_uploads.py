"""POST /choppity/v1/uploads: a multipart upload, or a presigned PUT where files live on
S3; either upload_id then works as source.upload_id."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import timedelta

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from clips.analysis import source_ingest_upload
from clips.models import Job, Upload, client_writable
from clips.sweep import incoming_uploads_purge
from tests.choppity.conftest import error_of

pytestmark = pytest.mark.django_db

SPEAKER = "talking_head/grid/bbaf2n.mpg"


@pytest.fixture
def video(shared_media) -> bytes:
    return (shared_media / SPEAKER).read_bytes()


def upload(client, content: bytes, name="bbaf2n.mpg"):
    file = SimpleUploadedFile(name, content, content_type="video/mpeg")
    return client.post("/choppity/v1/uploads", {"file": file}, format="multipart")


def start_job(client, upload_id):
    return client.post("/choppity/v1/clips", {"source": {"upload_id": upload_id}}, format="json")


def test_a_multipart_upload_answers_an_upload_id_that_starts_a_job(chop, team, video):
    before = int(time.time() * 1000)
    response = upload(chop, video)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"upload_id", "status", "filename", "size", "created_at"}
    assert (body["status"], body["filename"], body["size"]) == ("ready", "bbaf2n.mpg", len(video))
    assert body["created_at"] >= before - 1000
    row = Upload.objects.get(uuid=uuid.UUID(body["upload_id"]))
    assert (row.team, row.sha256) == (team, hashlib.sha256(video).hexdigest())

    job = start_job(chop, body["upload_id"])
    assert job.status_code == 202, job.content
    assert Job.objects.get(pk=job.json()["job_id"]).upload == row


def test_an_upload_is_refused_when_empty_missing_or_too_large(chop, settings, video):
    assert error_of(upload(chop, b""), 400, "BAD_REQUEST")["field"] == "file"
    response = chop.post("/choppity/v1/uploads", {"other": "x"}, format="multipart")
    assert error_of(response, 400, "BAD_REQUEST")["field"] == "file"
    settings.CLYPAI_MAX_UPLOAD_BYTES = 100_000
    error = error_of(upload(chop, video), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"limit": 100_000}
    assert Upload.objects.count() == 0


def test_on_local_disk_there_is_no_presigned_put(chop):
    response = chop.post("/choppity/v1/uploads", {"filename": "talk.mp4"}, format="json")
    assert error_of(response, 400, "BAD_REQUEST")["field"] == "file"


def test_an_upload_needs_credentials(anon, video):
    error_of(upload(anon, video), 401, "UNAUTHORIZED")


def test_on_s3_a_presigned_put_upload_starts_a_job_once_its_bytes_are_there(
    s3_storage, chop, other_chop, team, video
):
    response = chop.post(
        "/choppity/v1/uploads", {"filename": "my talk.mpg", "size": len(video)}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "upload_id",
        "status",
        "filename",
        "created_at",
        "upload_url",
        "upload_method",
        "expires_at",
    }
    assert (body["status"], body["upload_method"], body["filename"]) == (
        "pending",
        "PUT",
        "my_talk.mpg",
    )
    assert 3500_000 < body["expires_at"] - body["created_at"] <= 3600_000
    assert "X-Amz-Signature=" in body["upload_url"]
    upload_id = body["upload_id"]

    # Not PUT yet: the id names nothing that can be clipped.
    assert error_of(start_job(chop, upload_id), 400, "BAD_REQUEST")["field"] == "source.upload_id"

    put = requests.put(body["upload_url"], data=video, timeout=30)
    assert put.status_code == 200, put.text

    # Another team cannot use it, though it exists.
    assert error_of(start_job(other_chop, upload_id), 400, "BAD_REQUEST")["field"] == (
        "source.upload_id"
    )
    first = start_job(chop, upload_id)
    assert first.status_code == 202, first.content
    row = Upload.objects.get(uuid=uuid.UUID(upload_id))
    # Recorded at once, hashed later by the worker that ingests it (not in the request).
    assert (row.team, row.size_bytes, row.sha256, row.filename) == (
        team,
        len(video),
        "",
        "my_talk.mpg",
    )
    assert s3_storage.get_bytes(row.file.name) == video
    assert Job.objects.get(pk=first.json()["job_id"]).upload == row
    # A second job reuses the recorded upload.
    second = start_job(chop, upload_id)
    assert Job.objects.get(pk=second.json()["job_id"]).upload == row
    assert Upload.objects.count() == 1
    source = source_ingest_upload(row)
    row.refresh_from_db()
    assert row.sha256 == source.sha256 == hashlib.sha256(video).hexdigest()
    assert row.source == source


def test_on_s3_a_declared_or_stored_size_past_the_limit_is_refused(
    s3_storage, chop, settings, video
):
    settings.CLYPAI_MAX_UPLOAD_BYTES = 100_000
    response = chop.post(
        "/choppity/v1/uploads", {"filename": "a.mpg", "size": 100_001}, format="json"
    )
    error_of(response, 413, "PAYLOAD_TOO_LARGE")
    body = chop.post("/choppity/v1/uploads", {"filename": "a.mpg"}, format="json").json()
    assert requests.put(body["upload_url"], data=video, timeout=30).status_code == 200
    error_of(start_job(chop, body["upload_id"]), 413, "PAYLOAD_TOO_LARGE")
    assert Upload.objects.count() == 0


def test_presign_requests_are_validated(s3_storage, chop):
    response = chop.post("/choppity/v1/uploads", {"size": 10}, format="json")
    assert error_of(response, 400, "BAD_REQUEST")["field"] == "filename"
    response = chop.post("/choppity/v1/uploads", {"filename": "a.mp4", "size": 0}, format="json")
    assert error_of(response, 400, "BAD_REQUEST")["field"] == "size"
    response = chop.post("/choppity/v1/uploads", {"filename": "a.mp4", "x": 1}, format="json")
    assert error_of(response, 400, "BAD_REQUEST")["field"] == "x"


# A presigned PUT URL stays writable for an hour: nothing read later may come from there.


def _presigned(chop, filename="talk.mpg") -> dict:
    response = chop.post("/choppity/v1/uploads", {"filename": filename}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _incoming(s3_storage) -> list[str]:
    listed = s3_storage.server.client().list_objects_v2(
        Bucket=s3_storage.bucket, Prefix=s3_storage.key("incoming/")
    )
    return [entry["Key"] for entry in listed.get("Contents", ())]


def test_on_s3_bytes_put_again_after_a_job_took_the_upload_in_never_reach_its_source(
    s3_storage, chop, settings, video
):
    settings.CLYPAI_MAX_UPLOAD_BYTES = len(video) + 1000
    body = _presigned(chop)
    assert requests.put(body["upload_url"], data=video, timeout=30).status_code == 200
    assert start_job(chop, body["upload_id"]).status_code == 202
    row = Upload.objects.get(uuid=uuid.UUID(body["upload_id"]))
    assert not client_writable(row.file.name) and row.size_bytes == len(video)
    assert _incoming(s3_storage) == []  # taken in: the object under the PUT URL is gone

    # The URL still takes a PUT for the rest of its hour: other bytes, past the limit.
    other = b"\x00not the video" * (len(video) // 7)
    assert len(other) > settings.CLYPAI_MAX_UPLOAD_BYTES
    assert requests.put(body["upload_url"], data=other, timeout=30).status_code == 200

    assert s3_storage.get_bytes(row.file.name) == video
    source = source_ingest_upload(row)
    assert (source.sha256, source.size_bytes) == (hashlib.sha256(video).hexdigest(), len(video))
    assert not client_writable(source.file.name)
    assert s3_storage.get_bytes(source.file.name) == video
    # A second job of the same upload still finds the same source and bytes.
    assert start_job(chop, body["upload_id"]).status_code == 202
    assert Upload.objects.count() == 1


def test_on_s3_a_presigned_upload_never_taken_in_is_purged_by_the_sweep(
    s3_storage, chop, settings, video
):
    settings.CLYPAI_INCOMING_UPLOAD_TTL_SECONDS = 86400
    body = _presigned(chop)
    assert requests.put(body["upload_url"], data=video, timeout=30).status_code == 200
    assert len(_incoming(s3_storage)) == 1

    assert incoming_uploads_purge() == 0  # its job may still come
    assert len(_incoming(s3_storage)) == 1
    assert incoming_uploads_purge(now=timezone.now() + timedelta(seconds=86400 + 60)) == 1
    assert _incoming(s3_storage) == []
    assert error_of(start_job(chop, body["upload_id"]), 400, "BAD_REQUEST")["field"] == (
        "source.upload_id"
    )
