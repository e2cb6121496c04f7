"""RQ entry points for clips: take ids, load rows, call the pipeline, record state."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from webhooks.services import clip_event_emit, render_event_emit

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
    clip = Clip.objects.get(pk=clip_id)
    if clip.attempts == 0:  # the first claim only: a retry's is no news
        clip_event_emit(clip_id=clip_id, type="clip.processing")
    return clip


def clip_fail(
    clip: Clip,
    *,
    message: str,
    code: str = "processing_failed",
    field: str = "",
    details: dict | None = None,
) -> None:
    failed = Clip.objects.filter(pk=clip.pk).update(
        status=Clip.Status.FAILED,
        error=message,
        error_code=code,
        error_field=field,
        error_details=details,
        updated_at=timezone.now(),
    )
    from .services import clip_generation_refund

    clip_generation_refund(clip_id=clip.pk)
    if failed:
        clip_event_emit(clip_id=clip.pk, type="clip.failed")


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
    from clypai.api.limits import idempotency_purge
    from webhooks.services import events_purge

    purged = idempotency_purge()
    events_purged = events_purge()
    if reschedule and not settings.CLYPAI_JOBS_INLINE:
        get_queue("default").enqueue_in(
            timedelta(seconds=settings.CLYPAI_SWEEP_INTERVAL_SECONDS),
            sweep_job,
            job_id=SWEEP_JOB_ID,
        )
    return {
        "requeuedPending": report.requeued_pending,
        "requeuedStale": report.requeued_stale,
        "failed": report.failed,
        "idempotencyKeysPurged": purged,
        "webhookEventsPurged": events_purged,
    }


class _RenderHeartbeat:
    """Beat a render's `RenderRun.heartbeat_at` from a thread while it runs (the clip's
    own heartbeat belongs to its processing, which is over by then); the sweep goes by it."""

    def __init__(self, clip_id: str):
        import threading

        self.clip_id = clip_id
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self.beat, name=f"render-heartbeat-{clip_id}", daemon=True
        )

    def beat(self) -> None:
        from django.conf import settings
        from django.db import connection

        from clips.models import RenderRun

        try:
            while True:
                RenderRun.objects.filter(pk=self.clip_id).update(heartbeat_at=timezone.now())
                if self.stop.wait(settings.CLYPAI_HEARTBEAT_SECONDS):
                    break
        except Exception:  # a beat lost is not worth failing the render for
            logger.warning("render heartbeat of %s failed", self.clip_id, exc_info=True)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def clip_full_render_job(clip_id: str) -> None:
    """Render one clip at full quality on request (services.render_request queued it).

    Claims the render (queued → processing) with a conditional update, renders through
    clips.processing.clip_render(kind="full"), and records done or error in the clip's
    render_status / render_error. A new output replaces the previous one's file.
    """
    from django.db import close_old_connections

    from clips.models import RenderRun

    from .pipeline import StageError
    from .processing import clip_render

    with transaction.atomic():
        claimed = Clip.objects.filter(pk=clip_id, render_status="queued").update(
            render_status="processing", updated_at=timezone.now()
        )
        if claimed:
            RenderRun.objects.update_or_create(
                clip_id=clip_id, defaults={"heartbeat_at": timezone.now()}
            )
    if not claimed:
        logger.info("render of clip %s is not queued (gone or taken); nothing to do", clip_id)
        return
    clip = Clip.objects.get(pk=clip_id)
    previous = clip.video.name if clip.video else ""
    with _RenderHeartbeat(clip_id):
        try:
            clip_render(clip, None, kind="full")
        except StageError as err:
            _render_finished(clip_id, error=err.message)
        except Exception as exc:
            logger.exception("full render of clip %s failed unexpectedly", clip_id)
            _render_finished(clip_id, error=f"Render failed: internal error ({type(exc).__name__})")
        else:
            clip.refresh_from_db(fields=["video"])
            if previous and clip.video and clip.video.name != previous:
                try:  # the new output replaces the old one
                    clip.video.storage.delete(previous)
                except Exception:
                    logger.warning("could not delete %s", previous, exc_info=True)
            if not clip.video:
                _render_finished(clip_id, error="Render failed: the renderer stored no video")
            else:
                _render_finished(clip_id)
        finally:
            close_old_connections()


def _render_finished(clip_id: str, *, error: str = "") -> None:
    finished = Clip.objects.filter(pk=clip_id, render_status="processing").update(
        render_status="error" if error else "done",
        render_error=error,
        updated_at=timezone.now(),
    )
    if finished and error:
        from .services import render_minutes_refund

        render_minutes_refund(clip_id=clip_id)
    if finished:
        render_event_emit(clip_id=clip_id, type="render.failed" if error else "render.done")


def clip_rerender_job(clip_id: str) -> None:
    """Render a clip again after its transcript was corrected: its full video and its
    preview, whichever it has, with the corrected captions."""
    from .processing import clip_render

    clip = Clip.objects.select_related("source", "brand_kit").filter(pk=clip_id).first()
    if clip is None or clip.source is None:
        return
    for kind, present in (("full", clip.video), ("preview", clip.preview)):
        if present:
            clip_render(clip, None, kind=kind)
