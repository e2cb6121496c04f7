"""Writes for uploads, clips and exports: the API, dashboard and CLI all call these."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import File
from django.db import models, transaction
from django.utils import timezone

from clypai.api.errors import Conflict, InvalidRequest
from clypai.queues import enqueue_on_commit
from projects.models import Project, Team
from projects.services import default_project, usage_check_render_minutes, usage_reserve_clips
from webhooks.services import (
    clip_event_emit,
    deliveries_sweep,
    job_event_emit,
    render_event_emit,
)

from .models import Clip, Export, Job, Upload

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
        enqueue_on_commit("analysis", "clips.jobs.clip_process_job", clip.pk, job_id=clip.pk)
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
    render: str = Job.Render.PREVIEW


def job_create(*, team: Team, spec: JobSpec) -> Job:
    """Create a queued job, count it as one clip generation, queue its processing."""
    from django.conf import settings

    if bool(spec.source_url) == bool(spec.upload):
        raise InvalidRequest(
            "Exactly one of source.url and source.upload_id is required", field="source"
        )
    if spec.upload is not None and spec.upload.team_id != team.pk:
        raise InvalidRequest("Unknown upload", field="source.upload_id")
    if spec.render == Job.Render.FULL:
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
            render=spec.render,
        )
        enqueue_on_commit("analysis", "clips.jobs.job_process_job", str(job.pk), job_id=str(job.pk))
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
    from .processing import clip_write_captions

    with transaction.atomic():
        Clip.objects.filter(pk=clip.pk).update(words=words, updated_at=timezone.now())
        clip.words = words
        stale = list(clip.exports.filter(burn_captions=True))
        Export.objects.filter(pk__in=[e.pk for e in stale]).delete()
        rerender = bool(clip.video or clip.preview)
        if rerender:
            enqueue_on_commit(
                "render", "clips.jobs.clip_rerender_job", clip.pk, job_id=f"{clip.pk}-rerender"
            )
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
    """The export of `clip` with these settings: an existing one is reused, else queued."""
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
    if created or export.status == Export.Status.FAILED:
        if not created:
            Export.objects.filter(pk=export.pk).update(
                status=Export.Status.QUEUED, error="", updated_at=timezone.now()
            )
            export.refresh_from_db()
        enqueue_on_commit("render", "clips.jobs.export_job", export.pk, job_id=export.pk)
    return export


# Usage given back -------------------------------------------------------------------


def clip_generation_refund(*, clip_id: str) -> bool:
    """Give a failed clip's generation back to its team's month, once. A job's clips
    share the job's one generation, so only a clip made on its own is refunded here.
    Returns whether anything was given back."""
    from projects.services import usage_refund_clips

    with transaction.atomic():
        if not Clip.objects.filter(
            pk=clip_id, job__isnull=True, usage_refunded=False, status=Clip.Status.FAILED
        ).update(usage_refunded=True):
            return False
        team_id, created_at = Clip.objects.values_list("team_id", "created_at").get(pk=clip_id)
        usage_refund_clips(team_id=team_id, created_at=created_at)
    return True


def job_generation_refund(*, job_id) -> bool:
    """Give a failed job's generation back, once."""
    from projects.services import usage_refund_clips

    with transaction.atomic():
        if not Job.objects.filter(pk=job_id, usage_refunded=False, status=Job.Status.ERROR).update(
            usage_refunded=True
        ):
            return False
        team_id, created_at = Job.objects.values_list("team_id", "created_at").get(pk=job_id)
        usage_refund_clips(team_id=team_id, created_at=created_at)
    return True


def render_minutes_refund(*, clip_id: str) -> bool:
    """Give a failed full render's minutes back, once."""
    from clips.models import RenderRun
    from projects.services import usage_refund_render

    with transaction.atomic():
        run = (
            RenderRun.objects.select_for_update()
            .filter(pk=clip_id, charged_seconds__gt=0)
            .select_related("clip")
            .first()
        )
        if run is None or run.clip.render_status != "error":
            return False
        usage_refund_render(
            team_id=run.clip.team_id,
            seconds=run.charged_seconds,
            charged_at=run.charged_at or run.clip.render_requested_at or timezone.now(),
        )
        RenderRun.objects.filter(pk=clip_id).update(charged_seconds=0.0)
    return True


# Recovery ------------------------------------------------------------------------------

_LIVE_RQ_STATES = ("queued", "started", "scheduled", "deferred")


@dataclass
class SweepReport:
    requeued_pending: list[str] = field(default_factory=list)
    requeued_stale: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _rq_state(queue, job_id: str) -> str | None:
    job = queue.fetch_job(job_id)
    if job is None:
        return None
    status = job.get_status(refresh=True)
    return getattr(status, "value", status)


def clips_sweep(*, now=None) -> SweepReport:
    """Find clips whose work was lost and queue them again; PostgreSQL is the truth.

    - pending for longer than CLYPAI_STALE_SECONDS with no live RQ job: the enqueue was
      lost between commit and Redis, or Redis lost the job;
    - processing with a heartbeat older than CLYPAI_STALE_SECONDS: the worker died
      (SIGKILL, machine loss). Its clip goes back to pending and is queued again, up
      to CLYPAI_MAX_ATTEMPTS times, then fails with the reason.
    Claims are conditional updates, so two sweeps at once do not double any work.
    """
    from datetime import timedelta

    from django.conf import settings

    from clypai.queues import enqueue_now, get_queue

    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.CLYPAI_STALE_SECONDS)
    report = SweepReport()
    queue = None if settings.CLYPAI_JOBS_INLINE else get_queue("analysis")

    dead = Clip.objects.filter(status=Clip.Status.PROCESSING).filter(
        models.Q(heartbeat_at__lt=stale_before)
        | models.Q(heartbeat_at__isnull=True, updated_at__lt=stale_before)
    )
    for clip in dead.only("id", "attempts", "heartbeat_at"):
        attempts = clip.attempts + 1
        if attempts >= settings.CLYPAI_MAX_ATTEMPTS:
            failed = Clip.objects.filter(
                pk=clip.pk, status=Clip.Status.PROCESSING, heartbeat_at=clip.heartbeat_at
            ).update(
                status=Clip.Status.FAILED,
                attempts=attempts,
                error_code="processing_failed",
                error=f"Clip generation failed: its worker was lost {attempts} times",
                updated_at=now,
            )
            if failed:
                clip_generation_refund(clip_id=clip.pk)
                report.failed.append(clip.pk)
                clip_event_emit(clip_id=clip.pk, type="clip.failed")
            continue
        released = Clip.objects.filter(
            pk=clip.pk, status=Clip.Status.PROCESSING, heartbeat_at=clip.heartbeat_at
        ).update(status=Clip.Status.PENDING, attempts=attempts, stage="requeued", updated_at=now)
        if released:
            if queue is not None:
                # The dead worker's entry would otherwise block or later fail this id.
                from rq.registry import StartedJobRegistry

                old = queue.fetch_job(clip.pk)
                if old is not None:
                    StartedJobRegistry(queue=queue).remove_executions(old)
                    old.delete(remove_from_queue=True)
            enqueue_now("analysis", "clips.jobs.clip_process_job", clip.pk, job_id=clip.pk)
            report.requeued_stale.append(clip.pk)

    _sweep_jobs(now=now, stale_before=stale_before, queue=queue, report=report)

    lost = Clip.objects.filter(status=Clip.Status.PENDING, updated_at__lt=stale_before)
    for clip_id in lost.values_list("id", flat=True):
        if queue is not None and _rq_state(queue, clip_id) in _LIVE_RQ_STATES:
            continue  # waiting its turn (or a retry's backoff): not lost
        Clip.objects.filter(pk=clip_id, status=Clip.Status.PENDING).update(updated_at=now)
        enqueue_now("analysis", "clips.jobs.clip_process_job", clip_id, job_id=clip_id)
        report.requeued_pending.append(clip_id)
    _sweep_renders(now=now, stale_before=stale_before, report=report)
    deliveries_sweep(now=now)  # webhook deliveries whose RQ job was lost
    return report


def _sweep_jobs(*, now, stale_before, queue, report: SweepReport) -> None:
    """The same recovery for jobs: a dead worker's job, or a lost enqueue, runs again."""
    from django.conf import settings

    from clypai.queues import enqueue_now

    dead = Job.objects.filter(status=Job.Status.PROCESSING).filter(
        models.Q(heartbeat_at__lt=stale_before)
        | models.Q(heartbeat_at__isnull=True, updated_at__lt=stale_before)
    )
    for job in dead.only("id", "attempts", "heartbeat_at", "stage"):
        if job.stage in ("render", "done"):
            continue  # its clips carry the rest of the work; they are swept as clips
        attempts = job.attempts + 1
        if attempts >= settings.CLYPAI_MAX_ATTEMPTS:
            if Job.objects.filter(
                pk=job.pk, status=Job.Status.PROCESSING, heartbeat_at=job.heartbeat_at
            ).update(
                status=Job.Status.ERROR,
                attempts=attempts,
                error_code="processing_failed",
                error=f"Clip generation failed: its worker was lost {attempts} times",
                updated_at=now,
            ):
                job_generation_refund(job_id=job.pk)
                report.failed.append(str(job.pk))
                job_event_emit(job_id=job.pk, type="job.error")
            continue
        if Job.objects.filter(
            pk=job.pk, status=Job.Status.PROCESSING, heartbeat_at=job.heartbeat_at
        ).update(status=Job.Status.QUEUED, attempts=attempts, stage="requeued", updated_at=now):
            if queue is not None:
                from rq.registry import StartedJobRegistry

                old = queue.fetch_job(str(job.pk))
                if old is not None:
                    StartedJobRegistry(queue=queue).remove_executions(old)
                    old.delete(remove_from_queue=True)
            enqueue_now("analysis", "clips.jobs.job_process_job", str(job.pk), job_id=str(job.pk))
            report.requeued_stale.append(str(job.pk))

    lost = Job.objects.filter(status=Job.Status.QUEUED, updated_at__lt=stale_before)
    for job_id in lost.values_list("id", flat=True):
        key = str(job_id)
        if queue is not None and _rq_state(queue, key) in _LIVE_RQ_STATES:
            continue
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(updated_at=now)
        enqueue_now("analysis", "clips.jobs.job_process_job", key, job_id=key)
        report.requeued_pending.append(key)


# Full renders on request (the Choppity API's renders) ----------------------------------

RENDER_ACTIVE = ("queued", "processing")


def render_rq_id(clip_id: str) -> str:
    """The RQ job id of a clip's full render: the clip's id, told apart from the id of
    its own processing job, which RQ keeps under the clip's bare id."""
    return f"{clip_id}-render"


def render_request(clip: Clip) -> Clip:
    """Queue a full-quality render of a completed clip; the clip, with its render state.

    At most one full render per clip is active: the claim is a conditional update of
    `render_status`, so a second request while one is queued or processing changes
    nothing, charges nothing and answers the active render. A request after a render
    finished (or failed) starts a new one, whose output replaces the earlier one. The
    clip's duration counts against the team's monthly render minutes (QuotaExceeded);
    the job is enqueued on commit, as `render_rq_id(clip.pk)` on the "render" queue.
    """
    from clips.models import RenderRun
    from projects.services import usage_reserve_render

    if clip.status not in EXPORTABLE:
        raise Conflict(
            f"Clip cannot be rendered while its status is {clip.status}; wait until its "
            "preview is ready",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            Clip.objects.filter(pk=clip.pk)
            .exclude(render_status__in=RENDER_ACTIVE)
            .update(
                render_status="queued", render_error="", render_requested_at=now, updated_at=now
            )
        )
        if claimed:
            seconds = float(clip.duration or 0.0)
            usage_reserve_render(team=clip.team, seconds=seconds)
            RenderRun.objects.update_or_create(
                clip_id=clip.pk,
                defaults={
                    "attempts": 0,
                    "heartbeat_at": None,
                    "charged_seconds": seconds,
                    "charged_at": now,
                },
            )
            enqueue_on_commit(
                "render", "clips.jobs.clip_full_render_job", clip.pk, job_id=render_rq_id(clip.pk)
            )
    clip.refresh_from_db()
    return clip


def _sweep_renders(*, now, stale_before, report: SweepReport) -> None:
    """The same recovery for full renders: a render whose worker stopped beating goes
    back to queued (up to CLYPAI_MAX_ATTEMPTS, then error), and a queued render with no
    live RQ job (a lost enqueue) is enqueued again."""
    from django.conf import settings

    from clips.models import RenderRun
    from clypai.queues import enqueue_now, get_queue

    queue = None if settings.CLYPAI_JOBS_INLINE else get_queue("render")
    dead = Clip.objects.filter(render_status="processing").filter(
        models.Q(render_run__heartbeat_at__lt=stale_before)
        | models.Q(render_run__heartbeat_at__isnull=True, updated_at__lt=stale_before)
    )
    for clip in dead.only("id", "updated_at"):
        run, _ = RenderRun.objects.get_or_create(clip_id=clip.pk)
        attempts = run.attempts + 1
        # Conditional on the row as read: a second sweep, or the worker finishing after
        # all, makes this a no-op.
        current = Clip.objects.filter(
            pk=clip.pk, render_status="processing", updated_at=clip.updated_at
        )
        if attempts >= settings.CLYPAI_MAX_ATTEMPTS:
            if current.update(
                render_status="error",
                updated_at=now,
                render_error=f"Render failed: its worker was lost {attempts} times",
            ):
                RenderRun.objects.filter(pk=clip.pk).update(attempts=attempts)
                render_minutes_refund(clip_id=clip.pk)
                report.failed.append(clip.pk)
                render_event_emit(clip_id=clip.pk, type="render.failed")
            continue
        if current.update(render_status="queued", updated_at=now):
            RenderRun.objects.filter(pk=clip.pk).update(attempts=attempts, heartbeat_at=None)
            if queue is not None:
                from rq.registry import StartedJobRegistry

                old = queue.fetch_job(render_rq_id(clip.pk))
                if old is not None:
                    StartedJobRegistry(queue=queue).remove_executions(old)
                    old.delete(remove_from_queue=True)
            enqueue_now(
                "render", "clips.jobs.clip_full_render_job", clip.pk, job_id=render_rq_id(clip.pk)
            )
            report.requeued_stale.append(clip.pk)

    lost = Clip.objects.filter(render_status="queued", updated_at__lt=stale_before)
    for clip_id in lost.values_list("id", flat=True):
        if queue is not None and _rq_state(queue, render_rq_id(clip_id)) in _LIVE_RQ_STATES:
            continue
        Clip.objects.filter(pk=clip_id, render_status="queued").update(updated_at=now)
        enqueue_now(
            "render", "clips.jobs.clip_full_render_job", clip_id, job_id=render_rq_id(clip_id)
        )
        report.requeued_pending.append(clip_id)
