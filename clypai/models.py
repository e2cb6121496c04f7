"""Models of the project itself.

`RenderRun` keeps what a clip's on-request full render (the Choppity API's renders)
needs beyond the clip's own `render_status`: the liveness of the worker that holds it
and how many workers it has lost, which the sweep goes by.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class RenderRun(models.Model):
    """A clip's current full render: its worker's heartbeat and its attempts so far."""

    clip = models.OneToOneField(
        "clips.Clip", primary_key=True, on_delete=models.CASCADE, related_name="render_run"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # What this render counted against the team's render minutes, and when; a failed
    # render gives it back once (charged_seconds goes to 0).
    charged_seconds = models.FloatField(default=0.0)
    charged_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"render of {self.clip_id}"


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` of one caller: a fingerprint of the request that first used
    it, and once that request succeeded, its response, replayed for 24 hours.

    The unique (scope, key) row is the lock: the request that inserts it does the work,
    concurrent ones with the same key wait for its response.
    """

    scope = models.CharField(max_length=120, help_text="The caller: an API key or a user.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    # Empty while the first request runs.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=120, blank=True, default="")
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    locked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_scope_key")
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
