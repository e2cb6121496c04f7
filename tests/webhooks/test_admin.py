"""The admin for webhooks: endpoints with their deliveries and why they were disabled,
deliveries with their attempts, and a redeliver action."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tests.factories import TeamFactory
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.services import endpoint_create, event_emit

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_delivery(settings):
    """An endpoint disabled after a 410, with its failed delivery and the attempt."""
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_JOBS_INLINE = False
    endpoint = endpoint_create(
        team=TeamFactory(name="Zephyr Works"), url="http://127.0.0.1:9/zephyr", events=["*"]
    )
    delivery = event_emit(team=endpoint.team, type="clip.failed", data={}).deliveries.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=1, last_response_code=410, last_duration_ms=12
    )
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        response_code=410,
        duration_ms=12,
        error="HTTP 410",
        response_body="gone for good",
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason="The endpoint answered 410 Gone", disabled_at=timezone.now()
    )
    return delivery


def _url(model, view, *args):
    return reverse(f"admin:webhooks_{model._meta.model_name}_{view}", args=args)


def test_it_passes_djangos_admin_checks():
    call_command("check", "--tag", "admin", "--fail-level", "WARNING")


def test_the_endpoint_page_shows_its_deliveries_and_why_it_was_disabled(
    admin_client, failed_delivery
):
    endpoint = failed_delivery.endpoint
    page = admin_client.get(_url(WebhookEndpoint, "change", endpoint.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "The endpoint answered 410 Gone" in html
    assert failed_delivery.pk in html and "410" in html
    listing = admin_client.get(_url(WebhookEndpoint, "changelist"), {"q": "zephyr"})
    assert [e.pk for e in listing.context["cl"].result_list] == [endpoint.pk]
    assert "The endpoint answered 410 Gone" in listing.content.decode()
    assert admin_client.get(_url(WebhookEndpoint, "add")).status_code == 200


def test_the_delivery_pages_show_status_code_duration_and_attempts(admin_client, failed_delivery):
    listing = admin_client.get(_url(WebhookDelivery, "changelist"), {"q": failed_delivery.pk})
    assert [d.pk for d in listing.context["cl"].result_list] == [failed_delivery.pk]
    page = admin_client.get(_url(WebhookDelivery, "change", failed_delivery.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "gone for good" in html and "HTTP 410" in html
    event = admin_client.get(_url(WebhookEvent, "change", failed_delivery.event_id))
    assert event.status_code == 200 and "clip.failed" in event.content.decode()
    assert admin_client.get(_url(WebhookDelivery, "add")).status_code == 403


def test_the_redeliver_action_queues_the_selected_deliveries_again(admin_client, failed_delivery):
    # Refused while the endpoint is disabled, and said so.
    response = admin_client.post(
        _url(WebhookDelivery, "changelist"),
        {"action": "redeliver", "_selected_action": [failed_delivery.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert "Queued 0 deliveries again." in messages
    assert any("disabled" in m for m in messages)

    WebhookEndpoint.objects.filter(pk=failed_delivery.endpoint_id).update(enabled=True)
    response = admin_client.post(
        _url(WebhookDelivery, "changelist"),
        {"action": "redeliver", "_selected_action": [failed_delivery.pk]},
        follow=True,
    )
    assert "Queued 1 delivery again." in [str(m) for m in response.context["messages"]]
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == "pending" and failed_delivery.round_start == 1
