"""RQ entry points for clips: take ids, load rows, call the pipeline, record state."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from .models import Clip, Export, Job

logger = logging.getLogger(__name__)


def clip_claim(clip_id: str) -> Clip | None:
    """Move a pending clip to processing; None when another worker has it or it is gone."""
    with transaction.atomic():
        claimed = Clip.objects.filter(pk=clip_id, status=Clip.Status.PENDING).update(
            status=Clip.Status.PROCESSING, stage="queued", progress=0, updated_at=timezone.now()
        )
    if not claimed:
        return None
    return Clip.objects.get(pk=clip_id)


def clip_fail(clip: Clip, *, message: str, code: str = "processing_failed",
              field: str = "", details: dict | None = None) -> None:
    Clip.objects.filter(pk=clip.pk).update(
        status=Clip.Status.FAILED,
        error=message,
        error_code=code,
        error_field=field,
        error_details=details,
        updated_at=timezone.now(),
    )


def clip_process_job(clip_id: str) -> None:
    """Process one clip from its source to its outputs."""
    from .processing import clip_process

    clip = clip_claim(clip_id)
    if clip is None:
        logger.info("clip %s is not pending (gone or taken); nothing to do", clip_id)
        return
    clip_process(clip=clip)


def job_claim(job_id) -> Job | None:
    """Move a queued job to processing; None when another worker has it or it is gone."""
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.PROCESSING, stage="queued", progress=0, updated_at=timezone.now()
        )
    if not claimed:
        return None
    return Job.objects.get(pk=job_id)


def job_process_job(job_id: str) -> None:
    """Analyse a job's source, select its clips and queue their renders."""
    from .processing import job_process

    job = job_claim(job_id)
    if job is None:
        logger.info("job %s is not queued (gone or taken); nothing to do", job_id)
        return
    job_process(job=job)


def export_job(export_id: str) -> None:
    """Produce one export of a completed clip."""
    from .processing import export_process

    export = Export.objects.select_related("clip").filter(pk=export_id).first()
    if export is None:
        return
    export_process(export=export)


SWEEP_JOB_ID = "clypai-sweep"


def sweep_job(reschedule: bool = True) -> dict:
    """One sweep pass; then it schedules the next one (workers run --with-scheduler)."""
    from datetime import timedelta

    from django.conf import settings

    from clypai.queues import get_queue

    from .services import clips_sweep

    report = clips_sweep()
    if reschedule and not settings.CLYPAI_JOBS_INLINE:
        get_queue("default").enqueue_in(
            timedelta(seconds=settings.CLYPAI_SWEEP_INTERVAL_SECONDS),
            sweep_job, job_id=SWEEP_JOB_ID,
        )
    return {"requeuedPending": report.requeued_pending, "requeuedStale": report.requeued_stale,
            "failed": report.failed}
