"""Every status change of clips, jobs, full renders and exports, and nothing else.

Each change is a conditional update (`filter(<the state it leaves>).update(...)`), so two
workers, or a worker and the sweep, never both make it: the one whose update changed a
row goes on, the other learns it lost. The usage a change gives back (a failed clip's
generation, a failed render's minutes) or counts (a /v1 clip's own full render) is
settled here too, beside the change that causes it, and so is the webhook event that
tells about it (emitted only when the update really happened).

The sweep (`clips.sweep`) goes by the same rules through the lifecycles at the end:
`CLIPS`, `JOBS`, `FULL_RENDERS`, `EXPORTS` and `RERENDERS` say which rows stopped
beating or were never picked up, and how each goes back to waiting or fails for good.

A run holds its work by its attempt (the sweep's requeue counts one more): its
heartbeat beats, and its last change is made, only while the row is still that
attempt's, so a run whose work was given to another worker learns it (`WorkTaken`) and
changes nothing, charges nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from clypai.lib.db import connection_ensure, database_outage  # noqa: F401 (re-exported)
from projects.services import (
    usage_refund_clips,
    usage_refund_render,
    usage_reserve_render,
    usage_settle_render,
)

from .events import (
    clip_event_emit,
    export_event_emit,
    full_render_event_emit,
    job_event_emit,
)
from .models import Clip, Export, FullRender, Job, Rerender
from .pipeline import StageError

logger = logging.getLogger(__name__)

# With transcription on its own queue (CLYPAI_TRANSCRIBE_ON_QUEUE), a processing clip
# or job waits between its tasks in one of these stages: no worker holds it, so no
# heartbeat beats. The sweep goes by its queue entry instead (`waiting`), and a task
# claims it from there (`*_claim`, `*_transcribe_claim`).
TRANSCRIBE_QUEUED = "transcribe-queued"  # audio stored; the transcribe task is queued
TRANSCRIBED = "transcribed"  # transcript stored; the rest of its analysis is queued
WAIT_STAGES = (TRANSCRIBE_QUEUED, TRANSCRIBED)

# Progress (0–100) at the start of each stage of a clip, and of a job.
STAGE_PROGRESS = {
    "ingest": 2,
    "probe": 10,
    "audio": 12,
    "transcribe": 15,
    TRANSCRIBE_QUEUED: 15,
    TRANSCRIBED: 65,
    "scenes": 70,
    "select": 85,
    "render": 90,
}
# Stages that use no compute to speak of: a clip or job that fails in them (its source
# unreachable, not a video, too long) gets its generation back; one that got further
# used compute, and keeps it counted however it ends.
FREE_STAGES = ("queued", "ingest", "probe")
JOB_STAGE_PROGRESS = {
    "ingest": 2,
    "probe": 8,
    "audio": 10,
    "transcribe": 12,
    TRANSCRIBE_QUEUED: 12,
    TRANSCRIBED: 55,
    "scenes": 60,
    "select": 75,
    "render": 80,
}


# Heartbeats ------------------------------------------------------------------------------


class WorkTaken(Exception):
    """The sweep gave this run's work to another worker (its heartbeat found no row held
    by this run to beat: it beat too late, and the work was queued again). The run stops
    and changes nothing; the worker that holds the work now finishes it."""


class Beat:
    """What a run hears from its heartbeat: `lost` once its work was taken from it."""

    def __init__(self, name: str):
        self.name = name
        self.lost = threading.Event()

    def check(self) -> None:
        """Raise WorkTaken once the work is no longer this run's: called between stages,
        and before anything is stored or charged. Also makes the run's own database
        connection work again when the server restarted meanwhile (`connection_ensure`):
        the heartbeat's thread reconnects by itself, the run's does it here."""
        if self.lost.is_set():
            raise WorkTaken(f"{self.name} was taken from this run")
        connection_ensure()


@contextmanager
def heartbeat(rows: models.QuerySet, *, name: str, interval: float | None = None) -> Iterator[Beat]:
    """Beat `heartbeat_at` of `rows` from a thread while the body runs; the sweep goes by
    it. `rows` is the filter that holds the work for this run (its status and its attempt,
    which the sweep's requeue changes), so once a beat finds no row the work was taken:
    the Beat the body gets says so. A beat that fails (the database restarting) is
    logged and the next one runs on a new connection: one error must not stop the beats,
    or the sweep gives the work to a second worker while this one goes on."""
    interval = settings.CLYPAI_HEARTBEAT_SECONDS if interval is None else interval
    stop = threading.Event()
    beat = Beat(name)

    def beating():
        try:
            while True:
                try:
                    if not rows.update(heartbeat_at=timezone.now()):
                        if not stop.is_set():  # not merely the body's own last change
                            logger.warning("%s was taken from this run: stopping it", name)
                            beat.lost.set()
                        return
                except Exception:
                    logger.warning("heartbeat of %s failed; beating on", name, exc_info=True)
                    _close_connection()  # the next beat connects again
                if stop.wait(interval):
                    return
        finally:
            _close_connection()

    thread = threading.Thread(target=beating, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield beat
    finally:
        stop.set()
        thread.join(timeout=5)


def _close_connection() -> None:
    try:
        connection.close()
    except Exception:  # a broken connection may fail to close; it is dropped all the same
        logger.debug("closing a broken connection failed", exc_info=True)


def clip_heartbeat(clip: Clip):
    """The heartbeat of a processing clip, held by the run that claimed it (its attempt)."""
    return heartbeat(
        Clip.objects.filter(pk=clip.pk, status=Clip.Status.PROCESSING, attempts=clip.attempts),
        name=f"clip {clip.pk}",
    )


def job_heartbeat(job: Job):
    """The heartbeat of a processing job, held by the run that claimed it (its attempt)."""
    return heartbeat(
        Job.objects.filter(pk=job.pk, status=Job.Status.PROCESSING, attempts=job.attempts),
        name=f"job {job.pk}",
    )


def full_render_heartbeat(clip_id: str, attempt: int):
    """The heartbeat of a clip's full render, on its `FullRender` (the clip's own heartbeat
    belongs to its processing, which is over by then), held by the run of `attempt`."""
    return heartbeat(
        FullRender.objects.filter(
            pk=clip_id, attempts=attempt, clip__full_render_status="processing"
        ),
        name=f"full render of {clip_id}",
    )


# Clips ---------------------------------------------------------------------------------


def clip_claim(clip_id: str) -> Clip | None:
    """Move a pending clip to processing, or take up a processing clip waiting between
    its tasks (a wait stage); None when another worker has it or it is gone."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Clip.objects.filter(pk=clip_id, status=Clip.Status.PENDING).update(
            status=Clip.Status.PROCESSING, stage="queued", progress=0, updated_at=now
        )
        resumed = not claimed and _resume(Clip.objects.filter(pk=clip_id), now=now)
    if not (claimed or resumed):
        return None
    clip = Clip.objects.get(pk=clip_id)
    if claimed and clip.attempts == 0:  # the first claim only: a retry's is no news
        clip_event_emit(clip_id=clip_id, type="clip.processing")
    return clip


def _resume(rows: models.QuerySet, *, now: datetime) -> bool:
    """Take up a processing row waiting in a wait stage (its previous task ended): the
    run that does now beats its heartbeat from here."""
    return bool(
        rows.filter(status="processing", stage__in=WAIT_STAGES).update(
            stage="queued", heartbeat_at=now, updated_at=now
        )
    )


def _wait(rows: models.QuerySet, stage: str, progress: int) -> bool:
    """A run hands its processing row over to the next task: the row waits in `stage`
    (no heartbeat is expected there; the sweep watches the task's queue entry)."""
    return bool(rows.update(stage=stage, progress=progress, updated_at=timezone.now()))


def _transcribe_claim(rows: models.QuerySet) -> bool:
    now = timezone.now()
    return bool(
        rows.filter(status="processing", stage=TRANSCRIBE_QUEUED).update(
            stage="transcribe", heartbeat_at=now, updated_at=now
        )
    )


def clip_transcribe_wait(clip: Clip) -> bool:
    """The run holding `clip` stored its audio and hands it to the transcribe queue:
    the clip stays processing and waits in TRANSCRIBE_QUEUED. False when the run no
    longer holds it."""
    return _wait(
        Clip.objects.filter(pk=clip.pk, status=Clip.Status.PROCESSING, attempts=clip.attempts),
        TRANSCRIBE_QUEUED,
        STAGE_PROGRESS[TRANSCRIBE_QUEUED],
    )


def clip_transcribe_claim(clip_id: str) -> Clip | None:
    """The transcribe task takes a clip waiting for it; None when it is not waiting."""
    if not _transcribe_claim(Clip.objects.filter(pk=clip_id)):
        return None
    return Clip.objects.get(pk=clip_id)


def clip_transcribed(clip: Clip) -> bool:
    """The transcribe run holding `clip` stored its transcript: the clip waits in
    TRANSCRIBED for the rest of its analysis. False when the run no longer holds it."""
    return _wait(
        Clip.objects.filter(pk=clip.pk, status=Clip.Status.PROCESSING, attempts=clip.attempts),
        TRANSCRIBED,
        STAGE_PROGRESS[TRANSCRIBED],
    )


def clip_stage_set(clip_id: str, stage: str) -> None:
    """A processing clip enters `stage`; its progress is the stage's. Past the free
    stages it has used compute (`work_started`); at "render" its render began."""
    marks = {}
    if stage not in FREE_STAGES:
        marks["work_started"] = True
    if stage == "render":
        marks["render_started"] = True
    Clip.objects.filter(pk=clip_id, status=Clip.Status.PROCESSING).update(
        stage=stage,
        # never backwards: a run taken up after its transcription passes its early
        # stages again, all found done
        progress=Greatest("progress", STAGE_PROGRESS.get(stage, 0)),
        updated_at=timezone.now(),
        **marks,
    )


def clip_complete(clip: Clip, *, charge_full_render: bool = False) -> bool:
    """A processing clip, held by the run that claimed it (`clip.attempts`), is completed.
    `charge_full_render`: it rendered its full video as part of its processing (a /v1
    clip, the CLI): the render minutes reserved for it are settled to its real length
    (`clip_render_settle`); otherwise what was reserved is given back. Settled once per
    clip, whatever runs it had: the completion and the settlement are one transaction,
    keyed by the clip's `render_charged`. Returns whether this run completed it."""
    with transaction.atomic():
        completed = Clip.objects.filter(
            pk=clip.pk, status=Clip.Status.PROCESSING, attempts=clip.attempts
        ).update(
            status=Clip.Status.COMPLETED,
            stage="done",
            progress=100,
            error="",
            error_code="",
            error_field="",
            error_details=None,
            updated_at=timezone.now(),
        )
        if completed:
            clip_render_settle(clip.pk, rendered=charge_full_render)
    if completed:
        clip_event_emit(clip_id=clip.pk, type="clip.completed")
    return bool(completed)


def clip_render_reserve(clip: Clip) -> None:
    """Before a clip renders its full video with nothing reserved for it yet (a CLI
    job's clip): count its length against the team's render minutes under the usage
    row's lock (QuotaExceeded when they would pass the limit). /v1 clips reserved theirs
    when they were created."""
    with transaction.atomic():
        row = Clip.objects.select_for_update().filter(pk=clip.pk).first()
        if row is None or row.render_charged or row.render_reserved_seconds > 0:
            return
        seconds = round(max((row.end_time or 0.0) - (row.start_time or 0.0), 0.0), 3)
        usage_reserve_render(team=row.team, seconds=seconds)
        Clip.objects.filter(pk=clip.pk).update(
            render_reserved_seconds=seconds, render_reserved_at=timezone.now()
        )


def clip_render_settle(clip_id: str, *, rendered: bool) -> bool:
    """Settle the render minutes reserved for a clip's full video, once (`render_charged`):
    to its real length when it `rendered` (or its render began before it failed: the
    compute was used), else to nothing, the reservation given back. Returns whether this
    call settled it."""
    with transaction.atomic():
        if not Clip.objects.filter(pk=clip_id, render_charged=False).update(render_charged=True):
            return False
        team_id, start, end, reserved, reserved_at, created_at = Clip.objects.values_list(
            "team_id",
            "start_time",
            "end_time",
            "render_reserved_seconds",
            "render_reserved_at",
            "created_at",
        ).get(pk=clip_id)
        actual = 0.0
        if rendered:
            actual = (
                round(max((end or 0.0) - (start or 0.0), 0.0), 3) if start is not None else reserved
            )
        usage_settle_render(
            team_id=team_id, reserved=reserved, actual=actual, reserved_at=reserved_at or created_at
        )
        Clip.objects.filter(pk=clip_id).update(render_reserved_seconds=actual)
    return True


def _clip_failed_settle(clip_id: str) -> None:
    """What a failed clip gives back: its generation when it failed before any work
    (`clip_generation_refund`), its render minutes unless its render had begun."""
    clip_generation_refund(clip_id=clip_id)
    found = (
        Clip.objects.filter(pk=clip_id, status=Clip.Status.FAILED)
        .values_list("render_started", "render_reserved_seconds")
        .first()
    )
    if found is not None:
        render_started, reserved = found
        # Only a full render holds a reservation: a job's preview is free, begun or not.
        clip_render_settle(clip_id, rendered=render_started and reserved > 0)


def clip_fail(
    clip: Clip,
    *,
    message: str,
    code: str = "processing_failed",
    field: str = "",
    details: dict | None = None,
) -> None:
    """The clip failed for good, with its reason; a clip of its own gets its generation
    back when it failed before any work (in its FREE_STAGES), and its reserved render
    minutes unless its render had begun. Only while the clip is the caller's (`clip.attempts`): a run whose clip the
    sweep gave to another worker fails nothing."""
    failed = Clip.objects.filter(pk=clip.pk, attempts=clip.attempts).update(
        status=Clip.Status.FAILED,
        error=message,
        error_code=code,
        error_field=field,
        error_details=details,
        updated_at=timezone.now(),
    )
    _clip_failed_settle(clip.pk)
    if failed:
        clip_event_emit(clip_id=clip.pk, type="clip.failed")


def clip_stage_failed(clip: Clip, err: StageError) -> float | None:
    """A stage of a processing clip raised `err`. A permanent error fails the clip; a
    passing one sends it back to pending with backoff: the seconds to wait before it is
    processed again, or None when there is nothing to queue."""
    attempts = clip.attempts + 1
    if err.permanent or attempts >= settings.CLYPAI_MAX_ATTEMPTS or settings.CLYPAI_JOBS_INLINE:
        message = err.message
        if err.code == "processing_failed" and not message.startswith("Clip generation failed"):
            message = f"Clip generation failed: {message}"
        clip_fail(
            clip, message=message, code=err.code, field=err.field or "", details=err.details or None
        )
        return None
    delay = settings.CLYPAI_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1)
    updated = Clip.objects.filter(
        pk=clip.pk, status=Clip.Status.PROCESSING, attempts=clip.attempts
    ).update(
        status=Clip.Status.PENDING,
        attempts=attempts,
        stage="retry-wait",
        error=err.message,
        updated_at=timezone.now(),
    )
    if not updated:
        return None
    logger.info("clip %s: %s; retrying in %.0f s", clip.pk, err.message, delay)
    return delay


def clip_exported(clip_id: str) -> None:
    """A completed clip has an export now: it becomes `exported`."""
    if Clip.objects.filter(pk=clip_id, status=Clip.Status.COMPLETED).update(
        status=Clip.Status.EXPORTED, updated_at=timezone.now()
    ):
        clip_event_emit(clip_id=clip_id, type="clip.exported")


def clip_generation_refund(*, clip_id: str) -> bool:
    """Give a failed clip's generation back to its team's month, once, when it failed
    before any work (`work_started` unset: its source unreachable or not a video). A
    clip that failed later used the compute and keeps it counted, or a file crafted to
    fail late would buy analysis for free. A job's clips share the job's one generation,
    so only a clip made on its own is refunded here. Returns whether anything was given
    back."""
    with transaction.atomic():
        if not Clip.objects.filter(
            pk=clip_id,
            job__isnull=True,
            usage_refunded=False,
            work_started=False,
            status=Clip.Status.FAILED,
        ).update(usage_refunded=True):
            return False
        team_id, created_at = Clip.objects.values_list("team_id", "created_at").get(pk=clip_id)
        usage_refund_clips(team_id=team_id, created_at=created_at)
    return True


def clip_rerun(clip_id: str) -> bool:
    """A failed clip goes back to pending, its error and attempts cleared, to be processed
    again (staff's Re-run); False when it is not failed. Its generation, if it was given
    back, is counted again by the caller (`services.clip_rerun`) in the same transaction."""
    return bool(
        Clip.objects.filter(pk=clip_id, status=Clip.Status.FAILED).update(
            status=Clip.Status.PENDING,
            stage="",
            progress=0,
            error="",
            error_code="",
            error_field="",
            error_details=None,
            attempts=0,
            heartbeat_at=None,
            usage_refunded=False,
            updated_at=timezone.now(),
        )
    )


# Jobs ----------------------------------------------------------------------------------


def job_claim(job_id) -> Job | None:
    """Move a queued job to processing, or take up a processing job waiting between its
    tasks (a wait stage); None when another worker has it or it is gone."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.PROCESSING, stage="queued", progress=0, updated_at=now
        )
        resumed = not claimed and _resume(Job.objects.filter(pk=job_id), now=now)
    if not (claimed or resumed):
        return None
    return Job.objects.get(pk=job_id)


def job_transcribe_wait(job: Job) -> bool:
    """As `clip_transcribe_wait`, for a job's analysis."""
    return _wait(
        Job.objects.filter(pk=job.pk, status=Job.Status.PROCESSING, attempts=job.attempts),
        TRANSCRIBE_QUEUED,
        JOB_STAGE_PROGRESS[TRANSCRIBE_QUEUED],
    )


def job_transcribe_claim(job_id) -> Job | None:
    """The transcribe task takes a job waiting for it; None when it is not waiting."""
    if not _transcribe_claim(Job.objects.filter(pk=job_id)):
        return None
    return Job.objects.get(pk=job_id)


def job_transcribed(job: Job) -> bool:
    """As `clip_transcribed`, for a job's analysis."""
    return _wait(
        Job.objects.filter(pk=job.pk, status=Job.Status.PROCESSING, attempts=job.attempts),
        TRANSCRIBED,
        JOB_STAGE_PROGRESS[TRANSCRIBED],
    )


def job_hold(job: Job) -> None:
    """Inside a transaction: lock the job while it is the caller's run's (processing, its
    attempt), so what the run writes next is written once; WorkTaken when it is not."""
    held = (
        Job.objects.select_for_update()
        .filter(pk=job.pk, status=Job.Status.PROCESSING, attempts=job.attempts)
        .exists()
    )
    if not held:
        raise WorkTaken(f"job {job.pk} was taken from this run")


def job_stage_set(job_id, stage: str) -> None:
    """A processing job enters `stage`; its progress is the stage's. Past the free
    stages it has used compute (`work_started`)."""
    marks = {"work_started": True} if stage not in FREE_STAGES else {}
    Job.objects.filter(pk=job_id, status=Job.Status.PROCESSING).update(
        stage=stage,
        progress=Greatest("progress", JOB_STAGE_PROGRESS.get(stage, 0)),
        updated_at=timezone.now(),
        **marks,
    )


def job_fail(
    job: Job, *, message: str, code: str = "processing_failed", details: dict | None = None
) -> None:
    """The job failed for good, with its reason; its generation is given back. Only while
    the job is the caller's (`job.attempts`)."""
    failed = Job.objects.filter(pk=job.pk, attempts=job.attempts).update(
        status=Job.Status.ERROR,
        error=message,
        error_code=code,
        error_details=details,
        updated_at=timezone.now(),
    )
    job_generation_refund(job_id=job.pk)
    if failed:
        job_event_emit(job_id=job.pk, type="job.error")


def job_refresh(job_id) -> None:
    """Settle a processing job from its clips: done when every clip is, error when one
    failed. A job still analysing (no clips yet) is left alone."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != Job.Status.PROCESSING:
            return
        states = list(job.clips.values_list("status", "error"))
        if not states:
            return
        failed = [error for status, error in states if status == Clip.Status.FAILED]
        if failed:
            errored = Job.objects.filter(pk=job.pk).update(
                status=Job.Status.ERROR,
                error=failed[0],
                error_code="processing_failed",
                updated_at=timezone.now(),
            )
            job_generation_refund(job_id=job.pk)
            if errored:
                job_event_emit(job_id=job.pk, type="job.error")
        elif all(status in (Clip.Status.COMPLETED, Clip.Status.EXPORTED) for status, _ in states):
            if Job.objects.filter(pk=job.pk).update(
                status=Job.Status.DONE, stage="done", progress=100, updated_at=timezone.now()
            ):
                job_event_emit(job_id=job.pk, type="job.done")


def job_rerun(job_id) -> bool:
    """A failed job goes back to queued with its failed clips pending again, errors and
    attempts cleared (staff's Re-run); False when it is not failed. Clips already made
    are kept: a rerun completes the job from where it stopped."""
    now = timezone.now()
    with transaction.atomic():
        rerun = Job.objects.filter(pk=job_id, status=Job.Status.ERROR).update(
            status=Job.Status.QUEUED,
            stage="",
            progress=0,
            error="",
            error_code="",
            error_details=None,
            attempts=0,
            heartbeat_at=None,
            usage_refunded=False,
            updated_at=now,
        )
        if rerun:
            Clip.objects.filter(job_id=job_id, status=Clip.Status.FAILED).update(
                status=Clip.Status.PENDING,
                stage="",
                progress=0,
                error="",
                error_code="",
                error_field="",
                error_details=None,
                attempts=0,
                heartbeat_at=None,
                updated_at=now,
            )
    return bool(rerun)


def job_generation_refund(*, job_id) -> bool:
    """Give a failed job's generation back, once, when it failed before any work
    (`work_started` unset), as a clip's."""
    with transaction.atomic():
        if not Job.objects.filter(
            pk=job_id, usage_refunded=False, work_started=False, status=Job.Status.ERROR
        ).update(usage_refunded=True):
            return False
        team_id, created_at = Job.objects.values_list("team_id", "created_at").get(pk=job_id)
        usage_refund_clips(team_id=team_id, created_at=created_at)
    return True


# Full renders on request (the Choppity API's renders) ----------------------------------

FULL_RENDER_ACTIVE = ("queued", "processing")


def full_render_queue(clip: Clip) -> bool:
    """Queue a full render of `clip` unless one is queued or processing: the clip's
    render state, and its `FullRender` with the clip's seconds counted against the team's
    render minutes (QuotaExceeded when they would pass the limit). Returns whether a
    render was queued; in a transaction, so a refusal leaves nothing behind."""
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            Clip.objects.filter(pk=clip.pk)
            .exclude(full_render_status__in=FULL_RENDER_ACTIVE)
            .update(
                full_render_status="queued",
                full_render_error="",
                full_render_requested_at=now,
                updated_at=now,
            )
        )
        if claimed:
            seconds = float(clip.duration or 0.0)
            usage_reserve_render(team=clip.team, seconds=seconds)
            FullRender.objects.update_or_create(
                clip_id=clip.pk,
                defaults={
                    "attempts": 0,
                    "heartbeat_at": None,
                    "charged_seconds": seconds,
                    "charged_at": now,
                },
            )
    return bool(claimed)


def full_render_claim(clip_id: str) -> int | None:
    """Move a queued full render to processing: the attempt this run holds (what its
    heartbeat and its finish check), or None when another worker has it."""
    with transaction.atomic():
        claimed = Clip.objects.filter(pk=clip_id, full_render_status="queued").update(
            full_render_status="processing", updated_at=timezone.now()
        )
        if not claimed:
            return None
        run, _ = FullRender.objects.select_for_update().get_or_create(clip_id=clip_id)
        FullRender.objects.filter(pk=clip_id).update(heartbeat_at=timezone.now())
    return run.attempts


def full_render_finish(clip_id: str, *, error: str = "", attempt: int | None = None) -> None:
    """A processing full render is done, or failed with `error` (its minutes given back).
    `attempt`: the run's (full_render_claim's); a run whose render the sweep gave to
    another worker finishes nothing."""
    with transaction.atomic():
        if attempt is not None and not (
            FullRender.objects.select_for_update().filter(pk=clip_id, attempts=attempt).exists()
        ):
            return
        finished = Clip.objects.filter(pk=clip_id, full_render_status="processing").update(
            full_render_status="error" if error else "done",
            full_render_error=error,
            updated_at=timezone.now(),
        )
    if finished and error:
        render_minutes_refund(clip_id=clip_id)
    if finished:
        full_render_event_emit(clip_id=clip_id, type="render.failed" if error else "render.done")


def render_minutes_refund(*, clip_id: str) -> bool:
    """Give a failed full render's minutes back, once."""
    with transaction.atomic():
        run = (
            FullRender.objects.select_for_update()
            .filter(pk=clip_id, charged_seconds__gt=0)
            .select_related("clip")
            .first()
        )
        if run is None or run.clip.full_render_status != "error":
            return False
        usage_refund_render(
            team_id=run.clip.team_id,
            seconds=run.charged_seconds,
            charged_at=run.charged_at or run.clip.full_render_requested_at or timezone.now(),
        )
        FullRender.objects.filter(pk=clip_id).update(charged_seconds=0.0)
    return True


# Exports -------------------------------------------------------------------------------


def export_requeue(export: Export) -> bool:
    """A failed export is asked for again: back to queued, its lost workers forgotten."""
    requeued = Export.objects.filter(pk=export.pk, status=Export.Status.FAILED).update(
        status=Export.Status.QUEUED,
        error="",
        error_details=None,
        attempts=0,
        heartbeat_at=None,
        updated_at=timezone.now(),
    )
    export.refresh_from_db()
    return bool(requeued)


def export_claim(export_id: str) -> Export | None:
    """Move a queued export to processing: the export as this run holds it (its attempt
    is what its heartbeat and its end check), or None when another worker has it."""
    now = timezone.now()
    if not Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.PROCESSING, heartbeat_at=now, updated_at=now
    ):
        return None
    return Export.objects.select_related("clip").get(pk=export_id)


def export_heartbeat(export: Export):
    """The heartbeat of a processing export, held by the run that claimed it."""
    return heartbeat(_export_held(export), name=f"export {export.pk}")


def _export_held(export: Export) -> models.QuerySet:
    return Export.objects.filter(
        pk=export.pk, status=Export.Status.PROCESSING, attempts=export.attempts
    )


def export_complete(export: Export, *, size: int) -> bool:
    """An export's file is stored: completed, when the run still holds it."""
    completed = _export_held(export).update(
        status=Export.Status.COMPLETED,
        file=export.file.name,
        file_size=size,
        source_linked=export.source_linked,
        error="",
        error_details=None,
        updated_at=timezone.now(),
    )
    if completed:
        export_event_emit(export_id=export.pk, type="export.ready")
    return bool(completed)


def export_fail(
    export: Export, *, error: str, details: dict | None = None, before_work: bool = False
) -> None:
    """An export could not be made, with the reason and its stage's details (when the
    run still holds it). `before_work`: it failed before encoding began (its settings
    or its length refused it), so its render minutes are given back; one that failed
    while encoding used them, and they stay counted."""
    with transaction.atomic():
        failed = _export_held(export).update(
            status=Export.Status.FAILED,
            error=error,
            error_details=details or None,
            updated_at=timezone.now(),
        )
        if failed and before_work:
            export_minutes_refund(export.pk)
    if failed:
        export_event_emit(export_id=export.pk, type="export.failed")


def export_minutes_refund(export_id: str) -> bool:
    """Give an export's render minutes back, once (`charged_seconds` goes to 0)."""
    with transaction.atomic():
        row = (
            Export.objects.select_for_update()
            .filter(pk=export_id, charged_seconds__gt=0)
            .select_related("clip")
            .first()
        )
        if row is None:
            return False
        usage_refund_render(
            team_id=row.clip.team_id,
            seconds=row.charged_seconds,
            charged_at=row.charged_at or row.created_at,
        )
        Export.objects.filter(pk=export_id).update(charged_seconds=0.0)
    return True


# Re-renders after an edit (a transcript correction, a crop override, a re-cut) -------

RERENDER_ACTIVE = (Rerender.Status.QUEUED, Rerender.Status.PROCESSING)


def rerender_seconds(clip: Clip) -> float:
    """What a re-render of `clip` counts against the team's render minutes: its full
    video's length when it has one. A preview is free, as a job's clip's first preview
    is (only a full render holds render minutes)."""
    if not clip.video:
        return 0.0
    length = clip.duration or (clip.end_time or 0.0) - (clip.start_time or 0.0)
    return round(max(float(length), 0.0), 3)


def rerender_queue(clip: Clip) -> None:
    """Ask for a re-render of `clip` (it was edited): queued, whatever came before; a
    run of an earlier request stops (its `requested_at` is gone).

    Its full video's length (`rerender_seconds`) is reserved against the team's render
    minutes under the usage row's lock: QuotaExceeded (429 with Retry-After) when they
    would pass the limit. An earlier request still queued or running is replaced, never
    finished: its reservation is given back first. In the caller's transaction, so a
    refusal leaves nothing behind (the edit is not saved either)."""
    now = timezone.now()
    earlier = (
        Rerender.objects.select_for_update()
        .filter(pk=clip.pk, status__in=RERENDER_ACTIVE)
        .values_list("charged_seconds", "charged_at")
        .first()
    )
    if earlier is not None and earlier[0] > 0:
        usage_refund_render(team_id=clip.team_id, seconds=earlier[0], charged_at=earlier[1] or now)
    seconds = rerender_seconds(clip)
    usage_reserve_render(team=clip.team, seconds=seconds)
    Rerender.objects.update_or_create(
        clip_id=clip.pk,
        defaults={
            "status": Rerender.Status.QUEUED,
            "error": "",
            "requested_at": now,
            "heartbeat_at": None,
            "attempts": 0,
            "charged_seconds": seconds,
            "charged_at": now,
            "updated_at": now,
        },
    )


def rerender_claim(clip_id: str) -> Rerender | None:
    """Move a queued re-render to processing: the row as this run holds it, or None."""
    now = timezone.now()
    if not Rerender.objects.filter(pk=clip_id, status=Rerender.Status.QUEUED).update(
        status=Rerender.Status.PROCESSING, heartbeat_at=now, updated_at=now
    ):
        return None
    return Rerender.objects.get(pk=clip_id)


def _rerender_held(run: Rerender) -> models.QuerySet:
    return Rerender.objects.filter(
        pk=run.pk,
        status=Rerender.Status.PROCESSING,
        attempts=run.attempts,
        requested_at=run.requested_at,
    )


def rerender_heartbeat(run: Rerender):
    """The heartbeat of a re-render, held by the run that claimed this request of it."""
    return heartbeat(_rerender_held(run), name=f"re-render of {run.pk}")


def rerender_finish(run: Rerender, *, error: str = "", rendered_seconds: float = 0.0) -> bool:
    """A re-render is done, or failed with `error`, when the run still holds it; its
    render minutes are settled in the same transaction: to the `rendered_seconds` of full
    video the run made when done, to nothing when it failed (its clip was rendered once
    already: its failures are ours). The status moves from processing once per request,
    so a retried task, or a run the sweep took the work from, settles nothing again."""
    with transaction.atomic():
        finished = _rerender_held(run).update(
            status=Rerender.Status.ERROR if error else Rerender.Status.DONE,
            error=error,
            updated_at=timezone.now(),
        )
        if finished:
            reserved, reserved_at, team_id = Rerender.objects.values_list(
                "charged_seconds", "charged_at", "clip__team_id"
            ).get(pk=run.pk)
            actual = 0.0 if error else round(max(float(rendered_seconds), 0.0), 3)
            usage_settle_render(
                team_id=team_id, reserved=reserved, actual=actual, reserved_at=reserved_at
            )
            Rerender.objects.filter(pk=run.pk).update(charged_seconds=actual)
    return bool(finished)


# Lifecycles the sweep goes by ----------------------------------------------------------


@dataclass(frozen=True)
class Stale:
    """A row in progress whose worker stopped beating, as the sweep read it: `token` is
    what its conditional updates check, so a row that moved on meanwhile is left alone."""

    pk: Any
    attempts: int
    token: Any


def _waiting(first: str) -> models.Q:
    """Waiting for a task: for its first (`first`), or processing in a wait stage."""
    return models.Q(status=first) | models.Q(status="processing", stage__in=WAIT_STAGES)


def _lost_message(kind: str, attempts: int) -> str:
    return f"{kind} failed: its worker was lost {attempts} times"


class ClipLifecycle:
    """pending → processing → completed | failed, as the sweep sees it. A processing clip
    in a wait stage is waiting for its next task, as a pending one is for its first."""

    name = "clip"

    def stale(self, *, before: datetime, pk=None) -> list[Stale]:
        """Rows in progress whose heartbeat is older than `before` (only `pk`'s, if given)."""
        dead = (
            Clip.objects.filter(status=Clip.Status.PROCESSING)
            .exclude(stage__in=WAIT_STAGES)
            .filter(
                models.Q(heartbeat_at__lt=before)
                | models.Q(heartbeat_at__isnull=True, updated_at__lt=before)
            )
        )
        if pk is not None:
            dead = dead.filter(pk=pk)
        return [
            Stale(clip.pk, clip.attempts, clip.heartbeat_at)
            for clip in dead.only("id", "attempts", "heartbeat_at")
        ]

    def _held(self, row: Stale):
        return Clip.objects.filter(pk=row.pk, status=Clip.Status.PROCESSING, heartbeat_at=row.token)

    def release(self, row: Stale, *, now: datetime) -> bool:
        return bool(
            self._held(row).update(
                status=Clip.Status.PENDING,
                attempts=row.attempts + 1,
                stage="requeued",
                updated_at=now,
            )
        )

    def give_up(self, row: Stale, *, now: datetime) -> bool:
        attempts = row.attempts + 1
        failed = self._held(row).update(
            status=Clip.Status.FAILED,
            attempts=attempts,
            error_code="processing_failed",
            error=_lost_message("Clip generation", attempts),
            updated_at=now,
        )
        if failed:
            _clip_failed_settle(row.pk)
            clip_event_emit(clip_id=row.pk, type="clip.failed")
        return bool(failed)

    def waiting(self, *, before: datetime) -> list:
        return list(
            Clip.objects.filter(_waiting(Clip.Status.PENDING), updated_at__lt=before).values_list(
                "id", flat=True
            )
        )

    def touch(self, pk, *, now: datetime) -> None:
        Clip.objects.filter(_waiting(Clip.Status.PENDING), pk=pk).update(updated_at=now)


class JobLifecycle:
    """queued → processing → done | error. A job rendering its clips is left to them:
    they are swept as clips."""

    name = "job"

    def stale(self, *, before: datetime, pk=None) -> list[Stale]:
        """Rows in progress whose heartbeat is older than `before` (only `pk`'s, if given)."""
        dead = Job.objects.filter(status=Job.Status.PROCESSING).filter(
            models.Q(heartbeat_at__lt=before)
            | models.Q(heartbeat_at__isnull=True, updated_at__lt=before)
        )
        if pk is not None:
            dead = dead.filter(pk=pk)
        return [
            Stale(job.pk, job.attempts, job.heartbeat_at)
            for job in dead.only("id", "attempts", "heartbeat_at", "stage")
            if job.stage not in ("render", "done", *WAIT_STAGES)
        ]

    def _held(self, row: Stale):
        return Job.objects.filter(pk=row.pk, status=Job.Status.PROCESSING, heartbeat_at=row.token)

    def release(self, row: Stale, *, now: datetime) -> bool:
        return bool(
            self._held(row).update(
                status=Job.Status.QUEUED,
                attempts=row.attempts + 1,
                stage="requeued",
                updated_at=now,
            )
        )

    def give_up(self, row: Stale, *, now: datetime) -> bool:
        attempts = row.attempts + 1
        failed = self._held(row).update(
            status=Job.Status.ERROR,
            attempts=attempts,
            error_code="processing_failed",
            error=_lost_message("Clip generation", attempts),
            updated_at=now,
        )
        if failed:
            job_generation_refund(job_id=row.pk)
            job_event_emit(job_id=row.pk, type="job.error")
        return bool(failed)

    def waiting(self, *, before: datetime) -> list:
        return list(
            Job.objects.filter(_waiting(Job.Status.QUEUED), updated_at__lt=before).values_list(
                "id", flat=True
            )
        )

    def touch(self, pk, *, now: datetime) -> None:
        Job.objects.filter(_waiting(Job.Status.QUEUED), pk=pk).update(updated_at=now)


class FullRenderLifecycle:
    """A clip's full render on request: queued → processing → done | error, its worker's
    heartbeat on its `FullRender`."""

    name = "full render"

    def stale(self, *, before: datetime, pk=None) -> list[Stale]:
        """Rows in progress whose heartbeat is older than `before` (only `pk`'s, if given)."""
        dead = Clip.objects.filter(full_render_status="processing").filter(
            models.Q(full_render__heartbeat_at__lt=before)
            | models.Q(full_render__heartbeat_at__isnull=True, updated_at__lt=before)
        )
        if pk is not None:
            dead = dead.filter(pk=pk)
        found = []
        for clip in dead.only("id", "updated_at"):
            run, _ = FullRender.objects.get_or_create(clip_id=clip.pk)
            found.append(Stale(clip.pk, run.attempts, clip.updated_at))
        return found

    def _held(self, row: Stale):
        # Conditional on the row as read: a second sweep, or the worker finishing after
        # all, makes this a no-op.
        return Clip.objects.filter(pk=row.pk, full_render_status="processing", updated_at=row.token)

    def release(self, row: Stale, *, now: datetime) -> bool:
        with transaction.atomic():
            if not self._held(row).update(full_render_status="queued", updated_at=now):
                return False
            FullRender.objects.filter(pk=row.pk).update(
                attempts=row.attempts + 1, heartbeat_at=None
            )
        return True

    def give_up(self, row: Stale, *, now: datetime) -> bool:
        attempts = row.attempts + 1
        if not self._held(row).update(
            full_render_status="error",
            updated_at=now,
            full_render_error=_lost_message("Render", attempts),
        ):
            return False
        FullRender.objects.filter(pk=row.pk).update(attempts=attempts)
        render_minutes_refund(clip_id=row.pk)
        full_render_event_emit(clip_id=row.pk, type="render.failed")
        return True

    def waiting(self, *, before: datetime) -> list:
        return list(
            Clip.objects.filter(full_render_status="queued", updated_at__lt=before).values_list(
                "id", flat=True
            )
        )

    def touch(self, pk, *, now: datetime) -> None:
        Clip.objects.filter(pk=pk, full_render_status="queued").update(updated_at=now)


class _RowLifecycle:
    """queued → processing → done | failed, for work whose row holds its own status,
    heartbeat and attempts (exports, re-renders)."""

    name: str
    model: type[models.Model]
    queued: str
    processing: str
    failed: str

    def stale(self, *, before: datetime, pk=None) -> list[Stale]:
        """Rows in progress whose heartbeat is older than `before` (only `pk`'s, if given)."""
        dead = self.model.objects.filter(status=self.processing).filter(
            models.Q(heartbeat_at__lt=before)
            | models.Q(heartbeat_at__isnull=True, updated_at__lt=before)
        )
        if pk is not None:
            dead = dead.filter(pk=pk)
        return [
            Stale(row.pk, row.attempts, row.heartbeat_at)
            for row in dead.only("pk", "attempts", "heartbeat_at")
        ]

    def _held(self, row: Stale):
        return self.model.objects.filter(
            pk=row.pk, status=self.processing, attempts=row.attempts, heartbeat_at=row.token
        )

    def release(self, row: Stale, *, now: datetime) -> bool:
        return bool(
            self._held(row).update(
                status=self.queued, attempts=row.attempts + 1, heartbeat_at=None, updated_at=now
            )
        )

    def give_up(self, row: Stale, *, now: datetime) -> bool:
        attempts = row.attempts + 1
        failed = self._held(row).update(
            status=self.failed,
            attempts=attempts,
            error=_lost_message(self.name.capitalize(), attempts),
            updated_at=now,
        )
        if failed:
            self.failed_event(row.pk)
        return bool(failed)

    def failed_event(self, pk) -> None:
        pass

    def waiting(self, *, before: datetime) -> list:
        return list(
            self.model.objects.filter(status=self.queued, updated_at__lt=before).values_list(
                "pk", flat=True
            )
        )

    def touch(self, pk, *, now: datetime) -> None:
        self.model.objects.filter(pk=pk, status=self.queued).update(updated_at=now)


class ExportLifecycle(_RowLifecycle):
    """An export: queued → processing → completed | failed."""

    name = "export"
    model = Export
    queued, processing, failed = (
        Export.Status.QUEUED,
        Export.Status.PROCESSING,
        Export.Status.FAILED,
    )

    def failed_event(self, pk) -> None:
        export_event_emit(export_id=pk, type="export.failed")


class RerenderLifecycle(_RowLifecycle):
    """A re-render after a transcript correction: queued → processing → done | error."""

    name = "re-render"
    model = Rerender
    queued, processing, failed = (
        Rerender.Status.QUEUED,
        Rerender.Status.PROCESSING,
        Rerender.Status.ERROR,
    )


CLIPS = ClipLifecycle()
JOBS = JobLifecycle()
FULL_RENDERS = FullRenderLifecycle()
EXPORTS = ExportLifecycle()
RERENDERS = RerenderLifecycle()
