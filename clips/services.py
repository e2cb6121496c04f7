"""Writes for uploads, clips and exports: the API, dashboard and CLI all call these."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import File
from django.db import transaction
from django.utils import timezone

from clypai.api.errors import Conflict, InvalidRequest
from clypai.queues import enqueue_on_commit
from projects.models import Project, Team
from projects.services import default_project, usage_check_render_minutes, usage_reserve_clips

from . import states
from .models import Clip, Export, Job, Upload
from .rendering import clip_write_captions
from .tasks import (
    clip_process_task,
    clip_rerender_task,
    export_process_task,
    full_render_rq_id,
    full_render_task,
    job_process_task,
    rerender_rq_id,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def upload_create(
    *, team: Team, file: File, filename: str, content_type: str = "", sha256: str
) -> Upload:
    """Store an uploaded file for `team`; `file` is a temporary file already hashed."""
    filename = (filename or "upload").replace("/", "_").replace("\\", "_")[:255]
    upload = Upload(
        team=team,
        filename=filename,
        content_type=(content_type or "")[:120],
        size_bytes=file.size,
        sha256=sha256,
    )
    upload.file.save(filename, file, save=False)
    upload.save()
    return upload


@dataclass
class ClipSpec:
    """What a clip request asks for, already validated by the caller's serializer."""

    name: str = ""
    source_url: str = ""
    upload: Upload | None = None
    project: Project | None = None
    start_time: float | None = None
    end_time: float | None = None
    config: dict[str, Any] = field(default_factory=dict)


_CONFIG_COLUMNS = {
    "aspectRatio": "aspect_ratio",
    "platform": "platform",
    "enableCaptions": "enable_captions",
    "reframing": "reframing",
    "layout": "layout",
    "hookDetection": "hook_detection",
    "brandKit": "brand_kit",
    "maxDuration": "max_duration",
    "criteria": "criteria",
    "language": "language",
}


def clip_create(*, team: Team, spec: ClipSpec) -> Clip:
    """Create a pending clip, count it against the monthly quota, queue its processing.

    All or nothing: a quota refusal or any error leaves no clip and no usage behind.
    The processing job is enqueued only after the transaction commits.
    """
    if bool(spec.source_url) == bool(spec.upload):
        raise InvalidRequest(
            "Exactly one of sourceVideoUrl and sourceUploadId is required", field="sourceVideoUrl"
        )
    if spec.upload is not None and spec.upload.team_id != team.pk:
        raise InvalidRequest("Unknown upload", field="sourceUploadId")
    if spec.project is not None and spec.project.team_id != team.pk:
        raise InvalidRequest("Unknown project", field="projectId")
    brand_kit = spec.config.get("brandKit")
    if brand_kit is not None and brand_kit.team_id != team.pk:
        raise InvalidRequest("Unknown brand kit", field="config.brandKitId")
    usage_check_render_minutes(team=team)  # its full render comes with it
    with transaction.atomic():
        usage_reserve_clips(team=team, count=1)
        clip = Clip(
            team=team,
            project=spec.project or default_project(team=team),
            name=spec.name or "",
            source_url=spec.source_url or "",
            upload=spec.upload,
            source=spec.upload.source if spec.upload else None,
            start_time=spec.start_time,
            end_time=spec.end_time,
            duration=(
                round(spec.end_time - spec.start_time, 3)
                if spec.start_time is not None and spec.end_time is not None
                else None
            ),
        )
        for key, column in _CONFIG_COLUMNS.items():
            if key in spec.config and spec.config[key] is not None:
                setattr(clip, column, spec.config[key])
        clip.save()
        enqueue_on_commit("analysis", clip_process_task, clip.pk, job_id=clip.pk)
    return clip


@dataclass
class JobSpec:
    """A request for several clips of one source (the Choppity API, the CLI's --count)."""

    source_url: str = ""
    upload: Upload | None = None
    project: Project | None = None
    criteria: str = ""
    target_duration: float | None = None
    language: str = ""
    count: int | None = None
    aspect_ratio: str = "9:16"
    platform: str = ""
    clip_video: str = Job.ClipVideo.PREVIEW


def job_create(*, team: Team, spec: JobSpec) -> Job:
    """Create a queued job, count it as one clip generation, queue its processing."""
    from django.conf import settings

    if bool(spec.source_url) == bool(spec.upload):
        raise InvalidRequest(
            "Exactly one of source.url and source.upload_id is required", field="source"
        )
    if spec.upload is not None and spec.upload.team_id != team.pk:
        raise InvalidRequest("Unknown upload", field="source.upload_id")
    if spec.clip_video == Job.ClipVideo.FULL:
        usage_check_render_minutes(team=team)
    with transaction.atomic():
        usage_reserve_clips(team=team, count=1)
        job = Job.objects.create(
            team=team,
            project=spec.project or default_project(team=team),
            source_url=spec.source_url or "",
            upload=spec.upload,
            source=spec.upload.source if spec.upload else None,
            criteria=spec.criteria or "",
            target_duration=spec.target_duration,
            language=spec.language or "",
            count=spec.count or settings.CLYPAI_JOB_CLIP_COUNT,
            aspect_ratio=spec.aspect_ratio,
            platform=spec.platform or "",
            clip_video=spec.clip_video,
        )
        enqueue_on_commit("analysis", job_process_task, str(job.pk), job_id=str(job.pk))
    return job


MAX_WORD_CHARS = 100


def clip_words_correct(*, clip: Clip, corrections: Any) -> bool:
    """Correct words of a clip's transcript before (or after) burn-in.

    `corrections`: a list of `{"index": i, "word": text}` (times may be moved too with
    `start`/`end`, inside the clip and in order). The SRT and VTT are rewritten at once;
    exports with burned captions are dropped (the next export renders the correction);
    a rendered clip is queued for a re-render. Returns whether a re-render was queued.
    Validation is all or nothing, naming the first bad field.
    """
    if clip.status not in (Clip.Status.COMPLETED, Clip.Status.EXPORTED):
        raise Conflict(
            f"The transcript cannot be corrected while the clip is {clip.status}",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    words = [dict(w) for w in clip.words or []]
    if not isinstance(corrections, list) or not corrections:
        raise InvalidRequest("words must be a non-empty list of corrections", field="words")
    seen = set()
    for n, item in enumerate(corrections):
        where = f"words[{n}]"
        if not isinstance(item, dict):
            raise InvalidRequest("Each correction is an object with index and word", field=where)
        unknown = set(item) - {"index", "word", "start", "end"}
        if unknown:
            raise InvalidRequest(
                f"Unknown field {sorted(unknown)[0]!r}", field=f"{where}.{sorted(unknown)[0]}"
            )
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(words):
            raise InvalidRequest(
                f"index must be an integer from 0 to {len(words) - 1}", field=f"{where}.index"
            )
        if index in seen:
            raise InvalidRequest(
                "Each word may be corrected once per request", field=f"{where}.index"
            )
        seen.add(index)
        if "word" in item:
            text = item["word"]
            if (
                not isinstance(text, str)
                or not text.strip()
                or len(text) > MAX_WORD_CHARS
                or any(c in text for c in "\r\n\x00{}")
            ):
                raise InvalidRequest(
                    f"word must be 1 to {MAX_WORD_CHARS} characters on one line, without braces",
                    field=f"{where}.word",
                )
            words[index]["word"] = " " + text.strip()
        for key in ("start", "end"):
            if key in item:
                value = item[key]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not (clip.start_time <= value <= clip.end_time)
                ):
                    raise InvalidRequest(
                        f"{key} must be a time in seconds inside the clip "
                        f"({clip.start_time:g}–{clip.end_time:g})",
                        field=f"{where}.{key}",
                    )
                words[index][key] = float(value)
    for k, w in enumerate(words):
        if w["end"] < w["start"] or (k and w["start"] < words[k - 1]["start"]):
            raise InvalidRequest("Word times must stay in order", field="words")
    with transaction.atomic():
        Clip.objects.filter(pk=clip.pk).update(words=words, updated_at=timezone.now())
        clip.words = words
        stale = list(clip.exports.filter(burn_captions=True))
        Export.objects.filter(pk__in=[e.pk for e in stale]).delete()
        rerender = bool(clip.video or clip.preview)
        if rerender:
            states.rerender_queue(clip)
            enqueue_on_commit("render", clip_rerender_task, clip.pk, job_id=rerender_rq_id(clip.pk))
    clip_write_captions(clip)
    for export in stale:
        if export.file:
            export.file.storage.delete(export.file.name)
    return rerender


def clip_delete(*, clip: Clip) -> None:
    """Delete a clip, its exports and their files. Its source's analysis stays shared."""
    files = [clip.video, clip.thumbnail, clip.captions]
    files += [export.file for export in clip.exports.all()]
    with transaction.atomic():
        clip.delete()

    def _remove_files():
        for stored in files:
            if stored:
                try:
                    stored.storage.delete(stored.name)
                except Exception:  # storage hiccups must not resurrect the clip
                    logger.warning("could not delete %s", stored.name, exc_info=True)

    transaction.on_commit(_remove_files)


EXPORTABLE = (Clip.Status.COMPLETED, Clip.Status.EXPORTED)


@transaction.atomic
def export_request(
    *, clip: Clip, format: str, quality: str, platform: str | None, burn_captions: bool | None
) -> Export:
    """The export of `clip` with these settings: an existing one is reused, else queued.
    A failed one is queued again; a queued one is queued on RQ again unless its task is
    there (a lost enqueue is not waited on); one whose worker died is the sweep's."""
    if clip.status not in EXPORTABLE:
        raise Conflict(
            f"Clip cannot be exported while its status is {clip.status}; "
            "wait until it is completed",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    platform = platform if platform is not None else clip.platform
    burn = clip.enable_captions if burn_captions is None else burn_captions
    export, created = Export.objects.get_or_create(
        clip=clip, format=format, quality=quality, platform=platform or "", burn_captions=burn
    )
    if created or states.export_requeue(export) or export.status == Export.Status.QUEUED:
        enqueue_on_commit("render", export_process_task, export.pk, job_id=export.pk)
    return export


# Full renders on request (the Choppity API's renders) ----------------------------------


def full_render_request(clip: Clip) -> Clip:
    """Queue a full-quality render of a completed clip; the clip, with its render state.

    At most one full render per clip is active (`states.full_render_queue`): a second
    request while one is queued or processing changes nothing, charges nothing and
    answers the active render. A request after a render finished (or failed) starts a
    new one, whose output replaces the earlier one. The clip's duration counts against
    the team's monthly render minutes (QuotaExceeded); the task is enqueued on commit,
    as `full_render_rq_id(clip.pk)` on the "render" queue.
    """
    if clip.status not in EXPORTABLE:
        raise Conflict(
            f"Clip cannot be rendered while its status is {clip.status}; wait until its "
            "preview is ready",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    with transaction.atomic():
        if states.full_render_queue(clip):
            enqueue_on_commit(
                "render", full_render_task, clip.pk, job_id=full_render_rq_id(clip.pk)
            )
    clip.refresh_from_db()
    return clip
