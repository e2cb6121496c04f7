"""RQ entry points for webhooks, and how an attempt is queued.

One RQ job per attempt (`<delivery id>-<number>`), so a retry never collides with the
job scheduling it.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from django.conf import settings

from clypai.queues import enqueue_later, enqueue_now, enqueue_on_commit, get_queue

from .delivery import delivery_attempt

logger = logging.getLogger(__name__)


def delivery_attempt_task(delivery_id: str) -> None:
    """Make the next attempt of one delivery, and schedule the retry it asks for."""
    made = delivery_attempt(delivery_id=delivery_id)
    if made is not None and made.retry_at is not None:
        delivery_enqueue(delivery_id, number=made.attempt.number + 1, at=made.retry_at)


def delivery_rq_id(delivery_id: str, number: int) -> str:
    """One RQ job per attempt, so a retry never collides with the job scheduling it."""
    return f"{delivery_id}-{number}"


def delivery_enqueue(delivery_id: str, *, number: int, at: datetime | None = None) -> None:
    """Queue attempt `number`: on commit when due now, else at `at` on RQ's scheduler
    (inline mode: the sweep makes it when it is due)."""
    if at is None:
        enqueue_on_commit(
            "webhooks",
            delivery_attempt_task,
            delivery_id,
            job_id=delivery_rq_id(delivery_id, number),
        )
        return
    when = datetime.fromtimestamp(math.ceil(at.timestamp()), tz=UTC)
    try:
        enqueue_later(
            "webhooks",
            when,
            delivery_attempt_task,
            delivery_id,
            job_id=delivery_rq_id(delivery_id, number),
        )
    except Exception:
        logger.exception("could not schedule %s; the sweep will", delivery_id)


def delivery_enqueue_replacing(delivery_id: str, number: int) -> None:
    """Enqueue attempt `number` now, dropping a retry of the same number still waiting
    on the scheduler (it would otherwise stand for this one until its time)."""
    job_id = delivery_rq_id(delivery_id, number)
    try:
        if not settings.CLYPAI_JOBS_INLINE:
            waiting = get_queue("webhooks").fetch_job(job_id)
            if waiting is not None:
                state = waiting.get_status(refresh=True)
                if getattr(state, "value", state) in ("scheduled", "queued", "deferred"):
                    waiting.delete()
        enqueue_now("webhooks", delivery_attempt_task, delivery_id, job_id=job_id)
    except Exception:
        logger.exception("could not enqueue %s; the sweep will", delivery_id)
