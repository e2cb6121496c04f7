"""What every request to either API goes through before its view.

- A trailing slash is accepted: `/v1/clips/` is `/v1/clips`, `/choppity/v1/clips/{id}/`
  is `/choppity/v1/clips/{id}` (the documents write none; many clients add one).
- A body over DATA_UPLOAD_MAX_MEMORY_SIZE (multipart uploads aside: their files have
  their own limit) is refused at once with 413 in the API's own error shape, before
  anything reads it. A body sent without a length (`Transfer-Encoding: chunked`), which
  Django's WSGI request would take as empty, is read here up to the limit: over it, the
  same 413; under it, handed on with its length as any other body.
"""

from __future__ import annotations

import io

from django.conf import settings

from .views import API_PREFIXES, payload_too_large


class ApiRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(API_PREFIXES):
            if path.endswith("/") and path not in API_PREFIXES:
                stripped = path.rstrip("/")
                request.path = request.path[: len(request.path) - (len(path) - len(stripped))]
                request.path_info = stripped
            too_large = _body_too_large(request) or _chunked_body(request)
            if too_large is not None:
                return too_large
        return self.get_response(request)


def _body_too_large(request):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None or (request.content_type or "").startswith("multipart/"):
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= limit:
        return None
    return payload_too_large(request)


def _chunked_body(request):
    """Read a chunked body (the server de-chunks it and says where it ends) up to the
    limit; a 413 when it is larger, else None with the body in place for the view."""
    meta = request.META
    if meta.get("CONTENT_LENGTH") or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", ""):
        return None
    if (request.content_type or "").startswith("multipart/"):
        return None
    stream = meta.get("wsgi.input")
    if stream is None or not meta.get("wsgi.input_terminated"):
        return None  # a server that does not end the stream: leave it unread
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        return payload_too_large(request)
    # Django's WSGIRequest read a missing length as 0: give it the body and its length.
    meta["CONTENT_LENGTH"] = str(len(data))
    request._stream = io.BytesIO(data)
    return None
