"""What each event's `data` holds: the object as the /v1/ API shows it.

- clip.* : the clip, as GET /v1/clips/{id} answers it;
- export.ready, export.failed : the export, as GET /v1/exports/{id} answers it, with
  `clipId` (and `error` when it failed);
- job.done, job.error : a job of several clips (the Choppity API's, or the CLI's), which
  /v1/ has no endpoint for: `{id, status, clipIds, error, createdAt, updatedAt}`;
- render.done, render.failed : a clip's full render on request:
  `{id, clipId, status, videoUrl, error, requestedAt}` (`id` is the Choppity render_id);
- webhook.test : `{endpointId, message}`.

Links to stored files are signed and expire (CLYPAI_SIGNED_URL_TTL_SECONDS); on local
disk they are made absolute with CLYPAI_PUBLIC_URL, there being no request to go by.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from clypai.api.responses import iso


class PublicSite:
    """Stands in for the request when building API objects outside of one."""

    def build_absolute_uri(self, location: str) -> str:
        base = settings.CLYPAI_PUBLIC_URL
        return f"{base}{location}" if base and location.startswith("/") else location


def _plain(value: Any) -> Any:
    """DRF's ReturnDict/OrderedDict as plain JSON-ready values."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def clip_data(clip) -> dict:
    from clips.api.serializers import ClipOut

    return _plain(ClipOut(clip, context={"request": PublicSite()}).data)


def export_data(export) -> dict:
    from clips.api.serializers import export_body

    data = {**export_body(export, PublicSite()), "clipId": export.clip_id}
    if export.status == "failed":
        data["error"] = export.error or "Export failed"
    return data


def job_data(job) -> dict:
    error = None
    if job.status == "error":
        error = {"code": job.error_code or "processing_failed", "message": job.error}
    return {
        "id": str(job.pk),
        "status": job.status,
        "clipIds": list(job.clips.order_by("rank", "created_at").values_list("id", flat=True)),
        "error": error,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
    }


def render_data(clip) -> dict:
    from clypai.api.serializers import file_url

    done = clip.render_status == "done"
    return {
        "id": str(clip.uuid),
        "clipId": clip.pk,
        "status": clip.render_status,
        "videoUrl": file_url(clip.video, PublicSite()) if done else None,
        "error": (clip.render_error or "Render failed") if clip.render_status == "error" else None,
        "requestedAt": iso(clip.render_requested_at),
    }
