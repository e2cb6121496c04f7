"""Writes of /choppity/v1/ that the native services don't already do: uploads by
presigned PUT.

A presigned upload needs no row until its bytes exist: its UUID and the caller's team
are in the object's key (`uploads/<team>/pending/<uuid>/<filename>`), so another team
cannot name it. When a job first names it, the object is recorded as an ordinary
`Upload` with that UUID, without its SHA-256: hashing gigabytes has no place inside a
request, so the worker that ingests it hashes it (sources are keyed by the SHA-256 of
their bytes, computed by us, never taken from the client).
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

from clips.models import Upload
from clypai.api.errors import InvalidRequest, PayloadTooLarge
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


def _pending_dir(team: Team, upload_id: uuid.UUID) -> str:
    return f"uploads/{team.pk}/pending/{upload_id}/"


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
        _pending_dir(team, upload_id) + safe, expire=PRESIGN_TTL_SECONDS, http_method="PUT"
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
    have arrived, hashed and recorded now. InvalidRequest on `source.upload_id` otherwise.
    """
    found = upload_find(team=team, upload_id=upload_id)
    if found is not None:
        return found
    key = parse_uuid(upload_id)
    if key is None or not storage_takes_presigned_puts():
        raise InvalidRequest("Unknown upload", field=_FIELD)
    directory = _pending_dir(team, key)
    try:
        _, files = default_storage.listdir(directory)
    except FileNotFoundError:
        files = []
    if not files:
        raise InvalidRequest(
            "Unknown upload, or its file has not been PUT to its upload_url yet", field=_FIELD
        )
    name = directory + files[0]
    size = default_storage.size(name)
    limit = settings.CLYPAI_MAX_UPLOAD_BYTES
    if size > limit:
        default_storage.delete(name)
        raise PayloadTooLarge("File is larger than the upload limit", details={"limit": limit})
    if size == 0:
        raise InvalidRequest("The uploaded file is empty", field=_FIELD)
    try:
        with transaction.atomic():
            return Upload.objects.create(
                team=team,
                uuid=key,
                file=name,
                filename=files[0],
                content_type=mimetypes.guess_type(files[0])[0] or "",
                size_bytes=size,
                sha256="",  # the ingesting worker hashes it
            )
    except IntegrityError:  # a concurrent request recorded it first
        return Upload.objects.get(team=team, uuid=key)
