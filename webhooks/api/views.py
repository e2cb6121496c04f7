"""/v1/webhooks: endpoints, their secrets, test events, and the delivery log."""

from __future__ import annotations

from functools import cached_property

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action

from clypai.api.errors import InvalidRequest
from clypai.api.pagination import query_param
from clypai.api.responses import ok
from clypai.api.schema import envelope, errors
from clypai.api.serializers import DeletedOut
from clypai.api.views import TeamViewSet

from .. import services
from ..models import WebhookDelivery, WebhookEndpoint
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


class WebhookViewSet(TeamViewSet):
    queryset = WebhookEndpoint.objects.all()
    lookup_url_kwarg = "webhook_id"
    not_found = "Webhook not found"

    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhook endpoints",
        parameters=_PAGE,
        responses={200: envelope(WebhookOut, many=True, paginated=True), **errors(400, 401)},
        tags=TAGS,
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookOut(page, many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        summary="Create a webhook endpoint",
        description=(
            "Events are POSTed to `url`, signed as Standard Webhooks says (`webhook-id`, "
            "`webhook-timestamp`, `webhook-signature`). The signing `secret` is shown here "
            "and on rotation only. The URL must reach a public address (or one the "
            "operator allowlisted). `format` chooses the words of its events: `clypai` "
            "(/v1's, the default) or `choppity` (the bodies of the Choppity API's GETs). "
            "A team has at most 20 endpoints (CLYPAI_MAX_WEBHOOKS_PER_TEAM): one more is "
            "409 `webhook_limit_reached`, with the limit in `details`."
        ),
        request=WebhookIn,
        responses={201: envelope(WebhookSecretOut), **errors(400, 401, 409)},
        tags=TAGS,
    )
    def create(self, request):
        data = self.validated(WebhookIn)
        endpoint = services.endpoint_create(
            team=self.team,
            url=data["url"],
            events=data["events"],
            description=data.get("description", ""),
            format=data.get("format") or "clypai",
        )
        return ok(WebhookSecretOut(endpoint).data, status_code=201)

    @extend_schema(
        operation_id="webhooks_retrieve",
        summary="Get a webhook endpoint",
        description="A disabled endpoint says why in `disabledReason`.",
        responses={200: envelope(WebhookOut), **errors(401, 404)},
        tags=TAGS,
    )
    def retrieve(self, request, webhook_id: str):
        return ok(WebhookOut(self.get_object()).data)

    @extend_schema(
        operation_id="webhooks_update",
        summary="Update a webhook endpoint",
        description="Change `url`, `events`, `description`; `enabled: true` re-enables it.",
        request=WebhookPatchIn,
        responses={200: envelope(WebhookOut), **errors(400, 401, 404)},
        tags=TAGS,
    )
    def partial_update(self, request, webhook_id: str):
        endpoint = self.get_object()
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
    def destroy(self, request, webhook_id: str):
        services.endpoint_delete(endpoint=self.get_object())
        return ok({"id": webhook_id, "deleted": True})

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
    @action(detail=True, methods=["post"], url_path="rotate-secret", name="Webhook Rotate Secret")
    def rotate_secret(self, request, webhook_id: str):
        endpoint = services.endpoint_rotate_secret(endpoint=self.get_object())
        return ok(WebhookSecretOut(endpoint).data)

    @extend_schema(
        operation_id="webhooks_test",
        summary="Send a test event",
        description="A `webhook.test` event to this endpoint only; its delivery, queued. "
        "One attempt, never retried, of at most 5 seconds "
        "(CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS); at most 5 test events a minute per team "
        "(CLYPAI_WEBHOOK_TESTS_PER_MINUTE), 429 `rate_limited` with Retry-After beyond.",
        request=None,
        responses={202: envelope(DeliveryOut), **errors(401, 404, 409)},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], name="Webhook Test")
    def test(self, request, webhook_id: str):
        delivery = services.endpoint_test(endpoint=self.get_object())
        delivery.refresh_from_db()
        return ok(DeliveryOut(delivery).data, status_code=202)


class WebhookScopedViewSet(TeamViewSet):
    """Base of the /v1/webhooks/{id} views: the endpoint, scoped to the caller's team."""

    # drf-spectacular describes GET .../deliveries/{delivery_id} with the docstring above.

    @cached_property
    def endpoint(self) -> WebhookEndpoint:
        # Found as GET /v1/webhooks/{webhook_id} finds it: another team's is not found.
        return WebhookViewSet(request=self.request, kwargs=self.kwargs).get_object()

    def get_queryset(self):
        return super().get_queryset().filter(endpoint=self.endpoint)


class DeliveryViewSet(WebhookScopedViewSet):
    queryset = WebhookDelivery.objects.select_related("event", "endpoint")
    team_field = "endpoint__team"
    lookup_url_kwarg = "delivery_id"
    not_found = "Delivery not found"

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
    def list(self, request, webhook_id: str):
        deliveries = self.get_queryset()
        status = query_param(request.query_params, "status")
        if status:
            if status not in DELIVERY_STATUSES:
                raise InvalidRequest(
                    f"status must be one of: {', '.join(DELIVERY_STATUSES)}", field="status"
                )
            deliveries = deliveries.filter(status=status)
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(DeliveryOut(page, many=True).data)

    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        summary="Get a delivery with its attempts",
        responses={200: envelope(DeliveryDetailOut), **errors(401, 404)},
        tags=TAGS,
    )
    def retrieve(self, request, webhook_id: str, delivery_id: str):
        return ok(DeliveryDetailOut(self.get_object()).data)

    @extend_schema(
        operation_id="webhooks_deliveries_redeliver",
        summary="Redeliver",
        description="Send the same event (same `webhook-id`, same body) again now, with a "
        "new round of retries.",
        request=None,
        responses={202: envelope(DeliveryOut), **errors(401, 404, 409)},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], name="Delivery Redeliver")
    def redeliver(self, request, webhook_id: str, delivery_id: str):
        delivery = services.delivery_redeliver(delivery=self.get_object())
        delivery.refresh_from_db()
        return ok(DeliveryOut(delivery).data, status_code=202)
