"""Views of the project itself: health, and signed local-disk file links."""

from __future__ import annotations

import mimetypes

from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, Http404, JsonResponse

from clypai.lib.storage import signed_expiry


def signed_file(request, token: str):
    found = signed_expiry(token)
    if found is None:
        raise Http404("Link is invalid or has expired")
    name, download_name = found
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
