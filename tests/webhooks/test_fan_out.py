"""Webhook fan-out (issue 16, finding 7): endpoints per team are capped, a slow or
silent endpoint holds a webhook worker for the attempt's short deadline only (its retry
scheduled, never slept), test events are one short attempt and rate limited, and
deliveries have workers of their own."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from projects.services import api_key_create
from tests.concurrency import concurrently
from tests.factories import TeamFactory
from webhooks.delivery import delivery_attempt
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import event_emit
from webhooks.tasks import delivery_rq_id

from .support import Answer, endpoint_for, work

pytestmark = pytest.mark.django_db(transaction=True)  # deliveries are enqueued on commit

WEBHOOKS = "/v1/webhooks"


@pytest.fixture
def webhook_worker_queue(settings):
    """The "webhooks" queue on real Redis, emptied around a test, with the default
    timeouts (the `webhooks_queue` fixture shortens them) and a long first retry."""
    from clypai.queues import get_queue

    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [30.0, 60.0]
    queue = get_queue("webhooks")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def served(live_server) -> str:
    """The live server's address by IP: the sandbox answers no DNS, not even localhost."""
    return live_server.url.replace("localhost", "127.0.0.1")


# Endpoints per team ---------------------------------------------------------------------


def test_a_team_has_at_most_the_limit_of_endpoints_and_the_error_names_it(
    settings, caller, receiver
):
    """Before: any number of endpoints, each event fanned out to all of them."""
    assert settings.CLYPAI_MAX_WEBHOOKS_PER_TEAM == 20
    settings.CLYPAI_MAX_WEBHOOKS_PER_TEAM = 3
    made = [endpoint_for(caller, receiver.url(f"/{n}")) for n in range(3)]
    response = caller.client.post(
        WEBHOOKS, {"url": receiver.url("/4"), "events": ["*"]}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "webhook_limit_reached"
    assert "at most 3 webhook endpoints" in error["message"]
    assert error["details"] == {"limit": 3, "count": 3}
    # A disabled endpoint still counts; a deleted one frees its place.
    caller.client.patch(f"{WEBHOOKS}/{made[0]['id']}", {"enabled": False}, format="json")
    again = caller.client.post(
        WEBHOOKS, {"url": receiver.url("/4"), "events": ["*"]}, format="json"
    )
    assert again.status_code == 409
    assert caller.client.delete(f"{WEBHOOKS}/{made[0]['id']}").status_code == 200
    endpoint_for(caller, receiver.url("/4"))
    assert WebhookEndpoint.objects.filter(team=caller.team).count() == 3


def test_concurrent_endpoint_creates_stop_exactly_at_the_limit(settings, live_server, receiver):
    settings.CLYPAI_MAX_WEBHOOKS_PER_TEAM = 3
    team = TeamFactory()
    key = api_key_create(team=team).raw_key
    answers = concurrently(
        8,
        lambda session: session.post(
            f"{served(live_server)}{WEBHOOKS}",
            json={"url": receiver.url(), "events": ["*"]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ),
    )
    assert sorted(a.status_code for a in answers) == [201] * 3 + [409] * 5
    assert WebhookEndpoint.objects.filter(team=team).count() == 3


# A slow endpoint -----------------------------------------------------------------------


def test_a_slow_endpoint_holds_the_worker_for_the_short_deadline_and_its_retry_is_scheduled(
    caller, receiver, webhook_worker_queue
):
    """Before: an attempt could hold its worker 15 s (the worker that also rendered)."""
    endpoint_for(caller, receiver.url())
    receiver.answer(Answer(200, delay=60.0))  # answers only after a minute
    event = event_emit(team=caller.team, type="clip.failed", data={"id": "clip_1"})
    delivery = event.deliveries.get()
    started = time.monotonic()
    work(webhook_worker_queue)  # one burst: makes the attempt, returns
    held = time.monotonic() - started
    assert 9.5 <= held < 12.0, held  # CLYPAI_WEBHOOK_TIMEOUT_SECONDS: 10
    delivery.refresh_from_db()
    assert delivery.status == "retrying" and delivery.attempts == 1
    assert "timed out after 10 s" in delivery.last_error
    # The retry waits in RQ's scheduler (30 s from now): nothing sleeps on a worker.
    scheduled = webhook_worker_queue.scheduled_job_registry.get_job_ids()
    assert scheduled == [delivery_rq_id(delivery.pk, 2)]
    wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert 26 <= wait <= 34


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 whose listen queue is full: a new connection is never
    accepted (its SYN is dropped), as with a host that drops packets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for sock in [*fillers, server]:
        sock.close()


def test_an_endpoint_that_never_accepts_the_connection_costs_the_connect_timeout(
    settings, caller, silent_port, webhook_worker_queue
):
    """Before: a connection that never opened held the worker for the whole deadline."""
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_WEBHOOK_CONNECT_TIMEOUT_SECONDS = 1.0
    endpoint_for(caller, f"http://127.0.0.1:{silent_port}/hook")
    event = event_emit(team=caller.team, type="clip.failed", data={"id": "clip_1"})
    delivery = event.deliveries.get()
    started = time.monotonic()
    made = delivery_attempt(delivery_id=delivery.pk)
    held = time.monotonic() - started
    assert held < 3.0, held  # not the 10 s of CLYPAI_WEBHOOK_TIMEOUT_SECONDS
    assert made is not None and made.retry_at is not None
    last_error = WebhookDelivery.objects.get(pk=delivery.pk).last_error
    assert last_error == f"no connection to 127.0.0.1 port {silent_port} within the connect timeout"


# Test events -----------------------------------------------------------------------------


def test_a_test_event_is_one_short_attempt_never_retried(caller, receiver, webhook_worker_queue):
    """Before: a test event to a slow endpoint held a worker 15 s an attempt, and was
    retried on the whole schedule."""
    created = endpoint_for(caller, receiver.url())
    receiver.answer(Answer(200, delay=60.0))
    response = caller.client.post(f"{WEBHOOKS}/{created['id']}/test")
    assert response.status_code == 202
    started = time.monotonic()
    work(webhook_worker_queue)
    held = time.monotonic() - started
    assert 4.5 <= held < 7.0, held  # CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS: 5
    delivery = WebhookDelivery.objects.get(pk=response.json()["data"]["id"])
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.next_attempt_at is None and "timed out after 5 s" in delivery.last_error
    assert webhook_worker_queue.scheduled_job_registry.get_job_ids() == []


def test_test_events_are_rate_limited_per_team(settings, live_server, receiver):
    """Before: every request queued another test delivery (and its retries)."""
    settings.CLYPAI_JOBS_INLINE = False
    assert settings.CLYPAI_WEBHOOK_TESTS_PER_MINUTE == 5
    team = TeamFactory()
    key = api_key_create(team=team).raw_key
    headers = {"Authorization": f"Bearer {key}"}
    webhook = requests.post(
        f"{served(live_server)}{WEBHOOKS}",
        json={"url": receiver.url(), "events": ["*"]},
        headers=headers,
        timeout=30,
    ).json()["data"]
    answers = concurrently(
        9,
        lambda session: session.post(
            f"{served(live_server)}{WEBHOOKS}/{webhook['id']}/test", headers=headers, timeout=60
        ),
    )
    assert sorted(a.status_code for a in answers) == [202] * 5 + [429] * 4
    for refused in (a for a in answers if a.status_code == 429):
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["details"]["limit"] == 5
    assert WebhookDelivery.objects.filter(endpoint_id=webhook["id"]).count() == 5
