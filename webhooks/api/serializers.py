"""Input and output shapes of /v1/webhooks, camelCase as the rest of the API."""

from __future__ import annotations

from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clypai.api.fields import ChoiceField, StrictBooleanField, StrictSerializer
from clypai.api.responses import iso

from ..models import ALL_EVENTS, FORMAT_EVENT_TYPES, FORMATS, WebhookDelivery

# Every format's event types, each once, and "*".
EVENT_CHOICES = (
    *dict.fromkeys(t for types in FORMAT_EVENT_TYPES.values() for t in types),
    ALL_EVENTS,
)
FORMAT_HELP = (
    "The words its events are in. `clypai` (the default): /v1's, `{id, type, createdAt, "
    "data}` with data as /v1 shows the object: clip.processing, clip.completed, "
    "clip.failed, clip.exported, export.ready, export.failed, job.done, job.error, "
    "render.done, render.failed. `choppity`: the Choppity API's (/choppity/v1), `{id, "
    "type, created_at (Unix ms), data}`: job.done and job.error, whose data is exactly "
    "the body GET /choppity/v1/clips/{job_id} answers at that moment, and render.done and "
    "render.error, whose data is exactly the body of GET /choppity/v1/renders/{render_id}. "
    "Signing and retries are the same."
)
DELIVERY_STATUSES = tuple(WebhookDelivery.Status.values)


class WebhookUrlField(serializers.CharField):
    """An http(s) URL without credentials; where it points is checked by the service."""

    def __init__(self, **kwargs):
        super().__init__(max_length=2048, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise serializers.ValidationError("Must be a valid http or https URL") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise serializers.ValidationError("Must be an http or https URL")
        if parts.username is not None or parts.password is not None:
            raise serializers.ValidationError("URLs with credentials are not accepted")
        return value


class WebhookIn(StrictSerializer):
    url = WebhookUrlField(help_text="Where events are POSTed (http or https).")
    events = serializers.ListField(
        child=ChoiceField(EVENT_CHOICES),
        allow_empty=False,
        max_length=len(EVENT_CHOICES),
        help_text='Event types to receive, of those its format sends; ["*"] for all of them.',
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    format = ChoiceField(FORMATS, required=False, help_text=FORMAT_HELP)


class WebhookPatchIn(WebhookIn):
    enabled = StrictBooleanField(
        required=False, help_text="true re-enables a disabled endpoint; false disables it."
    )


class WebhookOut(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    format = serializers.ChoiceField(FORMATS, help_text=FORMAT_HELP)
    enabled = serializers.BooleanField()
    disabledReason = serializers.SerializerMethodField(
        help_text="Why it was disabled (410 Gone, days of failures, or through the API)."
    )
    disabledAt = serializers.SerializerMethodField()
    failingSince = serializers.SerializerMethodField(
        help_text="Since when every delivery failed; null after a success."
    )
    previousSecretExpiresAt = serializers.SerializerMethodField(
        help_text="Until when the secret before the last rotation still signs as well."
    )
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()

    def get_disabledReason(self, endpoint) -> str | None:
        return None if endpoint.enabled else endpoint.disabled_reason or None

    def get_disabledAt(self, endpoint) -> str | None:
        return None if endpoint.enabled else iso(endpoint.disabled_at)

    def get_failingSince(self, endpoint) -> str | None:
        return iso(endpoint.failing_since)

    def get_previousSecretExpiresAt(self, endpoint) -> str | None:
        return iso(endpoint.previous_secret_expires_at) if endpoint.previous_secret else None

    def get_createdAt(self, endpoint) -> str:
        return iso(endpoint.created_at)

    def get_updatedAt(self, endpoint) -> str:
        return iso(endpoint.updated_at)


class WebhookSecretOut(WebhookOut):
    secret = serializers.CharField(
        help_text="whsec_… signing secret: shown only when created or rotated."
    )


class DeliveryOut(serializers.Serializer):
    id = serializers.CharField()
    eventId = serializers.CharField(source="event_id", help_text="The webhook-id header.")
    eventType = serializers.CharField(source="event.type")
    status = ChoiceField(DELIVERY_STATUSES)
    attempts = serializers.IntegerField()
    responseCode = serializers.IntegerField(source="last_response_code", allow_null=True)
    durationMs = serializers.IntegerField(source="last_duration_ms", allow_null=True)
    error = serializers.SerializerMethodField(help_text="Why the last attempt failed.")
    nextAttemptAt = serializers.SerializerMethodField()
    succeededAt = serializers.SerializerMethodField()
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()

    def get_error(self, delivery) -> str | None:
        return delivery.last_error or None

    def get_nextAttemptAt(self, delivery) -> str | None:
        if delivery.status not in (WebhookDelivery.Status.PENDING, "retrying"):
            return None
        return iso(delivery.next_attempt_at)

    def get_succeededAt(self, delivery) -> str | None:
        return iso(delivery.succeeded_at)

    def get_createdAt(self, delivery) -> str:
        return iso(delivery.created_at)

    def get_updatedAt(self, delivery) -> str:
        return iso(delivery.updated_at)


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    startedAt = serializers.SerializerMethodField()
    finishedAt = serializers.SerializerMethodField()
    responseCode = serializers.IntegerField(source="response_code", allow_null=True)
    durationMs = serializers.IntegerField(source="duration_ms", allow_null=True)
    error = serializers.SerializerMethodField()
    responseBody = serializers.CharField(
        source="response_body", help_text="The first bytes of the answer's body."
    )

    def get_startedAt(self, attempt) -> str:
        return iso(attempt.started_at)

    def get_finishedAt(self, attempt) -> str | None:
        return iso(attempt.finished_at)

    def get_error(self, attempt) -> str | None:
        return attempt.error or None


class DeliveryDetailOut(DeliveryOut):
    payload = serializers.SerializerMethodField(help_text="The body sent, as sent.")
    attemptLog = AttemptOut(source="attempt_log.all", many=True)

    @extend_schema_field(serializers.DictField())
    def get_payload(self, delivery) -> dict:
        return delivery.event.payload
