"""Delivering events to a real receiver on loopback through real RQ workers: signatures
that Standard Webhooks' own library verifies, retries, Retry-After, disabling."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks.delivery import delivery_attempt, retry_delay
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import event_emit

from .support import Answer, ago, deliver, endpoint_for

pytestmark = pytest.mark.django_db(transaction=True)  # deliveries are enqueued on commit


def _emit(team, type="clip.failed", data=None) -> WebhookDelivery:
    event = event_emit(team=team, type=type, data=data or {"id": "clip_abc", "status": "failed"})
    return WebhookDelivery.objects.get(event=event)


def test_a_delivery_is_signed_so_the_standard_webhooks_library_verifies_it(
    caller, receiver, webhooks_queue
):
    created = endpoint_for(caller, receiver.url())
    assert created["secret"].startswith("whsec_")
    delivery = _emit(caller.team, data={"id": "clip_abc", "status": "failed"})
    assert webhooks_queue.job_ids == [f"{delivery.pk}-1"]

    delivery = deliver(webhooks_queue, delivery.pk)
    assert delivery.status == "succeeded" and delivery.attempts == 1
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == delivery.event_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["webhook-signature"].startswith("v1,")
    assert " " not in request.headers["webhook-signature"]  # one secret, one signature

    payload = Webhook(created["secret"]).verify(request.body, request.headers)
    assert payload["id"] == delivery.event_id
    assert payload["type"] == "clip.failed"
    assert payload["data"] == {"id": "clip_abc", "status": "failed"}
    assert payload["createdAt"].endswith("Z")
    # A tampered body, or another secret, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(
            request.body.replace(b"failed", b"passed"), request.headers
        )
    other = endpoint_for(caller, receiver.url("/other"))["secret"]
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, request.headers)


def test_both_secrets_verify_during_a_rotation_and_only_the_new_one_after(
    caller, receiver, webhooks_queue
):
    old = endpoint_for(caller, receiver.url())
    rotated = caller.client.post(f"/v1/webhooks/{old['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["data"]
    assert new["secret"].startswith("whsec_") and new["secret"] != old["secret"]
    expires = timezone.datetime.fromisoformat(new["previousSecretExpiresAt"].replace("Z", "+00:00"))
    assert abs((expires - timezone.now()) - timedelta(hours=24)) < timedelta(minutes=1)
    assert "secret" not in caller.client.get(f"/v1/webhooks/{old['id']}").json()["data"]

    deliver(webhooks_queue, _emit(caller.team).pk)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old["secret"]).verify(request.body, request.headers)
    Webhook(new["secret"]).verify(request.body, request.headers)

    # The overlap over, the old secret no longer signs.
    WebhookEndpoint.objects.filter(pk=old["id"]).update(previous_secret_expires_at=ago(seconds=1))
    deliver(webhooks_queue, _emit(caller.team).pk)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new["secret"]).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old["secret"]).verify(request.body, request.headers)


def test_it_retries_after_500s_in_order_with_the_same_id_and_growing_delays(
    settings, caller, receiver, webhooks_queue
):
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [0.5, 3.0]
    created = endpoint_for(caller, receiver.url())
    receiver.answer(Answer(500, body=b"boom"), 502, 200)
    delivery = deliver(webhooks_queue, _emit(caller.team).pk)

    assert delivery.status == "succeeded" and delivery.attempts == 3
    assert len(receiver.requests) == 3
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {delivery.event_id}
    assert len({r.body for r in receiver.requests}) == 1  # the same body every time
    for request in receiver.requests:
        Webhook(created["secret"]).verify(request.body, request.headers)
    first, second, third = (r.at for r in receiver.requests)
    # RQ's scheduler counts whole seconds: each retry comes up to a second late.
    assert 0.45 <= second - first < 2.5
    assert 2.7 <= third - second < 6.0
    assert third - second > second - first
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.response_code) for a in attempts] == [(1, 500), (2, 502), (3, 200)]
    assert attempts[0].error == "HTTP 500" and attempts[0].response_body == "boom"


def test_it_retries_after_a_timeout(settings, caller, receiver, webhooks_queue):
    settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS = 0.5
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(200, delay=2.0), 200)
    started = time.monotonic()
    delivery = deliver(webhooks_queue, _emit(caller.team).pk)
    assert delivery.status == "succeeded" and delivery.attempts == 2
    first, second = WebhookAttempt.objects.filter(delivery=delivery).order_by("number")
    assert first.response_code is None and "timed out after 0.5 s" in first.error
    assert 400 <= first.duration_ms < 1500
    assert second.response_code == 200 and second.error == ""
    assert time.monotonic() - started < 10
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.event_id}


def test_it_honours_retry_after_in_seconds(settings, caller, receiver, webhooks_queue):
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [0.2]
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(503, headers={"Retry-After": "2"}), 200)
    delivery = deliver(webhooks_queue, _emit(caller.team).pk)
    assert delivery.status == "succeeded"
    first, second = receiver.requests
    assert 1.9 <= second.at - first.at < 4.5


def test_retry_after_is_read_as_seconds_or_a_date_and_capped(settings):
    from email.utils import format_datetime

    from webhooks.delivery import _retry_after

    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [5.0, 60.0]
    settings.CLYPAI_WEBHOOK_RETRY_AFTER_MAX_SECONDS = 3600.0
    assert _retry_after("120") == 120.0
    in_ten_minutes = format_datetime(timezone.now() + timedelta(minutes=10), usegmt=True)
    assert 590 <= _retry_after(in_ten_minutes) <= 600
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after("soon") is None and _retry_after(None) is None
    assert 4.5 <= retry_delay(1) <= 5.5  # the schedule, with jitter
    assert 54 <= retry_delay(2) <= 66
    assert retry_delay(3) is None  # the schedule is over
    assert retry_delay(1, retry_after=600.0) == 600.0
    assert retry_delay(1, retry_after=10**6) == 3600.0  # capped


def test_the_default_schedule_retries_for_more_than_a_day():
    from django.conf import settings

    assert len(settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE) >= 6
    assert sum(settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE) * 0.9 > 24 * 3600
    assert settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS == 10.0
    assert settings.CLYPAI_WEBHOOK_CONNECT_TIMEOUT_SECONDS == 5.0


def test_it_gives_up_when_the_schedule_runs_out(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url())
    receiver.answer(500, 500, 500, 500, 500)
    delivery = deliver(webhooks_queue, _emit(caller.team).pk)
    assert delivery.status == "failed" and delivery.attempts == 4  # 1 + 3 retries
    assert delivery.next_attempt_at is None and delivery.last_response_code == 500
    assert len(receiver.requests) == 4


def test_a_410_disables_the_endpoint_at_once(caller, receiver, webhooks_queue):
    created = endpoint_for(caller, receiver.url())
    receiver.answer(410)
    delivery = deliver(webhooks_queue, _emit(caller.team).pk)
    assert delivery.status == "failed" and delivery.attempts == 1
    shown = caller.client.get(f"/v1/webhooks/{created['id']}").json()["data"]
    assert shown["enabled"] is False
    assert "410" in shown["disabledReason"] and shown["disabledAt"]
    # Nothing more is sent to it.
    assert event_emit(team=caller.team, type="clip.failed", data={}) is None
    assert len(receiver.requests) == 1


def test_an_endpoint_failing_past_the_limit_is_disabled_and_the_api_says_why(
    settings, caller, receiver, webhooks_queue
):
    settings.CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS = 5
    created = endpoint_for(caller, receiver.url())
    receiver.answer(500, 500)
    # A first failure starts the streak, without disabling.
    delivery = deliver(webhooks_queue, _emit(caller.team).pk, until=lambda d: d.attempts == 1)
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.enabled and endpoint.failing_since is not None
    assert caller.client.get(f"/v1/webhooks/{created['id']}").json()["data"]["failingSince"]

    # Failing for six days, the next failure disables it; its waiting deliveries fail.
    WebhookEndpoint.objects.filter(pk=created["id"]).update(failing_since=ago(days=6))
    waiting = _emit(caller.team)
    webhooks_queue.empty()  # its first attempt waits in the queue (here: for the sweep)
    deliver(webhooks_queue, delivery.pk)
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    shown = caller.client.get(f"/v1/webhooks/{created['id']}").json()["data"]
    assert shown["enabled"] is False
    assert "failed for 5 days" in shown["disabledReason"]
    assert "HTTP 500" in shown["disabledReason"]
    waiting.refresh_from_db()
    assert waiting.status == "failed" and waiting.attempts == 0
    assert waiting.last_error == "Not sent: the endpoint was disabled"

    # Re-enabled through the API, it starts afresh.
    response = caller.client.patch(
        f"/v1/webhooks/{created['id']}", {"enabled": True}, format="json"
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["enabled"] is True and data["disabledReason"] is None
    assert data["failingSince"] is None


def test_a_success_ends_the_failure_streak(caller, receiver, webhooks_queue):
    created = endpoint_for(caller, receiver.url())
    WebhookEndpoint.objects.filter(pk=created["id"]).update(failing_since=ago(days=3))
    deliver(webhooks_queue, _emit(caller.team).pk)
    assert WebhookEndpoint.objects.get(pk=created["id"]).failing_since is None


def _test_event(caller, queue, endpoint_id) -> WebhookDelivery:
    """POST /v1/webhooks/{id}/test (what the dashboard's "Send a test event" calls too),
    delivered by a real worker."""
    response = caller.client.post(f"/v1/webhooks/{endpoint_id}/test")
    assert response.status_code == 202, response.json()
    return deliver(queue, response.json()["data"]["id"])


def test_a_test_event_never_counts_towards_disabling_nor_resets_the_streak(
    settings, caller, receiver, webhooks_queue
):
    """Before: a failing test event started (or lengthened) the failure streak that
    disables the endpoint, a 410 to one disabled it, and a passing one wiped out the
    streak of real failures."""
    settings.CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS = 5
    created = endpoint_for(caller, receiver.url())

    # A failing test event is recorded and shown, and starts no streak.
    receiver.answer(500)
    failed = _test_event(caller, webhooks_queue, created["id"])
    assert failed.status == "failed" and failed.last_response_code == 500
    shown = caller.client.get(f"/v1/webhooks/{created['id']}/deliveries").json()["data"]
    assert [d["id"] for d in shown] == [failed.pk]
    assert WebhookEndpoint.objects.get(pk=created["id"]).failing_since is None

    # Real deliveries failing for six days, not yet judged: a failing test event does
    # not disable the endpoint, nor does a 410 to one.
    WebhookEndpoint.objects.filter(pk=created["id"]).update(failing_since=ago(days=6))
    receiver.answer(500, 410)
    _test_event(caller, webhooks_queue, created["id"])
    gone = _test_event(caller, webhooks_queue, created["id"])
    assert gone.last_response_code == 410
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.enabled and endpoint.disabled_reason == ""

    # A passing test event leaves the real failures' streak as it was.
    since = endpoint.failing_since
    assert _test_event(caller, webhooks_queue, created["id"]).status == "succeeded"
    assert WebhookEndpoint.objects.get(pk=created["id"]).failing_since == since

    # The next real failure is judged on the real streak alone: disabled.
    receiver.answer(500)
    deliver(webhooks_queue, _emit(caller.team).pk, until=lambda d: d.attempts == 1)
    assert not WebhookEndpoint.objects.get(pk=created["id"]).enabled


def test_a_redirect_is_not_followed_and_counts_as_a_failure(caller, receiver, webhooks_queue):
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(302, headers={"Location": receiver.url("/elsewhere")}), 200)
    delivery = deliver(webhooks_queue, _emit(caller.team).pk)
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"]
    first = WebhookAttempt.objects.get(delivery=delivery, number=1)
    assert first.response_code == 302
    assert "redirects are not followed" in first.error and "/elsewhere" in first.error


def test_two_workers_never_make_the_same_attempt(caller, receiver, webhooks_queue):
    """Both claim at once; the conditional update lets one through, which sends once."""
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(200, delay=0.5))
    delivery = _emit(caller.team)
    barrier = threading.Barrier(4)
    results = []

    def attempt():
        try:
            barrier.wait()
            results.append(delivery_attempt(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([r for r in results if r is not None]) == 1
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1


def test_inline_mode_makes_the_first_attempt_at_once_and_leaves_retries_to_the_sweep(
    settings, caller, receiver
):
    from webhooks.services import deliveries_sweep

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [0.2]
    endpoint_for(caller, receiver.url())
    receiver.answer(500, 200)
    delivery = _emit(caller.team)  # attempted on commit, in this process
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(receiver.requests)) == ("retrying", 1, 1)
    assert deliveries_sweep() == []  # not due yet
    time.sleep(0.3)
    assert deliveries_sweep() == [delivery.pk]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(receiver.requests)) == ("succeeded", 2, 2)
