"""One sweep over every kind of durable work: PostgreSQL is the truth, Redis only carries.

For each kind (clips, jobs, full renders, re-renders after a transcript correction,
exports; `clips.states` says how each lives):
- in progress with a heartbeat older than CLYPAI_STALE_SECONDS: its worker died
  (SIGKILL, machine loss). It goes back to waiting and is queued again, up to
  CLYPAI_MAX_ATTEMPTS times, then fails with the reason;
- waiting for longer than CLYPAI_STALE_SECONDS with no live RQ job: the enqueue was
  lost between commit and Redis, or Redis lost the job. It is queued again. A clip or
  job waiting between its tasks (a wait stage: for its transcribe task, or for its
  analysis to go on after it) is waiting too: its task is looked for on either queue,
  and when neither holds it, its analysis is queued again, which goes on from what
  storage and PostgreSQL hold.
Webhook deliveries whose job was lost are queued again too (`webhooks.services`).
Every change is a conditional update, so two sweeps at once do not double any work.

`sweep_pass` is one pass with the housekeeping (Idempotency-Keys, old webhook events and
presigned uploads never taken in purged; the work dir's caches evicted by age and size). Recovery must not hang on one process that can stop: `sweep_loop` (what
`manage.py sweep --loop` runs, started by `make run` and compose) survives any error of
a pass (a database or Redis outage) and tries again at the next one; `sweep_task`, the
RQ form, schedules its next run whatever its pass did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone
from rq.registry import StartedJobRegistry

from clypai import metrics
from clypai.api.limits import idempotency_purge
from clypai.lib.storage import storage_purge
from clypai.queues import enqueue_later, enqueue_now, get_queue, is_live
from webhooks.services import deliveries_sweep, events_purge

from . import states, tasks
from .analysis import work_files_evict
from .models import INCOMING_UPLOADS

logger = logging.getLogger(__name__)

SWEEP_TASK_ID = "clypai-sweep"


@dataclass(frozen=True)
class Recovery:
    """How one kind of durable work is found (its lifecycle) and queued again."""

    lifecycle: (
        states.ClipLifecycle
        | states.JobLifecycle
        | states.FullRenderLifecycle
        | states.ExportLifecycle
        | states.RerenderLifecycle
    )
    queue: str
    task: Callable[[str], None]
    rq_id: Callable[[str], str] = str
    # The other task the work may be waiting for: (its queue, its RQ id).
    also: tuple[str, Callable[[str], str]] | None = None

    def entries(self, key: str) -> list[tuple[str, str]]:
        """Every (queue, RQ id) under which this work may sit in Redis."""
        found = [(self.queue, self.rq_id(key))]
        if self.also is not None:
            found.append((self.also[0], self.also[1](key)))
        return found


_TRANSCRIBE = ("transcribe", tasks.transcribe_rq_id)


RECOVERIES = (
    Recovery(states.CLIPS, "analysis", tasks.clip_process_task, also=_TRANSCRIBE),
    Recovery(states.JOBS, "analysis", tasks.job_process_task, also=_TRANSCRIBE),
    Recovery(states.FULL_RENDERS, "render", tasks.full_render_task, tasks.full_render_rq_id),
    Recovery(states.RERENDERS, "render", tasks.clip_rerender_task, tasks.rerender_rq_id),
    Recovery(states.EXPORTS, "render", tasks.export_process_task),
)


@dataclass
class SweepReport:
    requeued_pending: list[str] = field(default_factory=list)
    requeued_stale: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _requeue_lost(recovery: Recovery, row: states.Stale, *, now: datetime, report: SweepReport):
    """Work whose worker is gone goes back to waiting and is queued again, or fails for
    good after CLYPAI_MAX_ATTEMPTS lost workers."""
    life = recovery.lifecycle
    key = str(row.pk)
    if row.attempts + 1 >= settings.CLYPAI_MAX_ATTEMPTS:
        if life.give_up(row, now=now):
            metrics.failure(stage=life.name, code="worker_lost")
            report.failed.append(key)
        return
    if not life.release(row, now=now):
        return
    rq_id = recovery.rq_id(key)
    if not settings.CLYPAI_JOBS_INLINE:
        # The dead worker's entry would otherwise block or later fail this id.
        for name, entry_id in recovery.entries(key):
            queue = get_queue(name)
            old = queue.fetch_job(entry_id)
            if old is not None:
                StartedJobRegistry(queue=queue).remove_executions(old)
                old.delete(remove_from_queue=True)
    enqueue_now(recovery.queue, recovery.task, key, job_id=rq_id)
    report.requeued_stale.append(key)


def _recover(recovery: Recovery, *, now: datetime, before: datetime, report: SweepReport) -> None:
    for row in recovery.lifecycle.stale(before=before):
        _requeue_lost(recovery, row, now=now, report=report)
    _requeue_waiting(recovery, now=now, before=before, report=report)


def _requeue_waiting(
    recovery: Recovery, *, now: datetime, before: datetime, report: SweepReport
) -> None:
    life = recovery.lifecycle
    for pk in life.waiting(before=before):
        key = str(pk)
        rq_id = recovery.rq_id(key)
        if any(is_live(name, entry_id) for name, entry_id in recovery.entries(key)):
            continue  # waiting its turn (or a retry's backoff): not lost
        life.touch(pk, now=now)
        enqueue_now(recovery.queue, recovery.task, key, job_id=rq_id)
        report.requeued_pending.append(key)


def work_hand_back(task_name: str, args) -> bool:
    """A worker that stops before its task finished (SIGTERM, its grace period over; see
    `clypai.observability.Worker`) hands the task's work back at once, as the sweep would
    once its heartbeat went stale: back to waiting (one more lost worker) and queued
    again now. `task_name` and `args` are the RQ task's. False when the task is not one
    of these kinds or its row is no longer in progress (it finished after all)."""
    for recovery in RECOVERIES:
        if task_name == f"{recovery.task.__module__}.{recovery.task.__qualname__}":
            break
    else:
        return False
    if not args:
        return False
    now = timezone.now()
    report = SweepReport()
    # Any heartbeat is old enough: the worker says itself that it stopped.
    for row in recovery.lifecycle.stale(before=now + timedelta(days=1), pk=str(args[0])):
        _requeue_lost(recovery, row, now=now, report=report)
    return bool(report.requeued_stale or report.failed)


def waiting_requeue(*, now: datetime | None = None) -> SweepReport:
    """Queue again the work waiting for a task, whatever its age, unless a queue holds
    it. What a process running jobs in its own threads (the embedded default,
    `clypai.background`) does as its pool starts: the queue in memory that held this
    work ended with the previous process, so work it handed back on stopping, or had
    queued, starts again now, not after CLYPAI_STALE_SECONDS."""
    now = now or timezone.now()
    report = SweepReport()
    for recovery in RECOVERIES:
        _requeue_waiting(recovery, now=now, before=now, report=report)
    return report


def clips_sweep(*, now: datetime | None = None) -> SweepReport:
    """Find work whose worker or queue entry was lost and queue it again (see above)."""
    now = now or timezone.now()
    before = now - timedelta(seconds=settings.CLYPAI_STALE_SECONDS)
    report = SweepReport()
    for recovery in RECOVERIES:
        _recover(recovery, now=now, before=before, report=report)
    deliveries_sweep(now=now)  # webhook deliveries whose RQ job was lost
    return report


def incoming_uploads_purge(*, now: datetime | None = None) -> int:
    """Delete presigned uploads' objects that no job took in within
    CLYPAI_INCOMING_UPLOAD_TTL_SECONDS of their last PUT; how many."""
    now = now or timezone.now()
    before = now - timedelta(seconds=settings.CLYPAI_INCOMING_UPLOAD_TTL_SECONDS)
    return len(storage_purge(INCOMING_UPLOADS, before=before))


def sweep_pass() -> dict:
    """One sweep pass with its housekeeping: what it did, as the command prints it."""
    report = clips_sweep()
    return {
        "incomingUploadsPurged": incoming_uploads_purge(),
        "workFilesEvicted": work_files_evict()["files"],
        "requeuedPending": report.requeued_pending,
        "requeuedStale": report.requeued_stale,
        "failed": report.failed,
        "idempotencyKeysPurged": idempotency_purge(),
        "webhookEventsPurged": events_purge(),
    }


def sweep_task(reschedule: bool = True) -> dict:
    """One sweep pass with its housekeeping, on RQ; then it schedules the next one
    (workers run --with-scheduler), also when the pass failed, so one error does not
    end the chain."""
    try:
        return sweep_pass()
    finally:
        if reschedule:
            try:
                enqueue_later(
                    "default",
                    settings.CLYPAI_SWEEP_INTERVAL_SECONDS,
                    sweep_task,
                    job_id=SWEEP_TASK_ID,
                )
            except Exception:  # Redis is down: `manage.py sweep --loop` still runs
                logger.exception("could not schedule the next sweep")


def sweep_loop(
    *,
    interval: float,
    passes: int | None = None,
    on_pass: Callable[[dict], None] = lambda report: None,
) -> None:
    """Sweep every `interval` seconds, `passes` times (None: for ever). A pass that
    fails (database or Redis down, a bug) is logged and the next one runs as usual,
    on fresh connections: recovery must outlive the faults it recovers from."""
    done = 0
    while passes is None or done < passes:
        started = time.monotonic()
        try:
            on_pass(sweep_pass())
        except Exception:
            logger.exception("sweep pass failed; trying again in %.0f s", interval)
            for conn in connections.all(initialized_only=True):
                conn.close()  # a broken connection is reopened by the next query
        done += 1
        if passes is None or done < passes:
            time.sleep(max(interval - (time.monotonic() - started), 0.0))
