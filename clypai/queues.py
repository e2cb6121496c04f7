"""Enqueueing work: on RQ when Redis is configured, in-process otherwise (background
threads of this process, `clypai.background`; or synchronously with
CLYPAI_JOBS_THREADS=0, as `manage.py clip` runs).

Jobs are enqueued only once the transaction that created their rows commits, so a
worker never looks for a row that is not there yet, and a rolled-back request queues
nothing. The row's own id is the RQ job id, so a second enqueue of the same work is
recognised (and the sweep can re-enqueue lost work without duplicating it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from clypai import background

logger = logging.getLogger(__name__)

# By resource: `transcribe` is served by GPU workers where there are any (and by CPU
# workers otherwise); the others by CPU workers. settings.RQ_QUEUES defines the same.
QUEUES = ("transcribe", "analysis", "render", "webhooks", "default")


def get_queue(name: str):
    import django_rq

    return django_rq.get_queue(name)


def enqueue_now(queue: str, func: Callable, *args, job_id: str | None = None, **kwargs):
    """Enqueue `func(*args)` at once (outside any transaction concerns). `func` is the
    task itself, never its dotted name. Inline mode hands it to this process's background
    threads, or runs it here when there are none (CLYPAI_JOBS_THREADS=0)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if not callable(func):
        raise TypeError(f"enqueue the task itself, not {func!r}")
    if settings.CLYPAI_JOBS_INLINE:
        if background.uses_threads():
            background.runner(queue).submit(job_id, func, *args, **kwargs)
            return None
        return func(*args, **kwargs)
    rq_queue = get_queue(queue)
    if job_id is not None:
        existing = rq_queue.fetch_job(job_id)
        if existing is not None:
            state = existing.get_status(refresh=True)
            if getattr(state, "value", state) in ("queued", "started", "deferred", "scheduled"):
                return existing  # already waiting or running: don't double it
    return rq_queue.enqueue(func, *args, job_id=job_id, **kwargs)


LIVE_STATES = ("queued", "started", "scheduled", "deferred")


def is_live(queue: str, job_id: str) -> bool:
    """Whether the task `job_id` is waiting or running: in RQ, or in this process's
    background threads (inline mode). The sweep queues again only what is not."""
    if settings.CLYPAI_JOBS_INLINE:
        held = background.running(queue)
        return held is not None and held.holds(job_id)
    job = get_queue(queue).fetch_job(job_id)
    if job is None:
        return False
    state = job.get_status(refresh=True)
    return getattr(state, "value", state) in LIVE_STATES


def enqueue_on_commit(
    queue: str, func: Callable, *args, job_id: str | None = None, **kwargs
) -> None:
    """Enqueue `func(*args)` on `queue` once the current transaction commits."""

    def _enqueue():
        try:
            enqueue_now(queue, func, *args, job_id=job_id, **kwargs)
        except Exception:
            # The row stays in its queued state; the sweep will enqueue it again.
            logger.exception("could not enqueue %s %s; the sweep will retry", func, job_id)

    transaction.on_commit(_enqueue, robust=False)


def enqueue_later(
    queue: str, when: float | datetime, func: Callable, *args, job_id: str | None = None
) -> None:
    """Enqueue `func(*args)` after `when` seconds (or at the datetime `when`) on RQ's
    scheduler (workers run --with-scheduler). Inline mode schedules nothing: the row
    stays in its waiting state and the sweep queues it again once it is due."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if settings.CLYPAI_JOBS_INLINE:
        return
    rq_queue = get_queue(queue)
    if isinstance(when, datetime):
        rq_queue.enqueue_at(when, func, *args, job_id=job_id)
    else:
        rq_queue.enqueue_in(timedelta(seconds=when), func, *args, job_id=job_id)
