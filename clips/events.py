"""Webhook events about clips, jobs, full renders and exports, and what their `data` holds:
the object as the /v1/ API shows it.

- clip.* : the clip, as GET /v1/clips/{id} answers it;
- export.ready, export.failed : the export, as GET /v1/exports/{id} answers it, with
  `clipId` (and `error` when it failed);
- job.done, job.error : a job of several clips (the Choppity API's, or the CLI's), which
  /v1/ has no endpoint for: `{id, status, clipIds, error, createdAt, updatedAt}`;
- render.done, render.failed : a clip's full render on request:
  `{id, clipId, status, videoUrl, error, requestedAt}` (`id` is the Choppity render_id).

Links to stored files are signed and expire (CLYPAI_SIGNED_URL_TTL_SECONDS); on local
disk they are absolute on CLYPAI_PUBLIC_URL (`clypai.lib.storage.absolute_url`), there
being no request to go by, and relative when it is not set.

`clips.states` emits these after the update they tell about really happened, through
the generic `webhooks.services.event_emit`; an event's data is built only when an
endpoint listens, and a failure to emit is logged, never raised into the transition.

Job and render events are also told in the words of other API surfaces, to the webhook
endpoints that chose their format: an app registers its format at start-up
(`event_format_register`; the Choppity API does, in choppity/events.py), so clips
imports none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from clypai.api.responses import iso
from clypai.api.serializers import file_url
from webhooks.services import event_emit

from .api.serializers import ClipOut, export_body
from .models import Clip, Export, Job

logger = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """DRF's ReturnDict/OrderedDict as plain JSON-ready values."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# What each event's data holds --------------------------------------------------------


def clip_data(clip: Clip) -> dict:
    return _plain(ClipOut(clip, context={"request": None}).data)


def export_data(export: Export) -> dict:
    data = {**export_body(export, None), "clipId": export.clip_id}
    if export.status == "failed":
        data["error"] = export.error or "Export failed"
    return data


def job_data(job: Job) -> dict:
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


def full_render_data(clip: Clip) -> dict:
    done = clip.full_render_status == "done"
    return {
        "id": str(clip.uuid),
        "clipId": clip.pk,
        "status": clip.full_render_status,
        "videoUrl": file_url(clip.video) if done else None,
        "error": (clip.full_render_error or "Render failed")
        if clip.full_render_status == "error"
        else None,
        "requestedAt": iso(clip.full_render_requested_at),
    }


# Other formats -------------------------------------------------------------------------

# What a format makes of one event about an object: its type in that format's words and
# a function building its data (called only when an endpoint of that format listens).
Told = tuple[str, Callable[[], dict]]


@dataclass(frozen=True)
class EventFormat:
    """Another API's words for job and full-render events: for an object and our event
    type, its own type and data."""

    job: Callable[[Job, str], Told]
    render: Callable[[Clip, str], Told]


_FORMATS: dict[str, EventFormat] = {}


def event_format_register(name: str, *, job: Callable, render: Callable) -> None:
    """Tell job and render events also to the webhook endpoints of format `name`
    (one of webhooks.models.FORMATS), in the words `job` and `render` give."""
    _FORMATS[name] = EventFormat(job=job, render=render)


# Emitting ----------------------------------------------------------------------------


def _emit_safely(
    type: str,
    load: Callable[[], Any],
    build: Callable[[Any], dict],
    team_of=lambda obj: obj.team_id,
    kind: str | None = None,
) -> None:
    """Emit an event about the object `load()` finds, its data built only when someone
    listens, and (for a `kind` other formats tell about) once more per registered
    format; a failure here is logged, never raised into the state transition that
    called it (a savepoint keeps the caller's transaction usable)."""
    try:
        with transaction.atomic():
            obj = load()
            if obj is None:
                return
            event_emit(team=team_of(obj), type=type, data=lambda: build(obj))
            for name, told in _FORMATS.items() if kind else ():
                their_type, data = getattr(told, kind)(obj, type)
                event_emit(team=team_of(obj), type=their_type, data=data, format=name)
    except Exception:
        logger.exception("could not emit %s", type)


def clip_event_emit(*, clip_id: str, type: str) -> None:
    """clip.processing, clip.completed, clip.failed, clip.exported: the clip as it is now."""
    _emit_safely(type, lambda: Clip.objects.filter(pk=clip_id).first(), clip_data)


def job_event_emit(*, job_id, type: str) -> None:
    """job.done, job.error (and in the registered formats' words)."""
    _emit_safely(type, lambda: Job.objects.filter(pk=job_id).first(), job_data, kind="job")


def export_event_emit(*, export_id: str, type: str) -> None:
    """export.ready, export.failed."""
    _emit_safely(
        type,
        lambda: Export.objects.select_related("clip").filter(pk=export_id).first(),
        export_data,
        team_of=lambda export: export.clip.team_id,
    )


def full_render_event_emit(*, clip_id: str, type: str) -> None:
    """render.done, render.failed: a clip's full render on request (and in the
    registered formats' words)."""
    _emit_safely(
        type, lambda: Clip.objects.filter(pk=clip_id).first(), full_render_data, kind="render"
    )
