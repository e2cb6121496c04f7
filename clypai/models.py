"""Models of the project itself: what the shared API pieces keep.

`IdempotencyRecord` holds the `Idempotency-Key`s that `clypai.api.limits` replays on
both APIs.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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
