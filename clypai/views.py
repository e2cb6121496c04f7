"""Views of the project itself: health, signed local-disk file links, and the root
URLconf's 404 and 500 answers, each in the shape of the API the path belongs to."""

from __future__ import annotations

import mimetypes

from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connection
from django.http import FileResponse, Http404, JsonResponse
from django.views.defaults import page_not_found, server_error

from choppity.errors import error_body as choppity_error_body
from clypai.api.errors import json_error
from clypai.lib.ranged import file_response
from clypai.lib.storage import signed_expiry


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


def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def handler404(request, exception=None):
    """Unknown URLs: JSON in the envelope under the APIs, Django's page elsewhere."""
    if request.path.startswith("/v1/"):
        return json_error(request, 404, "not_found", "Not found")
    return page_not_found(request, exception)


def handler500(request):
    """A crash: each API's own JSON error under its prefix, Django's page elsewhere."""
    if request.path.startswith("/v1/"):
        return json_error(request, 500, "internal_error", "Internal server error")
    if request.path.startswith("/choppity/"):
        return JsonResponse(
            choppity_error_body("INTERNAL_ERROR", "Internal server error"), status=500
        )
    return server_error(request)
