"""Webhook events in the Choppity API's words, for endpoints created with
`"format": "choppity"` (POST /v1/webhooks).

- job.done, job.error: `data` is exactly the body GET /choppity/v1/clips/{job_id}
  answers at that moment (the type follows its status: a job whose previews are missing
  is `error` there, so job.error here);
- render.done, render.error: `data` is exactly the body of GET
  /choppity/v1/renders/{render_id} (our render.failed is the document's `error`).

Registered with clips.events at start-up (ChoppityConfig.ready), so clips, which emits
the events, imports nothing from this surface. Links are signed as the GETs sign them,
absolute on CLYPAI_PUBLIC_URL.
"""

from __future__ import annotations

from clips.events import Told, event_format_register
from clips.models import Clip, Job

from .selectors import job_clips
from .serializers import job_body, job_status, render_body

FORMAT = "choppity"
_RENDER_TYPES = {"render.failed": "render.error"}


def job_told(job: Job, type: str) -> Told:
    clips = job_clips(job=job)
    status = job_status(job, clips)
    their_type = f"job.{status}" if status in ("done", "error") else type
    return their_type, lambda: job_body(job, clips, None)


def render_told(clip: Clip, type: str) -> Told:
    return _RENDER_TYPES.get(type, type), lambda: render_body(clip, None)


def register() -> None:
    event_format_register(FORMAT, job=job_told, render=render_told)
