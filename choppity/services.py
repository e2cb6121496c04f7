"""Writes of /choppity/v1/ that the native services don't already do: uploads by
presigned PUT.

A presigned upload needs no row until its bytes exist: its UUID and the caller's team
are in the object's key (`incoming/<team>/<uuid>/<filename>`), so another team cannot
name it. When a job first names it, the object is copied by the storage server to the
upload's own key (`uploads/<team>/<id>.<ext>`, which no client can write: the PUT URL
stays valid for an hour, and whatever is PUT later never reaches the copy), its size is
checked on the copy, and it is recorded as an ordinary `Upload` with that UUID. Its
SHA-256 is computed by the worker that ingests it, from the copy (hashing gigabytes has
no place inside a request; sources are keyed by the SHA-256 of their bytes, computed by
us, never taken from the client). The sweep purges incoming objects never taken in.
"""

from __future__ import annotations

import mimetypes
import re
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, transaction

from clips.models import Upload, incoming_upload_dir, upload_path
from clypai.api.errors import InvalidRequest, PayloadTooLarge
from clypai.lib.storage import storage_copy
from projects.models import Team

from .selectors import parse_uuid, upload_find

PRESIGN_TTL_SECONDS = 3600
_FIELD = "source.upload_id"


def storage_takes_presigned_puts() -> bool:
    """True where files live on S3 or MinIO (a presigned PUT goes straight there)."""
    return not isinstance(default_storage, FileSystemStorage)


def _safe_filename(filename: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", (filename or "").rsplit("/", 1)[-1]).strip("._")
    return (name or "upload")[-100:]


def _pending_dirs(team: Team, upload_id: uuid.UUID) -> list[str]:
    """Where a presigned PUT of this upload lands: `incoming/…`, and the folder URLs made
    before it pointed at (they expire an hour after they were made)."""
    return [incoming_upload_dir(team.pk, upload_id), f"uploads/{team.pk}/pending/{upload_id}/"]


def _pending_file(team: Team, upload_id: uuid.UUID) -> tuple[str, str] | None:
    for directory in _pending_dirs(team, upload_id):
        try:
            _, files = default_storage.listdir(directory)
        except FileNotFoundError:
            files = []
        if files:
            return directory + files[0], files[0]
    return None


@dataclass(frozen=True)
class PresignedUpload:
    upload_id: uuid.UUID
    filename: str
    url: str
    expires_at: float  # Unix seconds
    created_at: float


def upload_presign(*, team: Team, filename: str, size: int | None = None) -> PresignedUpload:
    """A new upload id and a presigned PUT URL for its bytes (S3/MinIO only).

    Side effects: none until the client PUTs; nothing is recorded in the database.
    """
    if not storage_takes_presigned_puts():
        raise InvalidRequest(
            "This server stores files on local disk: send the video as multipart/form-data "
            "with one `file` part",
            field="file",
        )
    limit = settings.CLYPAI_MAX_UPLOAD_BYTES
    if size is not None and size > limit:
        raise PayloadTooLarge("File is larger than the upload limit", details={"limit": limit})
    upload_id = uuid.uuid4()
    safe = _safe_filename(filename)
    now = time.time()
    url = default_storage.url(
        incoming_upload_dir(team.pk, upload_id) + safe,
        expire=PRESIGN_TTL_SECONDS,
        http_method="PUT",
    )
    return PresignedUpload(
        upload_id=upload_id,
        filename=safe,
        url=url,
        expires_at=now + PRESIGN_TTL_SECONDS,
        created_at=now,
    )


def upload_resolve(*, team: Team, upload_id) -> Upload:
    """The team's upload named `upload_id`: a stored one, or a presigned one whose bytes
    have arrived, copied out of the client's reach, size-checked and recorded now.
    InvalidRequest on `source.upload_id` otherwise; PayloadTooLarge past the limit.
    """
    found = upload_find(team=team, upload_id=upload_id)
    if found is not None:
        return found
    key = parse_uuid(upload_id)
    if key is None or not storage_takes_presigned_puts():
        raise InvalidRequest("Unknown upload", field=_FIELD)
    pending = _pending_file(team, key)
    if pending is None:
        raise InvalidRequest(
            "Unknown upload, or its file has not been PUT to its upload_url yet", field=_FIELD
        )
    name, filename = pending
    limit = settings.CLYPAI_MAX_UPLOAD_BYTES
    if default_storage.size(name) > limit:  # refused before copying anything
        default_storage.delete(name)
        raise PayloadTooLarge("File is larger than the upload limit", details={"limit": limit})
    upload = Upload(
        team=team,
        uuid=key,
        filename=filename,
        content_type=mimetypes.guess_type(filename)[0] or "",
        sha256="",  # the ingesting worker hashes the copy
    )
    upload.file.name = upload_path(upload, filename)
    try:
        storage_copy(name, upload.file.name)
    except FileNotFoundError:  # a concurrent request took it in first
        return _resolved_meanwhile(team, upload_id)
    # The copy is what counts: the client may have PUT again since the size above.
    upload.size_bytes = default_storage.size(upload.file.name)
    if upload.size_bytes > limit or upload.size_bytes == 0:
        default_storage.delete(upload.file.name)
        if upload.size_bytes == 0:
            raise InvalidRequest("The uploaded file is empty", field=_FIELD)
        default_storage.delete(name)
        raise PayloadTooLarge("File is larger than the upload limit", details={"limit": limit})
    try:
        with transaction.atomic():
            upload.save(force_insert=True)
    except IntegrityError:  # a concurrent request recorded it first
        default_storage.delete(upload.file.name)
        return _resolved_meanwhile(team, upload_id)
    default_storage.delete(name)  # taken in; a later PUT there is purged by the sweep
    return upload


def _resolved_meanwhile(team: Team, upload_id) -> Upload:
    found = upload_find(team=team, upload_id=upload_id)
    if found is None:
        raise InvalidRequest("Unknown upload", field=_FIELD)
    return found
