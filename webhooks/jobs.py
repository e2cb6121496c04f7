"""RQ entry points for webhooks: take ids, call one service."""

from __future__ import annotations


def delivery_attempt_job(delivery_id: str) -> None:
    """Make the next attempt of one delivery (webhooks.services.delivery_attempt)."""
    from .services import delivery_attempt

    delivery_attempt(delivery_id=delivery_id)
