"""What every request to either API goes through before its view.

- A trailing slash is accepted: `/v1/clips/` is `/v1/clips`, `/choppity/v1/clips/{id}/`
  is `/choppity/v1/clips/{id}` (the documents write none; many clients add one).
- A body over DATA_UPLOAD_MAX_MEMORY_SIZE (multipart uploads aside: their files have
  their own limit) is refused at once with 413 in the API's own error shape, before
  anything reads it. Bodies without a length that turn out too large are refused the
  same way by each API's exception handler.
"""

from __future__ import annotations

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
            too_large = _body_too_large(request)
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
