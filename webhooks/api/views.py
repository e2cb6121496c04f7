"""/v1/webhooks: endpoints, their secrets, test events, and the delivery log."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema

from clypai.api.pagination import parse_limit, parse_sort, query_param
from clypai.api.responses import ok
from clypai.api.schema import envelope, errors
from clypai.api.serializers import DeletedOut
from clypai.api.views import TeamAPIView

from .. import selectors, services
from .serializers import (
    DELIVERY_STATUSES,
    DeliveryDetailOut,
    DeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookPatchIn,
    WebhookSecretOut,
)

TAGS = ["Webhooks"]
_PAGE = [
    OpenApiParameter("limit", int, description="At most 100 (default 20)."),
    OpenApiParameter("cursor", str, description="pagination.nextCursor of the page before."),
]


class WebhookView(TeamAPIView):
    """Base of the /v1/webhooks/{id} views: the endpoint, scoped to the caller's team."""

    def endpoint(self, webhook_id: str):
        return selectors.endpoint_get(team=self.team, endpoint_id=webhook_id)


class WebhookListCreateView(TeamAPIView):
    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhook endpoints",
        parameters=_PAGE,
        responses={200: envelope(WebhookOut, many=True, paginated=True), **errors(400, 401)},
        tags=TAGS,
    )
    def get(self, request):
        sort, descending = parse_sort({}, selectors.CREATED)
        page = selectors.endpoint_list(
            team=self.team,
            sort=sort,
            descending=descending,
            limit=parse_limit(query_param(request.query_params, "limit")),
            cursor=query_param(request.query_params, "cursor"),
        )
        return ok(WebhookOut(page.rows, many=True).data, pagination=page.pagination())

    @extend_schema(
        operation_id="webhooks_create",
        summary="Create a webhook endpoint",
        description=(
            "Events are POSTed to `url`, signed as Standard Webhooks says (`webhook-id`, "
            "`webhook-timestamp`, `webhook-signature`). The signing `secret` is shown here "
            "and on rotation only. The URL must reach a public address (or one the "
            "operator allowlisted)."
        ),
        request=WebhookIn,
        responses={201: envelope(WebhookSecretOut), **errors(400, 401)},
        tags=TAGS,
    )
    def post(self, request):
        data = self.validated(WebhookIn)
        endpoint = services.endpoint_create(
            team=self.team,
            url=data["url"],
            events=data["events"],
            description=data.get("description", ""),
        )
        return ok(WebhookSecretOut(endpoint).data, status_code=201)


class WebhookDetailView(WebhookView):
    @extend_schema(
        operation_id="webhooks_retrieve",
        summary="Get a webhook endpoint",
        description="A disabled endpoint says why in `disabledReason`.",
        responses={200: envelope(WebhookOut), **errors(401, 404)},
        tags=TAGS,
    )
    def get(self, request, webhook_id: str):
        return ok(WebhookOut(self.endpoint(webhook_id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        summary="Update a webhook endpoint",
        description="Change `url`, `events`, `description`; `enabled: true` re-enables it.",
        request=WebhookPatchIn,
        responses={200: envelope(WebhookOut), **errors(400, 401, 404)},
        tags=TAGS,
    )
    def patch(self, request, webhook_id: str):
        endpoint = self.endpoint(webhook_id)
        data = self.validated(WebhookPatchIn, partial=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **data)
        return ok(WebhookOut(endpoint).data)

    @extend_schema(
        operation_id="webhooks_destroy",
        summary="Delete a webhook endpoint",
        description="Its deliveries and their log go with it.",
        responses={200: envelope(DeletedOut), **errors(401, 404)},
        tags=TAGS,
    )
    def delete(self, request, webhook_id: str):
        services.endpoint_delete(endpoint=self.endpoint(webhook_id))
        return ok({"id": webhook_id, "deleted": True})


class WebhookRotateSecretView(WebhookView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        summary="Rotate a webhook endpoint's secret",
        description=(
            "A new `secret`, shown once. For 24 hours the previous secret signs too: "
            "`webhook-signature` then carries two `v1,` signatures."
        ),
        request=None,
        responses={200: envelope(WebhookSecretOut), **errors(401, 404)},
        tags=TAGS,
    )
    def post(self, request, webhook_id: str):
        endpoint = services.endpoint_rotate_secret(endpoint=self.endpoint(webhook_id))
        return ok(WebhookSecretOut(endpoint).data)


class WebhookTestView(WebhookView):
    @extend_schema(
        operation_id="webhooks_test",
        summary="Send a test event",
        description="A `webhook.test` event to this endpoint only; its delivery, queued.",
        request=None,
        responses={202: envelope(DeliveryOut), **errors(401, 404, 409)},
        tags=TAGS,
    )
    def post(self, request, webhook_id: str):
        delivery = services.endpoint_test(endpoint=self.endpoint(webhook_id))
        delivery.refresh_from_db()
        return ok(DeliveryOut(delivery).data, status_code=202)


class DeliveryListView(WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        summary="List an endpoint's deliveries",
        description="Newest first: status, last response code and duration, attempts, "
        "the next attempt's time.",
        parameters=[
            *_PAGE,
            OpenApiParameter("status", str, enum=DELIVERY_STATUSES, description="Filter."),
        ],
        responses={200: envelope(DeliveryOut, many=True, paginated=True), **errors(400, 401, 404)},
        tags=TAGS,
    )
    def get(self, request, webhook_id: str):
        endpoint = self.endpoint(webhook_id)
        sort, descending = parse_sort({}, selectors.CREATED)
        page = selectors.delivery_list(
            endpoint=endpoint,
            status=query_param(request.query_params, "status"),
            sort=sort,
            descending=descending,
            limit=parse_limit(query_param(request.query_params, "limit")),
            cursor=query_param(request.query_params, "cursor"),
        )
        return ok(DeliveryOut(page.rows, many=True).data, pagination=page.pagination())


class DeliveryDetailView(WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        summary="Get a delivery with its attempts",
        responses={200: envelope(DeliveryDetailOut), **errors(401, 404)},
        tags=TAGS,
    )
    def get(self, request, webhook_id: str, delivery_id: str):
        delivery = selectors.delivery_get(
            endpoint=self.endpoint(webhook_id), delivery_id=delivery_id
        )
        return ok(DeliveryDetailOut(delivery).data)


class DeliveryRedeliverView(WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_redeliver",
        summary="Redeliver",
        description="Send the same event (same `webhook-id`, same body) again now, with a "
        "new round of retries.",
        request=None,
        responses={202: envelope(DeliveryOut), **errors(401, 404, 409)},
        tags=TAGS,
    )
    def post(self, request, webhook_id: str, delivery_id: str):
        delivery = selectors.delivery_get(
            endpoint=self.endpoint(webhook_id), delivery_id=delivery_id
        )
        delivery = services.delivery_redeliver(delivery=delivery)
        delivery.refresh_from_db()
        return ok(DeliveryOut(delivery).data, status_code=202)
