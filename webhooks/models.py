"""Webhook endpoints, the events sent to them, and each delivery with its attempts.

PostgreSQL holds the truth of every delivery (its status, attempts and the time of its
next attempt); RQ only carries the work, and the sweep re-enqueues what Redis lost.
"""

from __future__ import annotations

import json

from django.db import models

from clypai.ids import new_webhook_delivery_id, new_webhook_event_id, new_webhook_id

from .signing import secret_generate

# What customers subscribe to, in the product's words.
EVENT_TYPES = (
    "clip.processing",
    "clip.completed",
    "clip.failed",
    "clip.exported",
    "job.done",
    "job.error",
    "render.done",
    "render.failed",
    "export.ready",
    "export.failed",
)
# Sent only by POST /v1/webhooks/{id}/test, to that endpoint, whatever it subscribes to.
TEST_EVENT = "webhook.test"
ALL_EVENTS = "*"

# The words an endpoint's events are in: /v1's (`clypai`: prefixed ids, ISO times,
# camelCase), or the Choppity API's (`choppity`: its job and render bodies, UUIDs, Unix
# milliseconds, snake_case), with the events each format sends.
FORMAT_CLYPAI = "clypai"
FORMAT_CHOPPITY = "choppity"
FORMATS = (FORMAT_CLYPAI, FORMAT_CHOPPITY)
FORMAT_EVENT_TYPES = {
    FORMAT_CLYPAI: EVENT_TYPES,
    FORMAT_CHOPPITY: ("job.done", "job.error", "render.done", "render.error"),
}


class WebhookEndpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_webhook_id, editable=False)
    team = models.ForeignKey(
        "projects.Team", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    events = models.JSONField(default=list, help_text='Event types, or ["*"] for all.')
    format = models.CharField(
        max_length=16,
        choices=[(name, name) for name in FORMATS],
        default=FORMAT_CLYPAI,
        help_text="The words of its events: clypai (/v1) or choppity (/choppity/v1).",
    )
    # Standard Webhooks secrets: "whsec_" + base64 of random bytes. During a rotation the
    # previous one keeps signing (a second signature) until previous_secret_expires_at.
    secret = models.CharField(max_length=100, default=secret_generate)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Since when every attempt failed (cleared by a success); too long disables it.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["team", "created_at", "id"])]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    def subscribes_to(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class WebhookEvent(models.Model):
    """Something that happened, as sent: its id is the `webhook-id` of every attempt."""

    id = models.CharField(
        primary_key=True, max_length=40, default=new_webhook_event_id, editable=False
    )
    team = models.ForeignKey("projects.Team", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40)
    # The exact JSON that is sent and signed, kept as text: jsonb would reorder its keys.
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["team", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class WebhookDelivery(models.Model):
    """One event to one endpoint: at least once, retried on a schedule until it succeeds
    or the schedule ends."""

    class Status(models.TextChoices):
        PENDING = "pending"  # its first attempt is due or running
        RETRYING = "retrying"  # an attempt failed; another is scheduled
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # the schedule ran out, the endpoint answered 410 or is disabled

    id = models.CharField(
        primary_key=True, max_length=40, default=new_webhook_delivery_id, editable=False
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The attempt count when this round of retries began (a redelivery starts a new one).
    round_start = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Held by the worker making an attempt; past it, the worker is presumed lost.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")
        ]
        indexes = [
            models.Index(fields=["endpoint", "created_at", "id"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    response_body = models.TextField(blank=True, default="", help_text="Its first bytes.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
