"""Views of the project itself: signed local-disk file links, and the root
URLconf's 404 and 500 answers, each in the shape of the API the path belongs to."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, JsonResponse
from django.views.defaults import bad_request, page_not_found, server_error

from choppity.errors import error_body as choppity_error_body
from clypai.api.errors import error_body
from clypai.lib.ranged import file_response
from clypai.lib.storage import signed_expiry

# Where each API lives; under them every answer, even Django's own, is JSON in its shape.
API_PREFIXES = ("/v1/", "/choppity/")


def signed_file(request, token: str):
    found = signed_expiry(token)
    if found is None:
        raise Http404("Link is invalid or has expired")
    name, download_name = found
    if isinstance(default_storage, FileSystemStorage):  # ranges, so players can seek
        return file_response(request, default_storage, name, download_name=download_name)
    if not name or not default_storage.exists(name):
        raise Http404("File not found")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    if download_name:
        response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


def api_error(
    request, status: int, code: str, message: str, *, details: dict | None = None
) -> JsonResponse | None:
    """An error in the shape of the API the path belongs to (/v1's envelope with a
    snake_case code, Choppity's `{"error": …}` with its capitals); None elsewhere."""
    if request.path.startswith("/v1/"):
        error = {"code": code, "message": message}
        if details:
            error["details"] = details
        return JsonResponse(error_body(error), status=status)
    if request.path.startswith("/choppity/"):
        body = choppity_error_body(code.upper(), message, details=details)
        return JsonResponse(body, status=status)
    return None


def payload_too_large(request) -> JsonResponse | None:
    """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, in the API's shape."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api_error(
        request,
        413,
        "payload_too_large",
        f"The request body is larger than the limit of {limit} bytes",
        details={"limit": limit},
    )


def handler400(request, exception=None):
    """A request Django itself refused (a body too large, too many fields): each API's
    own JSON error under its prefix, Django's page elsewhere."""
    if isinstance(exception, RequestDataTooBig):
        answer = payload_too_large(request)
    else:
        answer = api_error(request, 400, "invalid_request", "Bad request")
    return answer or bad_request(request, exception)


def handler404(request, exception=None):
    """Unknown URLs: JSON in the envelope under the APIs, Django's page elsewhere."""
    return api_error(request, 404, "not_found", "Not found") or page_not_found(request, exception)


def handler500(request):
    """A crash: each API's own JSON error under its prefix, Django's page elsewhere."""
    return api_error(request, 500, "internal_error", "Internal server error") or server_error(
        request
    )
