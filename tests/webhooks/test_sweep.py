"""PostgreSQL is the truth of each delivery: the sweep finds due ones whose RQ job was
lost and enqueues them again, without doubling one that is waiting in Redis."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from clips.sweep import clips_sweep
from webhooks import delivery as webhook_delivery
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import deliveries_sweep, event_emit

from .support import Answer, ago, deliver, endpoint_for

pytestmark = pytest.mark.django_db(transaction=True)


def _lost_delivery(team, queue) -> WebhookDelivery:
    """A delivery whose first enqueue never reached Redis."""
    delivery = event_emit(team=team, type="clip.failed", data={}).deliveries.get()
    queue.empty()
    return delivery


def test_the_clips_sweep_requeues_a_due_delivery_whose_job_was_lost(
    caller, receiver, webhooks_queue
):
    endpoint_for(caller, receiver.url())
    delivery = _lost_delivery(caller.team, webhooks_queue)
    assert webhooks_queue.count == 0
    clips_sweep()
    assert webhooks_queue.job_ids == [f"{delivery.pk}-1"]
    assert deliver(webhooks_queue, delivery.pk).status == "succeeded"
    assert len(receiver.requests) == 1


def test_it_does_not_double_a_delivery_waiting_in_redis(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url())
    delivery = event_emit(team=caller.team, type="clip.failed", data={}).deliveries.get()
    assert deliveries_sweep() == []  # its job is queued
    assert webhooks_queue.job_ids == [f"{delivery.pk}-1"]


def test_it_leaves_a_retry_that_is_not_due_yet(settings, caller, receiver, webhooks_queue):
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [3600.0]
    endpoint_for(caller, receiver.url())
    receiver.answer(500)
    delivery = event_emit(team=caller.team, type="clip.failed", data={}).deliveries.get()
    delivery = deliver(webhooks_queue, delivery.pk, until=lambda d: d.attempts)
    assert delivery.status == "retrying"
    assert deliveries_sweep() == []
    # Due, but its retry still waits on RQ's scheduler: not doubled either.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=ago(seconds=1))
    assert deliveries_sweep() == []
    # Redis lost the scheduled retry: the sweep enqueues it.
    webhooks_queue.scheduled_job_registry.remove(f"{delivery.pk}-2", delete_job=True)
    assert deliveries_sweep() == [delivery.pk]
    assert deliver(webhooks_queue, delivery.pk).status == "succeeded"


def test_an_attempt_whose_worker_died_is_made_again(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url())
    delivery = _lost_delivery(caller.team, webhooks_queue)
    # A worker claimed attempt 1 and died before recording its answer.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=1, locked_until=timezone.now() + timedelta(seconds=30)
    )
    WebhookAttempt.objects.create(delivery=delivery, number=1, started_at=ago(seconds=5))
    assert deliveries_sweep() == []  # still held: it may yet answer
    WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=ago(seconds=1))
    assert deliveries_sweep() == [delivery.pk]
    delivery = deliver(webhooks_queue, delivery.pk)
    assert delivery.status == "succeeded" and delivery.attempts == 2
    lost, made = WebhookAttempt.objects.filter(delivery=delivery).order_by("number")
    assert lost.response_code is None and "worker" in lost.error and lost.finished_at
    assert made.response_code == 200


def test_a_late_answer_from_a_worker_presumed_lost_does_not_overwrite_a_newer_attempt(
    settings, monkeypatch, caller, receiver, webhooks_queue
):
    """Attempt 1 hangs past its lease; attempt 2 is made meanwhile and succeeds; when
    attempt 1 finally fails it does not put the delivery back to retrying."""
    settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS = 3.0
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(500, delay=1.5), 200)
    delivery = _lost_delivery(caller.team, webhooks_queue)
    monkeypatch.setattr(webhook_delivery, "LEASE_MARGIN_SECONDS", -2.9)  # lease: 0.1 s
    first = threading.Thread(
        target=lambda: (
            webhook_delivery.delivery_attempt(delivery_id=delivery.pk),
            connection.close(),
        )
    )
    first.start()
    time.sleep(0.5)
    assert webhook_delivery.delivery_attempt(delivery_id=delivery.pk) is not None
    first.join()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    codes = dict(
        WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "response_code")
    )
    assert codes == {1: 500, 2: 200}


def test_the_sweep_purges_finished_events_past_their_retention(
    settings, caller, receiver, webhooks_queue
):
    from clips.sweep import sweep_task
    from webhooks.models import WebhookEvent

    settings.CLYPAI_WEBHOOK_RETENTION_DAYS = 30
    endpoint_for(caller, receiver.url())
    done = event_emit(team=caller.team, type="clip.failed", data={})
    deliver(webhooks_queue, done.deliveries.get().pk)
    receiver.answer(500)
    waiting = event_emit(team=caller.team, type="clip.failed", data={})
    fresh = event_emit(team=caller.team, type="clip.failed", data={})
    WebhookEvent.objects.filter(pk__in=[done.pk, waiting.pk]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert sweep_task(reschedule=False)["webhookEventsPurged"] == 1
    # A delivery still retrying keeps its event, whatever its age; a recent one stays.
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {waiting.pk, fresh.pk}
    assert not WebhookAttempt.objects.filter(delivery__event_id=done.pk).exists()
