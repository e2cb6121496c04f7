"""The team's files, behind the dashboard's session: a clip's preview, video, thumbnail
and captions, an export (as an attachment), a brand kit's logo. Another team's answer
404, as their pages do; local files answer `Range` with 206 (`clypai.lib.ranged`)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from brandkits.models import BrandKit
from clips.exporting import package_renewed
from clips.models import Clip, Export
from clips.platforms import EXPORT_TIMELINES
from clypai.lib.ranged import file_response
from clypai.lib.storage import signed_url

from .team import team_view


def _serve(request, stored, *, download_name: str = "", content_type: str = ""):
    if not stored:
        raise Http404("No such file yet")

    def signed(name: str) -> str:
        return signed_url(
            name,
            ttl_seconds=settings.CLYPAI_SIGNED_URL_TTL_SECONDS,
            storage=stored.storage,
            download_name=download_name or None,
        )

    return file_response(
        request,
        stored.storage,
        stored.name,
        download_name=download_name,
        content_type=content_type,
        signed_url=signed,
    )


def _clip(request, clip_id: str) -> Clip:
    return get_object_or_404(Clip, pk=clip_id, team=request.team)


@require_safe
@team_view
def clip_preview(request, clip_id: str):
    """The clip's preview (its full video when it has no preview: a /v1/ clip)."""
    clip = _clip(request, clip_id)
    return _serve(request, clip.preview or clip.video, content_type="video/mp4")


@require_safe
@team_view
def clip_video(request, clip_id: str):
    clip = _clip(request, clip_id)
    return _serve(request, clip.video, content_type="video/mp4")


@require_safe
@team_view
def clip_thumbnail(request, clip_id: str):
    clip = _clip(request, clip_id)
    return _serve(request, clip.thumbnail, content_type="image/jpeg")


@require_safe
@team_view
def clip_captions(request, clip_id: str, kind: str):
    clip = _clip(request, clip_id)
    if not clip.captions:
        raise Http404("No captions yet")
    if kind == "srt":
        return _serve(request, clip.captions, download_name=f"{clip.pk}.srt")
    stored = clip.captions
    vtt = stored.name[: -len(".srt")] + ".vtt"
    if not stored.storage.exists(vtt):
        raise Http404("No captions yet")

    class _Vtt:
        name = vtt
        storage = stored.storage

        def __bool__(self):
            return True

    return _serve(request, _Vtt(), content_type="text/vtt")


@require_safe
@team_view
def export_download(request, export_id: str):
    export = get_object_or_404(
        Export.objects.select_related("clip"), pk=export_id, clip__team=request.team
    )
    if export.status != Export.Status.COMPLETED:
        raise Http404("The export is not ready")
    base = (export.clip.name or export.clip.pk)[:80].strip() or export.clip.pk
    safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in base).strip() or "clip"
    if export.format in EXPORT_TIMELINES:  # a zip: the timeline, its SRT, the source
        name = f"{safe}-{export.format}.zip"
        if export.source_linked:  # its README's source link made fresh for this download
            response = HttpResponse(package_renewed(export, request), "application/zip")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            response["Cache-Control"] = "private, no-store"
            return response
        return _serve(request, export.file, download_name=name, content_type="application/zip")
    return _serve(request, export.file, download_name=f"{safe}-{export.quality}.{export.format}")


@require_safe
@team_view
def brand_kit_logo(request, kit_id: str):
    kit = get_object_or_404(BrandKit, pk=kit_id, team=request.team)
    return _serve(request, kit.logo)
