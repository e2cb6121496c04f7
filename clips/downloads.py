"""The download of a timeline export whose zip links to its source (too large to pack):
the zip is answered with its README.txt made anew, so the source link inside is fresh at
every download (`exporting.package_renewed`). Its link (`package_links.package_url`) is
what GET /v1/exports/{id} answers as exportUrl."""

from __future__ import annotations

from django.http import Http404, HttpResponse

from .exporting import package_renewed
from .models import Export
from .package_links import package_token_read


def export_package(request, token: str):
    export_id = package_token_read(token)
    if export_id is None:
        raise Http404("Link is invalid or has expired")
    export = Export.objects.filter(
        pk=export_id, status=Export.Status.COMPLETED, source_linked=True
    ).first()
    if export is None or not export.file:
        raise Http404("Export not found")
    response = HttpResponse(package_renewed(export, request), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export.clip_id}-{export.format}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response
