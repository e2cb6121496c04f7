"""Writes for webhooks: endpoints, events, and the delivery of each event, at least once.

An event is stored with its exact JSON body and one delivery per enabled endpoint that
subscribes to it; each delivery is enqueued on the "webhooks" queue once the
transaction commits, and its attempts are made by `webhooks.delivery`. Apps emit their
events through `event_emit(team=, type=, data=)`; webhooks knows none of them.
`deliveries_sweep` enqueues again what Redis lost; `events_purge` forgets old events.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from clypai.api.errors import ApiError, Conflict, InvalidRequest
from clypai.api.responses import iso
from clypai.lib.errors import StageError
from clypai.lib.safe_http import check_url
from clypai.queues import enqueue_now, is_live
from projects.models import Team

from .delivery import ACTIVE, endpoint_disable
from .models import (
    ALL_EVENTS,
    FORMAT_CHOPPITY,
    FORMAT_CLYPAI,
    FORMAT_EVENT_TYPES,
    FORMATS,
    TEST_EVENT,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from .signing import secret_generate
from .tasks import (
    delivery_attempt_task,
    delivery_enqueue,
    delivery_enqueue_replacing,
    delivery_rq_id,
)

logger = logging.getLogger(__name__)


# Endpoints ---------------------------------------------------------------------------


def webhook_url_check(url: str) -> None:
    """Refuse (400 on `url`) a URL the delivery guard would refuse: not http(s), with
    credentials, or naming or resolving to an address that is not public and not in
    CLYPAI_URL_ALLOWLIST. Each attempt checks again."""
    try:
        check_url(url, allowlist=settings.CLYPAI_URL_ALLOWLIST)
    except StageError as err:
        reason = (err.details or {}).get("reason") or err.message
        raise InvalidRequest(f"Webhook URL is not allowed: {reason}", field="url") from err


def _format_check(format: str) -> str:
    if format not in FORMATS:
        raise InvalidRequest(f"format must be one of: {', '.join(FORMATS)}", field="format")
    return format


def _events_check(events: list[str], format: str = FORMAT_CLYPAI) -> list[str]:
    """The event types, each one the endpoint's format sends (or "*"), without repeats."""
    if not events:
        raise InvalidRequest("Subscribe to at least one event", field="events")
    sent = FORMAT_EVENT_TYPES[format]
    unknown = [e for e in events if e != ALL_EVENTS and e not in sent]
    if unknown:
        raise InvalidRequest(
            f'Unknown event type "{unknown[0]}" for the {format} format; it sends: '
            + ", ".join(sent),
            field="events",
        )
    return list(dict.fromkeys(events))  # in order, without repeats


def endpoint_create(
    *,
    team: Team,
    url: str,
    events: list[str],
    description: str = "",
    format: str = FORMAT_CLYPAI,
) -> WebhookEndpoint:
    """A new enabled endpoint with a new secret (shown once by the API), receiving its
    events in `format` (FORMATS). A team has at most CLYPAI_MAX_WEBHOOKS_PER_TEAM
    endpoints (enabled or not): one more is a Conflict naming the limit, counted under
    the team's row lock so that concurrent creates cannot pass it."""
    webhook_url_check(url)
    format = _format_check(format)
    events = _events_check(events, format)
    with transaction.atomic():
        _team_lock(team)
        limit = settings.CLYPAI_MAX_WEBHOOKS_PER_TEAM
        count = WebhookEndpoint.objects.filter(team=team).count()
        if limit and count >= limit:
            raise Conflict(
                f"A team may have at most {limit} webhook endpoints; delete one before "
                "adding another",
                code="webhook_limit_reached",
                details={"limit": limit, "count": count},
            )
        return WebhookEndpoint.objects.create(
            team=team,
            url=url,
            events=events,
            format=format,
            description=description or "",
            secret=secret_generate(),
        )


def _team_lock(team: Team | str) -> None:
    """Lock the team's row until the transaction ends: what counts of its endpoints and
    test events are checked under."""
    team_id = team.pk if isinstance(team, Team) else team
    Team.objects.select_for_update().filter(pk=team_id).values_list("pk", flat=True).first()


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change `url`, `events`, `format`, `description` or `enabled`. `enabled=True`
    re-enables a disabled endpoint (its failure streak starts anew); `enabled=False`
    disables it. The events (given, or kept) must be ones the format sends."""
    now = timezone.now()
    fields: dict = {}
    if "url" in changes:
        webhook_url_check(changes["url"])
        fields["url"] = changes["url"]
    if "format" in changes:
        fields["format"] = _format_check(changes["format"])
    if "events" in changes or "format" in changes:
        fields["events"] = _events_check(
            changes.get("events", endpoint.events), fields.get("format", endpoint.format)
        )
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


TEST_WINDOW_SECONDS = 60


def endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `webhook.test` event to this endpoint alone; its delivery, queued on the
    webhook workers. Cheap by design: one attempt (never retried) of at most
    CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS, and at most CLYPAI_WEBHOOK_TESTS_PER_MINUTE a
    team (429 `rate_limited` with Retry-After beyond, counted under the team's row lock),
    so test requests cannot tie up the workers that deliver real events."""
    if not endpoint.enabled:
        raise Conflict(
            "The endpoint is disabled: enable it (PATCH enabled: true) first",
            code="webhook_disabled",
            details={"disabledReason": endpoint.disabled_reason},
        )
    message = "A test event from ClypAI"
    if endpoint.format == FORMAT_CHOPPITY:
        data = {"endpoint_id": endpoint.pk, "message": message}
    else:
        data = {"endpointId": endpoint.pk, "message": message}
    with transaction.atomic():
        _team_lock(endpoint.team_id)
        _test_rate_check(endpoint.team_id)
        event = event_emit(
            team=endpoint.team,
            type=TEST_EVENT,
            data=data,
            endpoints=[endpoint],
            format=endpoint.format,
        )
    return WebhookDelivery.objects.get(event=event, endpoint=endpoint)


def _test_rate_check(team_id: str) -> None:
    limit = settings.CLYPAI_WEBHOOK_TESTS_PER_MINUTE
    if not limit:
        return
    now = timezone.now()
    sent = list(
        WebhookEvent.objects.filter(
            team_id=team_id,
            type=TEST_EVENT,
            created_at__gt=now - timedelta(seconds=TEST_WINDOW_SECONDS),
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(sent) < limit:
        return
    frees_at = sent[0] + timedelta(seconds=TEST_WINDOW_SECONDS)
    wait = max(math.ceil((frees_at - now).total_seconds()), 1)
    raise ApiError(
        f"Too many test events: a team may send {limit} a minute; retry after the time given",
        code="rate_limited",
        status_code=429,
        details={"limit": limit, "retryAfter": wait},
        headers={"Retry-After": str(wait)},
    )


# Events ------------------------------------------------------------------------------


def event_emit(
    *,
    team: Team | str,
    type: str,
    data: dict | Callable[[], dict],
    endpoints: list[WebhookEndpoint] | None = None,
    format: str = FORMAT_CLYPAI,
) -> WebhookEvent | None:
    """Record an event and queue one delivery per enabled endpoint of `team` (a team or
    its id) that takes events in `format` and subscribes to `type`, or to the `endpoints`
    given; None when nobody listens. `data` is the event's payload in that format's
    words, or a function that builds it, called only when some endpoint listens (apps
    emit their events through this, once per format; webhooks knows none of them).

    The body is `{"id", "type", "createdAt", "data"}` (ISO time) in the clypai format,
    `{"id", "type", "created_at", "data"}` (Unix milliseconds) in the choppity one; the
    event's id is the `webhook-id` of every attempt. Enqueued on commit: a rolled-back
    transaction sends nothing.
    """
    if endpoints is None:
        endpoints = subscribers(team=team, type=type, format=format)
    if not endpoints:
        return None
    if callable(data):
        data = data()
    now = timezone.now()
    with transaction.atomic():
        event = WebhookEvent(team_id=endpoints[0].team_id, type=type, body="")
        if format == FORMAT_CHOPPITY:
            created = {"created_at": int(now.timestamp() * 1000)}
        else:
            created = {"createdAt": iso(now)}
        event.body = json.dumps(
            {"id": event.pk, "type": type, **created, "data": data},
            separators=(",", ":"),
        )
        event.save()
        for endpoint in endpoints:
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint, event=event, next_attempt_at=now
            )
            delivery_enqueue(delivery.pk, number=1)
    return event


def subscribers(
    *, team: Team | str, type: str, format: str = FORMAT_CLYPAI
) -> list[WebhookEndpoint]:
    """The enabled endpoints of `team` (a team or its id) that take events in `format`
    and want `type` ones."""
    team_id = team.pk if isinstance(team, Team) else team
    found = WebhookEndpoint.objects.filter(team_id=team_id, enabled=True, format=format)
    return [endpoint for endpoint in found if endpoint.subscribes_to(type)]


# Delivery ----------------------------------------------------------------------------


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
        transaction.on_commit(lambda: delivery_enqueue_replacing(delivery.pk, number))
    return delivery


def deliveries_sweep(*, now: datetime | None = None) -> list[str]:
    """Enqueue again each delivery that is due with no live RQ job for its next attempt
    (the enqueue was lost, Redis lost it, or the worker making an attempt died); in
    inline mode, make those attempts here. Returns the deliveries enqueued."""
    now = now or timezone.now()
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
        job_id = delivery_rq_id(delivery_id, attempts + 1)
        if is_live("webhooks", job_id):
            continue
        enqueue_now("webhooks", delivery_attempt_task, delivery_id, job_id=job_id)
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
