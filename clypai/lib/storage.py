"""Signed, expiring links to stored files, on S3/MinIO and on local disk alike.

S3 and MinIO sign their own links (presigned GET). Local disk has no such thing, so the
app seals the file's name and an expiry time into the link's token, and serves the file
itself (see `clypai.views.signed_file`) only while the seal holds; its links are absolute
on CLYPAI_PUBLIC_URL when set, else on the request's own scheme and host.

The token is encrypted, not only signed (Fernet: AES-128-CBC and HMAC-SHA256, its key
derived from SECRET_KEY): a signed token carried the storage path in base64, which told
anyone holding a link the team and clip ids and the layout of the storage.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils.crypto import salted_hmac

from .files import partial_path

_SALT = "clypai.signed-file"


def _is_local(storage) -> bool:
    from django.core.files.storage import FileSystemStorage

    return isinstance(storage, FileSystemStorage)


def signed_url(
    name: str, *, ttl_seconds: int, storage=None, download_name: str | None = None, request=None
) -> str:
    """A link to the stored file `name` that stops working after `ttl_seconds`."""
    storage = storage or default_storage
    if not _is_local(storage):
        params = {}
        if download_name:
            params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
        return storage.url(name, parameters=params or None, expire=ttl_seconds)
    expires = int(time.time()) + ttl_seconds
    payload = json.dumps({"n": name, "e": expires, "d": download_name or ""})
    token = _fernet().encrypt(payload.encode()).decode("ascii").rstrip("=")
    return absolute_url(reverse("signed-file", kwargs={"token": token}), request=request)


def _fernet():
    from cryptography.fernet import Fernet

    key = salted_hmac(_SALT, "file links", algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(key))


def absolute_url(path: str, *, request=None) -> str:
    """This site's link to `path`: on CLYPAI_PUBLIC_URL when it is set (in answers and
    webhooks alike), else on the request's scheme and host (which honour
    SECURE_PROXY_SSL_HEADER and USE_X_FORWARDED_HOST behind a proxy), else `path` as it
    is (a webhook with no public URL configured)."""
    if settings.CLYPAI_PUBLIC_URL:
        return settings.CLYPAI_PUBLIC_URL + path
    return request.build_absolute_uri(path) if request is not None else path


def signed_expiry(token: str) -> tuple[str, str] | None:
    """The (name, download name) a local link signs, or None when forged or expired."""
    from cryptography.fernet import InvalidToken

    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(_fernet().decrypt(padded.encode("ascii")))
    except (InvalidToken, ValueError, UnicodeError):
        return None
    if not isinstance(payload, dict) or payload.get("e", 0) < time.time():
        return None
    return payload.get("n", ""), payload.get("d", "")


def local_path(name: str, *, cache_dir, storage=None):
    """A local file path holding stored file `name`, for tools that need one (ffmpeg).

    On local disk that is the file itself; on S3 the object is downloaded once into
    `cache_dir` (keyed by its name) and reused by later stages and reruns.
    """
    storage = storage or default_storage
    if _is_local(storage):
        return Path(storage.path(name))
    target = Path(cache_dir) / name.replace("/", "__")
    if target.exists():
        try:
            target.touch()  # used: the work-dir eviction goes by last use
        except OSError:
            pass
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A partial file of this process's own: workers sharing the cache folder may fetch
    # the same object at once, and each renames a whole file into place.
    partial = partial_path(target)
    try:
        with storage.open(name, "rb") as src, open(partial, "wb") as dst:
            for chunk in iter(lambda: src.read(1024 * 1024), b""):
                dst.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)  # a failed download leaves no half file
    return target


def storage_copy(source: str, target: str, *, storage=None) -> str:
    """Copy stored file `source` to `target` (replacing it) and return `target`.

    On S3 the copy is made by the server (CopyObject; a multipart copy past 5 GB): the
    bytes never pass through this machine, and the copy is a snapshot that later writes
    to `source` (a client's presigned PUT) do not reach. FileNotFoundError when `source`
    is not there.
    """
    import shutil

    storage = storage or default_storage
    if _is_local(storage):
        path = Path(storage.path(target))
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(storage.path(source), path)
        except FileNotFoundError:
            raise FileNotFoundError(f"File does not exist: {source}") from None
        return target
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError

    client = storage.connection.meta.client
    try:
        client.copy(
            {"Bucket": storage.bucket_name, "Key": _s3_key(storage, source)},
            storage.bucket_name,
            _s3_key(storage, target),
            Config=TransferConfig(multipart_threshold=5 * 1024**3),
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise FileNotFoundError(f"File does not exist: {source}") from None
        raise
    return target


def storage_purge(prefix: str, *, before: datetime, storage=None) -> list[str]:
    """Delete the stored files under folder `prefix` last written before `before`;
    their names."""
    storage = storage or default_storage
    prefix = prefix.rstrip("/") + "/"
    purged = []
    if _is_local(storage):
        root = Path(storage.path(prefix))
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            written = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            if path.is_file() and written < before:
                path.unlink(missing_ok=True)
                purged.append(prefix + str(path.relative_to(root)))
        return purged
    client = storage.connection.meta.client
    location = _s3_key(storage, "")
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=storage.bucket_name, Prefix=_s3_key(storage, prefix)
    )
    for page in pages:
        for entry in page.get("Contents", ()):
            if entry["LastModified"] < before:
                client.delete_object(Bucket=storage.bucket_name, Key=entry["Key"])
                purged.append(entry["Key"][len(location) :].lstrip("/"))
    return purged


def _s3_key(storage, name: str) -> str:
    from storages.utils import clean_name

    # S3Storage's own way from a name to its key (its location in front).
    return storage._normalize_name(clean_name(name)) if name else (storage.location or "")
