"""Reads for webhooks, always scoped to one team."""

from __future__ import annotations

from clypai.api.errors import InvalidRequest, NotFound
from clypai.api.pagination import Page, SortField, paginate
from projects.models import Team

from .models import WebhookDelivery, WebhookEndpoint

CREATED = {"createdAt": SortField("createdAt", "created_at", "datetime")}
DELIVERY_STATUSES = tuple(WebhookDelivery.Status.values)


def endpoint_list(
    *, team: Team, sort: SortField, descending: bool, limit: int, cursor: str | None
) -> Page:
    return paginate(
        WebhookEndpoint.objects.filter(team=team),
        sort=sort,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )


def endpoint_get(*, team: Team, endpoint_id: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(team=team, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("Webhook not found")
    return endpoint


def delivery_list(
    *,
    endpoint: WebhookEndpoint,
    status: str | None,
    sort: SortField,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> Page:
    """One page of an endpoint's deliveries, newest first, with their events."""
    queryset = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event")
    if status:
        if status not in DELIVERY_STATUSES:
            raise InvalidRequest(
                f"status must be one of: {', '.join(DELIVERY_STATUSES)}", field="status"
            )
        queryset = queryset.filter(status=status)
    return paginate(queryset, sort=sort, descending=descending, limit=limit, cursor=cursor)


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: str) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.select_related("event", "endpoint")
        .prefetch_related("attempt_log")
        .filter(endpoint=endpoint, pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise NotFound("Delivery not found")
    return delivery
