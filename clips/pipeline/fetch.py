"""Ingest from a URL: download a source video without letting the URL reach inside.

`fetch_url` streams an http(s) URL into a file, hashing it as it goes, under a byte
limit and a wall-clock deadline, following redirects one checked hop at a time. Every
hop goes through the SSRF guard of `clypai.lib.safe_http`: each host is resolved once,
every answer is checked (refused unless public or on the operator's allowlist), and the
connection is pinned to the address checked.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from clypai.lib.safe_http import (
    Allowlist,
    Deadline,
    Failure,
    PeerMismatch,
    Resolver,
    checked_addresses,
    network_failure,
    open_response,
    parse_url,
    system_resolver,
    without_password,
)

from .base import StageError

MESSAGE = "Source video URL is not accessible"
CHUNK_BYTES = 256 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size: int
    sha256: str
    content_type: str
    final_url: str


def fetch_url(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    timeout: float,
    max_redirects: int = 5,
    allowlist: Sequence[str] = (),
    resolver: Resolver | None = None,
) -> FetchedFile:
    """Download `url` into a new file in `dest_dir`.

    Inputs: an http or https URL; the most bytes to accept; the seconds the whole
    download (resolution, connections, redirects, body) may take; how many redirects to
    follow; `allowlist`, host names or CIDRs the operator lets through although they are
    not public; `resolver`, host name -> IP strings (default: getaddrinfo).
    Output: the file (caller owns and removes it), its size, SHA-256, media type and the
    URL it finally came from. Side effects: network I/O, one file in `dest_dir` (removed
    again on any failure). Raises StageError (`invalid_request` on `sourceVideoUrl`) with
    a specific `details["reason"]`; `permanent` is False only where a retry may pass.
    """
    deadline = Deadline(timeout)
    try:
        return _fetch(
            url,
            Path(dest_dir),
            max_bytes=max_bytes,
            deadline=deadline,
            max_redirects=max_redirects,
            allowlist=Allowlist.parse(allowlist),
            resolver=resolver or system_resolver,
        )
    except Failure as failure:
        raise StageError(
            MESSAGE,
            details={"reason": failure.reason, "url": without_password(url)},
            permanent=failure.permanent,
            code="invalid_request",
            field="sourceVideoUrl",
        ) from failure
    finally:
        deadline.cancel()


def _url_suffix(url: str) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _fetch(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    deadline: Deadline,
    max_redirects: int,
    allowlist: Allowlist,
    resolver: Resolver,
) -> FetchedFile:
    current = url
    redirects = 0
    while True:
        try:
            target = parse_url(current)
            addresses = checked_addresses(target, resolver, allowlist)
            deadline.check()
        except Failure as failure:
            if redirects:
                failure.reason += f" (after a redirect to {without_password(current)})"
            raise
        pool = response = None
        try:
            pool, response = open_response(target, addresses, deadline)
            status = response.status
            if status in REDIRECT_STATUSES:
                location = response.headers.get("Location", "").strip()
                if not location:
                    raise Failure(f"HTTP {status} redirect without a Location")
                redirects += 1
                if redirects > max_redirects:
                    raise Failure(f"too many redirects ({redirects}, at most {max_redirects})")
                current = urljoin(current, location)
                continue
            if status != 200:
                transient = status >= 500 or status in TRANSIENT_STATUSES
                raise Failure(f"HTTP {status}", permanent=not transient)
            return _download(response, current, dest_dir, max_bytes=max_bytes, deadline=deadline)
        except Failure:
            raise
        except (PeerMismatch, Urllib3Error, http.client.HTTPException, OSError) as exc:
            raise network_failure(exc, target, deadline) from exc
        finally:
            if response is not None:
                response.close()
            if pool is not None:
                pool.close()
            deadline.release()


def _download(
    response: urllib3.BaseHTTPResponse,
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    deadline: Deadline,
) -> FetchedFile:
    announced = response.headers.get("Content-Length")
    if announced is not None:
        try:
            length = int(announced)
        except ValueError:
            raise Failure(f"invalid Content-Length {announced!r}") from None
        if length > max_bytes:
            raise Failure(f"larger than {max_bytes} bytes (Content-Length {length})")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest_dir, prefix="fetch-", suffix=_url_suffix(url))
    except OSError as exc:
        raise Failure(f"cannot write the download: {exc}", permanent=False) from exc
    path = Path(name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            while True:
                deadline.check()
                # read1: one socket read at a time, so limits are checked as bytes arrive.
                chunk = response.read1(CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise Failure(f"larger than {max_bytes} bytes")
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise Failure(f"cannot write the download: {exc}", permanent=False) from exc
        # A read cut short by the deadline can look like the end of a body without length.
        deadline.check()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return FetchedFile(
        path=path,
        size=size,
        sha256=digest.hexdigest(),
        content_type=content_type or "application/octet-stream",
        final_url=url,
    )
