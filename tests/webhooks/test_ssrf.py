"""Webhook URLs get the same SSRF guard as source URLs: at create and update, and again
on every attempt. Nothing here connects past loopback (the sandbox refuses it), and the
refused addresses are refused before any connection is made."""

from __future__ import annotations

import pytest

from webhooks.models import WebhookAttempt, WebhookEndpoint
from webhooks.services import event_emit

from .support import deliver, endpoint_for

WEBHOOKS = "/v1/webhooks"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/hook", "loopback"),
        ("http://0x7f000001/hook", "loopback"),
        ("http://[::ffff:192.168.1.5]/hook", "192.168.1.5"),
        # resolves to 10.1.2.3, which the answer does not tell
        ("http://internal.example.test/hook", "resolves to an address that is not public"),
    ],
)
def test_it_refuses_a_url_that_reaches_inside(api, sandbox, url, reason):
    sandbox.names["internal.example.test"] = ["10.1.2.3"]
    response = api.post(WEBHOOKS, {"url": url, "events": ["*"]}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "url")
    assert reason in error["message"]
    assert not WebhookEndpoint.objects.exists()
    assert not [c for c in sandbox.connections if c[1] != 6379]  # only Redis (rate limits)


@pytest.mark.django_db
def test_the_allowlist_lets_an_operators_private_receiver_through(api, settings, sandbox):
    sandbox.names["hooks.internal.test"] = ["10.1.2.3"]
    settings.CLYPAI_URL_ALLOWLIST = ["hooks.internal.test", "127.0.0.1"]
    for url in ("http://hooks.internal.test/hook", "http://127.0.0.1:9/hook"):
        response = api.post(WEBHOOKS, {"url": url, "events": ["*"]}, format="json")
        assert response.status_code == 201, response.json()
    # The allowlist names that host, not every private address.
    response = api.post(WEBHOOKS, {"url": "http://10.1.2.3/hook", "events": ["*"]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "url"


@pytest.mark.django_db
def test_a_public_name_that_does_not_resolve_now_is_accepted(api, sandbox):
    response = api.post(
        WEBHOOKS, {"url": "https://hooks.example.com/clypai", "events": ["*"]}, format="json"
    )
    assert response.status_code == 201
    assert sandbox.lookups == ["hooks.example.com"] and sandbox.outside() == []


@pytest.mark.django_db(transaction=True)
def test_every_attempt_is_checked_again(settings, caller, receiver, webhooks_queue, sandbox):
    """An endpoint allowed when created is refused once the operator's allowlist no
    longer names it: the attempt fails before any connection, and is retried."""
    endpoint_for(caller, receiver.url())
    settings.CLYPAI_URL_ALLOWLIST = []
    event = event_emit(team=caller.team, type="clip.failed", data={})
    delivery = deliver(webhooks_queue, event.deliveries.get().pk, until=lambda d: d.attempts)
    assert delivery.status == "retrying"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.response_code is None
    assert "127.0.0.1 is loopback" in attempt.error
    assert receiver.requests == []
    assert ("127.0.0.1", receiver.port) not in sandbox.connections


@pytest.mark.django_db(transaction=True)
def test_a_name_that_turns_private_after_creation_is_refused_at_delivery(
    settings, caller, webhooks_queue, sandbox
):
    sandbox.names["hooks.example.com"] = ["93.184.216.34"]  # public when created
    created = endpoint_for(caller, "http://hooks.example.com/hook")
    sandbox.names["hooks.example.com"] = ["10.0.0.7"]  # DNS rebinding
    event = event_emit(team=caller.team, type="clip.failed", data={})
    delivery = deliver(webhooks_queue, event.deliveries.get().pk, until=lambda d: d.attempts)
    assert "hooks.example.com resolves to an address that is not public" in delivery.last_error
    assert "10.0.0.7" not in delivery.last_error  # the log has it, not the team's API
    assert sandbox.outside() == []
    assert WebhookEndpoint.objects.get(pk=created["id"]).enabled  # a failure, not a 410
