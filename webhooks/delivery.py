"""Delivery of one webhook attempt: claim it, POST the event signed, record the answer.

An attempt claims its delivery with a conditional update (two workers never make the
same attempt), POSTs the body signed as Standard Webhooks says through the SSRF guard,
and records the answer. A failure is retried on CLYPAI_WEBHOOK_RETRY_SCHEDULE with
jitter: `delivery_attempt` says when (`AttemptMade.retry_at`) and its task schedules it
(`next_attempt_at` in PostgreSQL is the truth, and the sweep enqueues again what Redis
lost); 410 disables the endpoint at once, and so do CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS
of failures without a success. A test event counts for neither, and its success does
not end a streak.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from clypai import metrics
from clypai.api.responses import iso
from clypai.lib.errors import StageError
from clypai.lib.safe_http import post_checked

from .models import TEST_EVENT, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from .signing import signed_headers

logger = logging.getLogger(__name__)

USER_AGENT = "ClypAI-Webhooks/1.0"
ACTIVE = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)
JITTER = 0.1  # each retry delay is drawn within ±10% of the schedule's
EXCERPT_BYTES = 1024
# An attempt holds its delivery for its timeout and this margin; past it, its worker is
# presumed lost and the sweep lets another attempt be made.
LEASE_MARGIN_SECONDS = 30.0
# RQ schedules in whole seconds, so a retry may start up to a second early.
EARLY_SECONDS = 1.0


def secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one, and the previous one
    while its overlap lasts."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(endpoint.previous_secret)
    return found


def endpoint_disable(*, endpoint_id: str, reason: str) -> bool:
    """Disable an enabled endpoint with its reason; its waiting deliveries fail (a
    redelivery sends them again once it is enabled). Returns whether it was enabled."""
    now = timezone.now()
    with transaction.atomic():
        disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
            enabled=False, disabled_reason=reason[:300], disabled_at=now, updated_at=now
        )
        if disabled:
            waiting = WebhookDelivery.objects.filter(
                endpoint_id=endpoint_id, status__in=ACTIVE
            ).filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            failed = {"status": WebhookDelivery.Status.FAILED, "next_attempt_at": None}
            waiting.filter(attempts=0).update(
                **failed, last_error="Not sent: the endpoint was disabled", updated_at=now
            )
            waiting.update(**failed, updated_at=now)  # the others keep their last error
    if disabled:
        logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return bool(disabled)


@dataclass(frozen=True)
class _Outcome:
    code: int | None
    duration_ms: int
    error: str
    excerpt: str
    retry_after: float | None


@dataclass(frozen=True)
class AttemptMade:
    """An attempt that was made, and when the next one is due (None: no retry)."""

    attempt: WebhookAttempt
    retry_at: datetime | None


def delivery_attempt(*, delivery_id: str) -> AttemptMade | None:
    """Make the next attempt of a due delivery; the attempt made, with when the next one
    is due, or None when the delivery is not due, already being attempted, finished, or
    gone.

    Side effects: one signed POST through the SSRF guard (CLYPAI_URL_ALLOWLIST), the
    attempt's row, the delivery's new state (with `next_attempt_at`), the endpoint's
    failure streak (and its disabling). The caller schedules the retry.
    """
    now = timezone.now()
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event")
        .filter(pk=delivery_id, status__in=ACTIVE)
        .first()
    )
    if delivery is None:
        return None
    if not delivery.endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=ACTIVE).update(
            status=WebhookDelivery.Status.FAILED,
            next_attempt_at=None,
            last_error="Not sent: the endpoint is disabled",
            updated_at=now,
        )
        return None
    lease = timedelta(seconds=settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
    with transaction.atomic():
        # Only plain columns of this row in the condition: PostgreSQL re-checks them
        # after waiting for a concurrent claim's lock, so exactly one claim wins.
        claimed = (
            WebhookDelivery.objects.filter(
                pk=delivery_id,
                status__in=ACTIVE,
                next_attempt_at__lte=now + timedelta(seconds=EARLY_SECONDS),
            )
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .update(attempts=F("attempts") + 1, locked_until=now + lease, updated_at=now)
        )
        if not claimed:
            return None
        delivery.refresh_from_db(fields=["attempts", "round_start"])
        WebhookAttempt.objects.filter(delivery_id=delivery_id, finished_at__isnull=True).update(
            finished_at=now, error="No answer recorded: the worker making it was lost"
        )
        attempt = WebhookAttempt.objects.create(
            delivery_id=delivery_id, number=delivery.attempts, started_at=now
        )
    outcome = _send(delivery.endpoint, delivery.event, now)
    return AttemptMade(attempt, _attempt_finished(delivery, attempt, outcome))


def _send(endpoint: WebhookEndpoint, event: WebhookEvent, now: datetime) -> _Outcome:
    body = event.body.encode()
    timestamp = int(time.time())
    headers = {
        "User-Agent": USER_AGENT,
        **signed_headers(
            secrets_in_use=secrets_in_use(endpoint, now),
            msg_id=event.pk,
            timestamp=timestamp,
            body=body,
        ),
    }
    started = time.monotonic()
    timeout = attempt_timeout(event)
    try:
        response = post_checked(
            endpoint.url,
            body,
            headers,
            timeout=timeout,
            connect_timeout=min(settings.CLYPAI_WEBHOOK_CONNECT_TIMEOUT_SECONDS, timeout),
            allowlist=settings.CLYPAI_URL_ALLOWLIST,
            max_body=EXCERPT_BYTES,
        )
    except StageError as err:
        reason = (err.details or {}).get("reason") or err.message
        return _Outcome(None, _ms_since(started), reason, "", None)
    except Exception as exc:  # a bug must not leave the delivery locked
        logger.exception("webhook attempt to %s failed unexpectedly", endpoint.pk)
        return _Outcome(
            None, _ms_since(started), f"internal error ({type(exc).__name__})", "", None
        )
    code = response.status
    error = ""
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        error = f"HTTP {code}: redirects are not followed" + (
            f" (to {location})" if location else ""
        )
    elif not 200 <= code < 300:
        error = f"HTTP {code}"
    excerpt = response.body.decode("utf-8", "replace").replace("\x00", "")
    retry_after = _retry_after(response.headers.get("retry-after"))
    return _Outcome(code, _ms_since(started), error, excerpt, retry_after)


def attempt_timeout(event: WebhookEvent) -> float:
    """The seconds an attempt of `event` may hold its worker: a test event's is short
    (CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS), any other's CLYPAI_WEBHOOK_TIMEOUT_SECONDS."""
    if event.type == TEST_EVENT:
        return min(
            settings.CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS, settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS
        )
    return settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After asks for (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - timezone.now()).total_seconds(), 0.0)


def retry_delay(attempts_in_round: int, retry_after: float | None = None) -> float | None:
    """Seconds before the next attempt after `attempts_in_round` failed ones, with
    jitter and at least a (capped) Retry-After; None when the schedule is over."""
    schedule = settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE
    if attempts_in_round > len(schedule):
        return None
    delay = schedule[attempts_in_round - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.CLYPAI_WEBHOOK_RETRY_AFTER_MAX_SECONDS))
    return delay


def _attempt_finished(
    delivery: WebhookDelivery, attempt: WebhookAttempt, out: _Outcome
) -> datetime | None:
    """Record the answer; when the next attempt is due (None: no retry)."""
    now = timezone.now()
    error = out.error[:500]
    WebhookAttempt.objects.filter(pk=attempt.pk).update(
        finished_at=now,
        response_code=out.code,
        duration_ms=out.duration_ms,
        error=error,
        response_body=out.excerpt,
    )
    fields = {
        "locked_until": None,
        "last_response_code": out.code,
        "last_duration_ms": out.duration_ms,
        "last_error": error,
        "updated_at": now,
    }
    succeeded = out.code is not None and 200 <= out.code < 300
    next_at = None
    if succeeded:
        outcome = "succeeded"
        fields.update(
            status=WebhookDelivery.Status.SUCCEEDED, next_attempt_at=None, succeeded_at=now
        )
    elif out.code == 410:
        outcome = "gone"
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    elif delivery.event.type == TEST_EVENT:
        # A test event is one attempt: it tells whether the endpoint answers now.
        outcome = "failed"
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    else:
        delay = retry_delay(attempt.number - delivery.round_start, out.retry_after)
        if delay is None:
            outcome = "failed"
            fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        else:
            outcome = "retrying"
            next_at = now + timedelta(seconds=delay)
            fields.update(status=WebhookDelivery.Status.RETRYING, next_attempt_at=next_at)
    metrics.webhook_delivery(outcome)
    # Conditional on this attempt still being the latest: when a redelivery, or a sweep
    # that presumed this worker lost, has moved on, the newer attempt's state wins.
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, attempts=attempt.number).update(
        **fields
    )
    endpoint_id = delivery.endpoint_id
    if delivery.event.type == TEST_EVENT:
        # A test event is recorded and shown, but says nothing of the real deliveries'
        # streak: a failing test (a URL being set up) must not bring the endpoint closer
        # to being disabled, nor a passing one wipe out the real failures. Never retried.
        return None
    if succeeded:
        WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=False).update(
            failing_since=None
        )
    elif out.code == 410:  # the receiver says it is gone, whichever attempt hears it
        endpoint_disable(
            endpoint_id=endpoint_id, reason=f"The endpoint answered 410 Gone ({iso(now)})"
        )
    elif updated and _endpoint_failing(endpoint_id, now, error):
        next_at = None  # disabling it failed this delivery too
    return next_at if updated else None


def _endpoint_failing(endpoint_id: str, now: datetime, error: str) -> bool:
    """Count a failure towards disabling: the streak starts at the first failure after a
    success; one longer than CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS disables the endpoint.
    Returns whether it was disabled now."""
    WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(
        failing_since=now
    )
    days = settings.CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS
    since = (
        WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True)
        .values_list("failing_since", flat=True)
        .first()
    )
    if since is None or since > now - timedelta(days=days):
        return False
    return endpoint_disable(
        endpoint_id=endpoint_id,
        reason=f"Every delivery failed for {days:g} days, since {iso(since)} "
        f"(last error: {error or 'unknown'})",
    )
