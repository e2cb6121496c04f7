"""Stored files on S3 (a real S3 server on loopback) and on local disk, and their signed links."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from clips.models import Clip, Upload
from clypai.lib.storage import local_path, signed_url
from tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

# 1 MiB and a bit, not a multiple of any chunk size, every byte value present.
VIDEO_BYTES = bytes(range(256)) * 4096 + b"tail of the file"


def _files_under(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _get(url: str) -> requests.Response:
    # Only ever a loopback address here: the test server's endpoint.
    assert urlsplit(url).hostname == "127.0.0.1", url
    return requests.get(url, timeout=10)


# S3 ------------------------------------------------------------------------------


def test_it_stores_an_uploaded_video_in_the_bucket(s3_storage, api, team, media_root):
    response = api.post(
        "/v1/uploads",
        {"file": SimpleUploadedFile("talk.mp4", VIDEO_BYTES, content_type="video/mp4")},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["size"] == len(VIDEO_BYTES)
    assert data["sha256"] == hashlib.sha256(VIDEO_BYTES).hexdigest()
    upload = Upload.objects.get(pk=data["id"])
    assert upload.file.name == f"uploads/{team.pk}/{upload.pk}.mp4"
    assert s3_storage.get_bytes(upload.file.name) == VIDEO_BYTES
    head = s3_storage.server.client().head_object(
        Bucket=s3_storage.bucket, Key=s3_storage.key(upload.file.name)
    )
    assert head["ContentLength"] == len(VIDEO_BYTES)
    assert _files_under(media_root) == []  # nothing went to local disk


def test_a_signed_s3_link_downloads_the_file_until_it_expires(s3_storage):
    name = default_storage.save("exports/clip_abc/final.mp4", ContentFile(VIDEO_BYTES))

    # S3 dates a signature to the second, so 2 s leaves at least 1 s to use the link.
    url = signed_url(name, ttl_seconds=2, download_name="My clip.mp4")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3_storage.server.endpoint_url
    assert parts.path == f"/{s3_storage.bucket}/media/exports/clip_abc/final.mp4"
    assert "X-Amz-Expires=2" in parts.query
    first = _get(url)
    assert first.status_code == 200, first.text
    assert first.content == VIDEO_BYTES
    assert first.headers["Content-Disposition"] == 'attachment; filename="My clip.mp4"'

    time.sleep(3.2)
    expired = _get(url)
    assert expired.status_code == 403
    assert "Request has expired" in expired.text


def test_it_refuses_an_s3_link_whose_signature_was_changed(s3_storage):
    name = default_storage.save("clips/x/video.mp4", ContentFile(b"clip bytes"))
    url = signed_url(name, ttl_seconds=60)
    assert _get(url).content == b"clip bytes"

    # Another object's key under the same signature.
    forged = url.replace("/clips/x/video.mp4", "/clips/x/other.mp4")
    assert _get(forged).status_code == 403
    longer = url.replace("X-Amz-Expires=60", "X-Amz-Expires=6000")
    assert _get(longer).status_code == 403


def test_a_clips_output_urls_are_presigned_links_on_s3(s3_storage, api, team):
    clip = ClipFactory(team=team, status=Clip.Status.COMPLETED)
    clip.video.save("video.mp4", ContentFile(VIDEO_BYTES), save=False)
    clip.captions.save(
        "captions.srt", ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nHi\n"), save=False
    )
    clip.save()

    response = api.get(f"/v1/clips/{clip.pk}")

    assert response.status_code == 200
    outputs = response.json()["data"]["outputs"]
    assert outputs["thumbnailUrl"] is None
    assert outputs["videoUrl"].startswith(f"{s3_storage.server.endpoint_url}/{s3_storage.bucket}/")
    assert "X-Amz-Signature=" in outputs["videoUrl"]
    assert _get(outputs["videoUrl"]).content == VIDEO_BYTES
    assert _get(outputs["captionsUrl"]).content.endswith(b"Hi\n")


def test_local_path_downloads_an_s3_object_once(s3_storage, tmp_path):
    name = default_storage.save("uploads/t/source.mp4", ContentFile(VIDEO_BYTES))
    cache_dir = tmp_path / "cache"

    path = local_path(name, cache_dir=cache_dir)

    assert path.parent == cache_dir
    assert path.read_bytes() == VIDEO_BYTES
    assert not list(cache_dir.glob("*.part"))
    # Later stages reuse the copy rather than downloading again.
    default_storage.delete(name)
    assert not default_storage.exists(name)
    assert local_path(name, cache_dir=cache_dir) == path
    assert path.read_bytes() == VIDEO_BYTES


def test_workers_sharing_a_cache_folder_fetch_the_same_object_at_once(s3_storage, tmp_path):
    # Found by tests/clypai/test_serve.py: two workers of one machine analysing one
    # source wrote the same ".part" file, and one rename found it gone.
    import threading

    big = VIDEO_BYTES * 4  # a few chunks: the writers overlap
    name = default_storage.save("uploads/t/shared.mp4", ContentFile(big))
    cache_dir = tmp_path / "cache"
    found, errors, start = [], [], threading.Barrier(4)

    def fetch():
        start.wait()
        try:
            found.append(local_path(name, cache_dir=cache_dir))
        except Exception as exc:  # the failure this test is about
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(found)) == 1
    assert found[0].read_bytes() == big
    assert not list(cache_dir.glob("*.part"))


# Local disk ----------------------------------------------------------------------


def test_a_local_signed_link_serves_the_file(client, media_root):
    name = default_storage.save("exports/clip_abc/final.mp4", ContentFile(VIDEO_BYTES))
    assert (media_root / name).read_bytes() == VIDEO_BYTES

    url = signed_url(name, ttl_seconds=60, download_name="My clip.mp4")

    assert url.startswith("/files/")
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == VIDEO_BYTES
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Disposition"] == 'attachment; filename="My clip.mp4"'


def test_a_local_signed_link_is_absolute_when_given_the_request(rf, settings, media_root):
    settings.ALLOWED_HOSTS = ["clyp.example.org"]
    name = default_storage.save("clips/a/video.mp4", ContentFile(b"x"))
    request = rf.get("/v1/clips/a", HTTP_HOST="clyp.example.org")
    url = signed_url(name, ttl_seconds=60, request=request)
    assert url.startswith("http://clyp.example.org/files/")


def test_it_rejects_a_tampered_local_link(client, media_root):
    secret = default_storage.save("exports/a/secret.mp4", ContentFile(b"team A's clip"))
    other = default_storage.save("exports/b/other.mp4", ContentFile(b"team B's clip"))
    url = signed_url(other, ttl_seconds=60)
    token = url.removeprefix("/files/")

    # (not the last character: some of its bits are base64 padding, ignored)
    for at in (0, len(token) // 2, len(token) - 2):
        flipped = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
        assert client.get(f"/files/{flipped}").status_code == 404
    # Half of someone else's token spliced onto this one.
    secret_token = signed_url(secret, ttl_seconds=60).removeprefix("/files/")
    spliced = token[: len(token) // 2] + secret_token[len(secret_token) // 2 :]
    assert client.get(f"/files/{spliced}").status_code == 404
    assert client.get("/files/not-a-token").status_code == 404
    # The untouched link still works.
    assert b"".join(client.get(url).streaming_content) == b"team B's clip"


def _decodings(token: str) -> list[bytes]:
    """Every way a curious holder of the link might decode its token."""
    import base64

    found = [token.encode()]
    for part in [token, *token.replace(".", ":").split(":")]:
        padded = part + "=" * (-len(part) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                found.append(decode(padded))
            except ValueError:
                pass
    return found


def test_a_local_link_does_not_show_where_the_file_is_stored(media_root):
    name = default_storage.save("clips/team_QWERTY/clip_SECRETID/video.mp4", ContentFile(b"clip"))
    token = signed_url(name, ttl_seconds=60, download_name="Q3 layoffs.mp4").removeprefix("/files/")
    for decoded in _decodings(token):
        for piece in (b"team_QWERTY", b"clip_SECRETID", b"video.mp4", b"clips/", b"layoffs"):
            assert piece not in decoded
    # Two links to the same file do not even look alike.
    again = signed_url(name, ttl_seconds=60).removeprefix("/files/")
    assert again[20:] != token[20:]


def test_it_rejects_an_expired_local_link(client, media_root):
    name = default_storage.save("exports/a/final.mp4", ContentFile(b"clip"))
    # Expiry is kept to the second: 2 s leaves at least 1 s to use the link.
    url = signed_url(name, ttl_seconds=2)
    assert client.get(url).status_code == 200

    time.sleep(2.5)

    assert client.get(url).status_code == 404


def test_it_answers_404_for_a_signed_link_to_a_deleted_file(client, media_root):
    name = default_storage.save("exports/a/gone.mp4", ContentFile(b"clip"))
    url = signed_url(name, ttl_seconds=60)
    default_storage.delete(name)
    assert client.get(url).status_code == 404
