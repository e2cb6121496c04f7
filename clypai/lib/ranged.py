"""Stored files as HTTP answers that honour `Range` (206 Partial Content), so a `<video>`
can seek: Chromium and Safari ask for byte ranges and will not seek without them.

Files on local disk are answered here, a range at a time; files on S3 or MinIO are a
redirect to a signed link (S3 answers ranges itself).
"""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import quote

from django.core.files.storage import FileSystemStorage, Storage
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def _content_disposition(download_name: str) -> str:
    ascii_name = download_name.encode("ascii", "replace").decode().replace('"', "")
    if ascii_name == download_name:
        return f'attachment; filename="{ascii_name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(download_name)}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range within `size`; None for no range
    (or one this server ignores: several ranges); ValueError when unsatisfiable."""
    match = _RANGE.match((header or "").strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range not satisfiable")
    return start, end


def _slice(fh, start: int, length: int):
    try:
        fh.seek(start)
        left = length
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


def file_response(
    request,
    storage: Storage,
    name: str,
    *,
    download_name: str = "",
    content_type: str = "",
    cache_control: str = "private, max-age=300",
    signed_url=None,
) -> HttpResponse:
    """The stored file `name` for `request`: whole (200) or the asked range (206, or 416
    when outside the file), `Accept-Ranges: bytes` either way; `download_name` makes it
    an attachment. Off local disk, a redirect to `signed_url(name)` instead."""
    if not name:
        raise Http404("File not found")
    if not isinstance(storage, FileSystemStorage):
        if signed_url is None:
            raise Http404("File not found")
        return HttpResponseRedirect(signed_url(name))
    if not storage.exists(name):
        raise Http404("File not found")
    content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    size = storage.size(name)
    try:
        wanted = parse_range(request.headers.get("Range", ""), size)
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if wanted is None:
        response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    else:
        start, end = wanted
        response = StreamingHttpResponse(
            _slice(storage.open(name, "rb"), start, end - start + 1),
            status=206,
            content_type=content_type,
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if download_name:
        response["Content-Disposition"] = _content_disposition(download_name)
    if cache_control:
        response["Cache-Control"] = cache_control
    return response
