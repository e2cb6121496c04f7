"""Writes for webhooks: endpoints, events, and the delivery of each event, at least once.

An event is stored with its exact JSON body and one delivery per enabled endpoint that
subscribes to it; each delivery is enqueued on the "webhooks" queue once the
transaction commits. An attempt claims its delivery with a conditional update (two
workers never make the same attempt), POSTs the body signed as Standard Webhooks says,
and records the answer. A failure is retried on CLYPAI_WEBHOOK_RETRY_SCHEDULE with
jitter (RQ `enqueue_at`; `next_attempt_at` in PostgreSQL is the truth, and
`deliveries_sweep` enqueues again what Redis lost); 410 disables the endpoint at once,
and so do CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS of failures without a success.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from clypai.api.errors import Conflict, InvalidRequest
from clypai.api.responses import iso
from clypai.queues import enqueue_now, enqueue_on_commit, get_queue
from projects.models import Team

from . import events as event_data
from .models import (
    ALL_EVENTS,
    EVENT_TYPES,
    TEST_EVENT,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from .signing import secret_generate, signed_headers

logger = logging.getLogger(__name__)

ATTEMPT_JOB = "webhooks.jobs.delivery_attempt_job"
USER_AGENT = "ClypAI-Webhooks/1.0"
ACTIVE = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)
JITTER = 0.1  # each retry delay is drawn within ±10% of the schedule's
EXCERPT_BYTES = 1024
# An attempt holds its delivery for its timeout and this margin; past it, its worker is
# presumed lost and the sweep lets another attempt be made.
LEASE_MARGIN_SECONDS = 30.0
# RQ schedules in whole seconds, so a retry may start up to a second early.
EARLY_SECONDS = 1.0
_LIVE_RQ_STATES = ("queued", "started", "scheduled", "deferred")


# Endpoints ---------------------------------------------------------------------------


def webhook_url_check(url: str) -> None:
    """Refuse (400 on `url`) a URL the delivery guard would refuse: not http(s), with
    credentials, or naming or resolving to an address that is not public and not in
    CLYPAI_URL_ALLOWLIST. Each attempt checks again."""
    from clips.pipeline import StageError
    from clips.pipeline.fetch import check_url

    try:
        check_url(url, allowlist=settings.CLYPAI_URL_ALLOWLIST)
    except StageError as err:
        reason = (err.details or {}).get("reason") or err.message
        raise InvalidRequest(f"Webhook URL is not allowed: {reason}", field="url") from err


def _events_check(events: list[str]) -> list[str]:
    if not events:
        raise InvalidRequest("Subscribe to at least one event", field="events")
    unknown = [e for e in events if e != ALL_EVENTS and e not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(f'Unknown event type "{unknown[0]}"', field="events")
    return list(dict.fromkeys(events))  # in order, without repeats


def endpoint_create(
    *, team: Team, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    """A new enabled endpoint with a new secret (shown once by the API)."""
    webhook_url_check(url)
    return WebhookEndpoint.objects.create(
        team=team,
        url=url,
        events=_events_check(events),
        description=description or "",
        secret=secret_generate(),
    )


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change `url`, `events`, `description` or `enabled`. `enabled=True` re-enables a
    disabled endpoint (its failure streak starts anew); `enabled=False` disables it."""
    now = timezone.now()
    fields: dict = {}
    if "url" in changes:
        webhook_url_check(changes["url"])
        fields["url"] = changes["url"]
    if "events" in changes:
        fields["events"] = _events_check(changes["events"])
    if "description" in changes:
        fields["description"] = changes["description"] or ""
    with transaction.atomic():
        if fields:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**fields, updated_at=now)
        if changes.get("enabled") is True:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=False).update(
                enabled=True,
                disabled_reason="",
                disabled_at=None,
                failing_since=None,
                updated_at=now,
            )
        elif changes.get("enabled") is False:
            endpoint_disable(endpoint_id=endpoint.pk, reason="Disabled through the API")
    endpoint.refresh_from_db()
    return endpoint


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


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries; attempts in flight finish unrecorded."""
    endpoint.delete()


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the current one keeps signing beside it (a second signature) for
    CLYPAI_WEBHOOK_SECRET_OVERLAP_SECONDS, so receivers can switch without a gap."""
    now = timezone.now()
    with transaction.atomic():
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        current.previous_secret = current.secret
        current.previous_secret_expires_at = now + timedelta(
            seconds=settings.CLYPAI_WEBHOOK_SECRET_OVERLAP_SECONDS
        )
        current.secret = secret_generate()
        current.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    return current


def secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one, and the previous one
    while its overlap lasts."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(endpoint.previous_secret)
    return found


def endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `webhook.test` event to this endpoint alone; its delivery, queued."""
    if not endpoint.enabled:
        raise Conflict(
            "The endpoint is disabled: enable it (PATCH enabled: true) first",
            code="webhook_disabled",
            details={"disabledReason": endpoint.disabled_reason},
        )
    data = {"endpointId": endpoint.pk, "message": "A test event from ClypAI"}
    event = event_emit(team=endpoint.team, type=TEST_EVENT, data=data, endpoints=[endpoint])
    return WebhookDelivery.objects.get(event=event, endpoint=endpoint)


# Events ------------------------------------------------------------------------------


def event_emit(
    *, team: Team | str, type: str, data: dict, endpoints: list[WebhookEndpoint] | None = None
) -> WebhookEvent | None:
    """Record an event and queue one delivery per enabled endpoint of `team` (a team or
    its id) subscribed to `type`, or to the `endpoints` given; None when nobody listens.

    The body is `{"id", "type", "createdAt", "data"}`; the event's id is the `webhook-id`
    of every attempt. Enqueued on commit: a rolled-back transaction sends nothing.
    """
    if endpoints is None:
        endpoints = subscribers(team=team, type=type)
    if not endpoints:
        return None
    now = timezone.now()
    with transaction.atomic():
        event = WebhookEvent(team_id=endpoints[0].team_id, type=type, body="")
        event.body = json.dumps(
            {"id": event.pk, "type": type, "createdAt": iso(now), "data": data},
            separators=(",", ":"),
        )
        event.save()
        for endpoint in endpoints:
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint, event=event, next_attempt_at=now
            )
            _enqueue(delivery.pk, number=1)
    return event


def subscribers(*, team: Team | str, type: str) -> list[WebhookEndpoint]:
    """The enabled endpoints of `team` (a team or its id) that want `type` events."""
    team_id = team.pk if isinstance(team, Team) else team
    found = WebhookEndpoint.objects.filter(team_id=team_id, enabled=True)
    return [endpoint for endpoint in found if endpoint.subscribes_to(type)]


def _emit_safely(type: str, load, build, team_of=lambda obj: obj.team_id) -> None:
    """Emit an event about the object `load()` finds, its data built only when someone
    listens; a failure here is logged, never raised into the state transition that
    called it (a savepoint keeps the caller's transaction usable)."""
    try:
        with transaction.atomic():
            obj = load()
            if obj is None:
                return
            endpoints = subscribers(team=team_of(obj), type=type)
            if endpoints:
                event_emit(team=team_of(obj), type=type, data=build(obj), endpoints=endpoints)
    except Exception:
        logger.exception("could not emit %s", type)


def clip_event_emit(*, clip_id: str, type: str) -> None:
    """clip.processing, clip.completed, clip.failed, clip.exported: the clip as it is now."""
    from clips.models import Clip

    _emit_safely(type, lambda: Clip.objects.filter(pk=clip_id).first(), event_data.clip_data)


def job_event_emit(*, job_id, type: str) -> None:
    """job.done, job.error."""
    from clips.models import Job

    _emit_safely(type, lambda: Job.objects.filter(pk=job_id).first(), event_data.job_data)


def export_event_emit(*, export_id: str, type: str) -> None:
    """export.ready, export.failed."""
    from clips.models import Export

    _emit_safely(
        type,
        lambda: Export.objects.select_related("clip").filter(pk=export_id).first(),
        event_data.export_data,
        team_of=lambda export: export.clip.team_id,
    )


def render_event_emit(*, clip_id: str, type: str) -> None:
    """render.done, render.failed: a clip's full render on request."""
    from clips.models import Clip

    _emit_safely(type, lambda: Clip.objects.filter(pk=clip_id).first(), event_data.render_data)


# Delivery ----------------------------------------------------------------------------


def _job_id(delivery_id: str, number: int) -> str:
    """One RQ job per attempt, so a retry never collides with the job scheduling it."""
    return f"{delivery_id}-{number}"


def _enqueue(delivery_id: str, *, number: int, at: datetime | None = None) -> None:
    """Queue attempt `number`: on commit when due now, else at `at` on RQ's scheduler
    (inline mode: the sweep makes it when it is due)."""
    if at is None:
        enqueue_on_commit("webhooks", ATTEMPT_JOB, delivery_id, job_id=_job_id(delivery_id, number))
        return
    if settings.CLYPAI_JOBS_INLINE:
        return
    when = datetime.fromtimestamp(math.ceil(at.timestamp()), tz=UTC)
    try:
        get_queue("webhooks").enqueue_at(
            when, ATTEMPT_JOB, delivery_id, job_id=_job_id(delivery_id, number)
        )
    except Exception:
        logger.exception("could not schedule %s; the sweep will", delivery_id)


@dataclass(frozen=True)
class _Outcome:
    code: int | None
    duration_ms: int
    error: str
    excerpt: str
    retry_after: float | None


def delivery_attempt(*, delivery_id: str) -> WebhookAttempt | None:
    """Make the next attempt of a due delivery; the attempt, or None when the delivery
    is not due, already being attempted, finished, or gone.

    Side effects: one signed POST through the SSRF guard (CLYPAI_URL_ALLOWLIST), the
    attempt's row, the delivery's new state, the next attempt scheduled, the endpoint's
    failure streak (and its disabling).
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
    _attempt_finished(delivery, attempt, outcome)
    return attempt


def _send(endpoint: WebhookEndpoint, event: WebhookEvent, now: datetime) -> _Outcome:
    from clips.pipeline import StageError
    from clips.pipeline.fetch import post_checked

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
    try:
        response = post_checked(
            endpoint.url,
            body,
            headers,
            timeout=settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS,
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


def _attempt_finished(delivery: WebhookDelivery, attempt: WebhookAttempt, out: _Outcome) -> None:
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
        fields.update(
            status=WebhookDelivery.Status.SUCCEEDED, next_attempt_at=None, succeeded_at=now
        )
    elif out.code == 410:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    else:
        delay = retry_delay(attempt.number - delivery.round_start, out.retry_after)
        if delay is None:
            fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        else:
            next_at = now + timedelta(seconds=delay)
            fields.update(status=WebhookDelivery.Status.RETRYING, next_attempt_at=next_at)
    # Conditional on this attempt still being the latest: when a redelivery, or a sweep
    # that presumed this worker lost, has moved on, the newer attempt's state wins.
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, attempts=attempt.number).update(
        **fields
    )
    endpoint_id = delivery.endpoint_id
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
    if updated and next_at is not None:
        _enqueue(delivery.pk, number=attempt.number + 1, at=next_at)


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


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, with a new round of retries: the same event (id and
    body), new attempts. Refused while an attempt is in flight or the endpoint is
    disabled."""
    if not delivery.endpoint.enabled:
        raise Conflict(
            "The endpoint is disabled: enable it (PATCH enabled: true) first",
            code="webhook_disabled",
            details={"disabledReason": delivery.endpoint.disabled_reason},
        )
    now = timezone.now()
    with transaction.atomic():
        restarted = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .update(
                status=WebhookDelivery.Status.PENDING,
                round_start=F("attempts"),
                next_attempt_at=now,
                updated_at=now,
            )
        )
        if not restarted:
            raise Conflict(
                "An attempt of this delivery is in progress; try again when it has finished",
                code="delivery_in_progress",
            )
        delivery.refresh_from_db()
        number = delivery.attempts + 1
        transaction.on_commit(lambda: _enqueue_replacing(delivery.pk, number))
    return delivery


def _enqueue_replacing(delivery_id: str, number: int) -> None:
    """Enqueue attempt `number` now, dropping a retry of the same number still waiting
    on the scheduler (it would otherwise stand for this one until its time)."""
    job_id = _job_id(delivery_id, number)
    try:
        if not settings.CLYPAI_JOBS_INLINE:
            waiting = get_queue("webhooks").fetch_job(job_id)
            if waiting is not None:
                state = waiting.get_status(refresh=True)
                if getattr(state, "value", state) in ("scheduled", "queued", "deferred"):
                    waiting.delete()
        enqueue_now("webhooks", ATTEMPT_JOB, delivery_id, job_id=job_id)
    except Exception:
        logger.exception("could not enqueue %s; the sweep will", delivery_id)


def deliveries_sweep(*, now: datetime | None = None) -> list[str]:
    """Enqueue again each delivery that is due with no live RQ job for its next attempt
    (the enqueue was lost, Redis lost it, or the worker making an attempt died); in
    inline mode, make those attempts here. Returns the deliveries enqueued."""
    now = now or timezone.now()
    queue = None if settings.CLYPAI_JOBS_INLINE else get_queue("webhooks")
    due = (
        WebhookDelivery.objects.filter(
            status__in=ACTIVE, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("next_attempt_at")
        .values_list("id", "attempts")[:500]
    )
    requeued = []
    for delivery_id, attempts in list(due):
        job_id = _job_id(delivery_id, attempts + 1)
        if queue is not None:
            job = queue.fetch_job(job_id)
            state = job.get_status(refresh=True) if job is not None else None
            if getattr(state, "value", state) in _LIVE_RQ_STATES:
                continue
        enqueue_now("webhooks", ATTEMPT_JOB, delivery_id, job_id=job_id)
        requeued.append(delivery_id)
    return requeued


def events_purge(*, now: datetime | None = None) -> int:
    """Delete events (with their deliveries and attempts) older than
    CLYPAI_WEBHOOK_RETENTION_DAYS whose deliveries are all finished; the sweep calls
    this. Returns how many events went."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CLYPAI_WEBHOOK_RETENTION_DAYS)
    old = WebhookEvent.objects.filter(created_at__lt=cutoff).exclude(deliveries__status__in=ACTIVE)
    ids = list(old.values_list("id", flat=True)[:5000])
    WebhookEvent.objects.filter(pk__in=ids).delete()
    return len(ids)
