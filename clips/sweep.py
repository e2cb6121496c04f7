"""One sweep over every kind of durable work: PostgreSQL is the truth, Redis only carries.

For each kind (clips, jobs, full renders; `clips.states` says how each lives):
- in progress with a heartbeat older than CLYPAI_STALE_SECONDS: its worker died
  (SIGKILL, machine loss). It goes back to waiting and is queued again, up to
  CLYPAI_MAX_ATTEMPTS times, then fails with the reason;
- waiting for longer than CLYPAI_STALE_SECONDS with no live RQ job: the enqueue was
  lost between commit and Redis, or Redis lost the job. It is queued again.
Webhook deliveries whose job was lost are queued again too (`webhooks.services`).
Every change is a conditional update, so two sweeps at once do not double any work.

`sweep_task` runs one pass with the housekeeping (Idempotency-Keys and old webhook
events purged) and schedules the next one; `manage.py sweep` runs it or loops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rq.registry import StartedJobRegistry

from clypai.api.limits import idempotency_purge
from clypai.queues import enqueue_later, enqueue_now, get_queue, is_live
from webhooks.services import deliveries_sweep, events_purge

from . import states, tasks

logger = logging.getLogger(__name__)

SWEEP_TASK_ID = "clypai-sweep"


@dataclass(frozen=True)
class Recovery:
    """How one kind of durable work is found (its lifecycle) and queued again."""

    lifecycle: states.ClipLifecycle | states.JobLifecycle | states.FullRenderLifecycle
    queue: str
    task: Callable[[str], None]
    rq_id: Callable[[str], str] = str


RECOVERIES = (
    Recovery(states.CLIPS, "analysis", tasks.clip_process_task),
    Recovery(states.JOBS, "analysis", tasks.job_process_task),
    Recovery(states.FULL_RENDERS, "render", tasks.full_render_task, tasks.full_render_rq_id),
)


@dataclass
class SweepReport:
    requeued_pending: list[str] = field(default_factory=list)
    requeued_stale: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _recover(recovery: Recovery, *, now: datetime, before: datetime, report: SweepReport) -> None:
    life = recovery.lifecycle
    queue = None if settings.CLYPAI_JOBS_INLINE else get_queue(recovery.queue)
    for row in life.stale(before=before):
        key = str(row.pk)
        if row.attempts + 1 >= settings.CLYPAI_MAX_ATTEMPTS:
            if life.give_up(row, now=now):
                report.failed.append(key)
            continue
        if not life.release(row, now=now):
            continue
        rq_id = recovery.rq_id(key)
        if queue is not None:
            # The dead worker's entry would otherwise block or later fail this id.
            old = queue.fetch_job(rq_id)
            if old is not None:
                StartedJobRegistry(queue=queue).remove_executions(old)
                old.delete(remove_from_queue=True)
        enqueue_now(recovery.queue, recovery.task, key, job_id=rq_id)
        report.requeued_stale.append(key)

    for pk in life.waiting(before=before):
        key = str(pk)
        rq_id = recovery.rq_id(key)
        if is_live(recovery.queue, rq_id):
            continue  # waiting its turn (or a retry's backoff): not lost
        life.touch(pk, now=now)
        enqueue_now(recovery.queue, recovery.task, key, job_id=rq_id)
        report.requeued_pending.append(key)


def clips_sweep(*, now: datetime | None = None) -> SweepReport:
    """Find work whose worker or queue entry was lost and queue it again (see above)."""
    now = now or timezone.now()
    before = now - timedelta(seconds=settings.CLYPAI_STALE_SECONDS)
    report = SweepReport()
    for recovery in RECOVERIES:
        _recover(recovery, now=now, before=before, report=report)
    deliveries_sweep(now=now)  # webhook deliveries whose RQ job was lost
    return report


def sweep_task(reschedule: bool = True) -> dict:
    """One sweep pass with its housekeeping; then it schedules the next one (workers run
    --with-scheduler)."""
    report = clips_sweep()
    purged = idempotency_purge()
    events_purged = events_purge()
    if reschedule:
        enqueue_later(
            "default", settings.CLYPAI_SWEEP_INTERVAL_SECONDS, sweep_task, job_id=SWEEP_TASK_ID
        )
    return {
        "requeuedPending": report.requeued_pending,
        "requeuedStale": report.requeued_stale,
        "failed": report.failed,
        "idempotencyKeysPurged": purged,
        "webhookEventsPurged": events_purged,
    }
