"""Reads for /choppity/v1/, always scoped to the caller's team, ids parsed in one place.

Another team's id, an unknown id and a malformed one all answer the same NOT_FOUND.
"""

from __future__ import annotations

import uuid

from clips.models import Clip, Job, Upload
from clypai.api.errors import NotFound
from projects.models import Team


def parse_uuid(value) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def job_get(*, team: Team, job_id: str) -> Job:
    key = parse_uuid(job_id)
    job = Job.objects.filter(team=team, pk=key).first() if key else None
    if job is None:
        raise NotFound("Job not found")
    return job


def job_clips(*, job: Job) -> list[Clip]:
    """A job's clips, best first."""
    return list(job.clips.order_by("rank", "created_at", "id"))


def clip_get(*, team: Team, clip_id: str) -> Clip:
    """A clip of one of the team's jobs, by the UUID the document shows."""
    key = parse_uuid(clip_id)
    clip = Clip.objects.filter(team=team, uuid=key, job__isnull=False).first() if key else None
    if clip is None:
        raise NotFound("Clip not found")
    return clip


def render_get(*, team: Team, render_id: str) -> Clip:
    """The clip whose full render this is (render_id equals the clip's id)."""
    key = parse_uuid(render_id)
    clip = (
        Clip.objects.filter(team=team, uuid=key, job__isnull=False)
        .exclude(full_render_status="")
        .first()
        if key
        else None
    )
    if clip is None:
        raise NotFound("Render not found")
    return clip


def upload_find(*, team: Team, upload_id: str) -> Upload | None:
    key = parse_uuid(upload_id)
    return Upload.objects.filter(team=team, uuid=key).first() if key else None
