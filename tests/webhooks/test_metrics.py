"""Webhook delivery outcomes in the metrics (clypai_webhook_delivery_attempts_total)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from webhooks.models import WebhookDelivery
from webhooks.services import event_emit

from .support import Answer, deliver, endpoint_for

pytestmark = pytest.mark.django_db(transaction=True)


def _count(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "clypai_webhook_delivery_attempts_total", {"outcome": outcome}
    )
    return value or 0.0


def test_each_attempt_counts_its_outcome(settings, caller, receiver, webhooks_queue):
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [0.2]
    before = {name: _count(name) for name in ("succeeded", "retrying", "failed", "gone")}
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(500), 200, 500, 500)
    event = event_emit(team=caller.team, type="clip.failed", data={"id": "clip_a"})
    first = deliver(webhooks_queue, WebhookDelivery.objects.get(event=event).pk)
    assert first.status == "succeeded"
    event = event_emit(team=caller.team, type="clip.failed", data={"id": "clip_b"})
    second = deliver(webhooks_queue, WebhookDelivery.objects.get(event=event).pk)
    assert second.status == "failed"
    grew = {name: _count(name) - count for name, count in before.items()}
    assert grew == {"succeeded": 1, "retrying": 2, "failed": 1, "gone": 0}
