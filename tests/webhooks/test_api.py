"""/v1/webhooks: create, list, get, update, delete, rotate, test, the delivery log and
redelivery, in the envelope, scoped to the caller's team."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import event_emit

from .support import Answer, deliver, endpoint_for

WEBHOOKS = "/v1/webhooks"


@pytest.mark.django_db
def test_it_creates_an_endpoint_and_shows_its_secret_only_then(api, team, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    response = api.post(
        WEBHOOKS,
        {
            "url": "http://127.0.0.1:9/hook",
            "events": ["clip.completed", "clip.failed", "clip.completed"],
            "description": "Production",
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert data["id"].startswith("whk_")
    assert data["url"] == "http://127.0.0.1:9/hook"
    assert data["events"] == ["clip.completed", "clip.failed"]
    assert data["description"] == "Production"
    assert data["enabled"] is True and data["disabledReason"] is None
    assert data["secret"].startswith("whsec_")
    assert len(data["secret"]) >= len("whsec_") + 32  # base64 of 24+ bytes
    assert data["createdAt"].endswith("Z")
    assert WebhookEndpoint.objects.get(pk=data["id"]).team == team

    shown = api.get(f"{WEBHOOKS}/{data['id']}").json()["data"]
    assert "secret" not in shown
    listed = api.get(WEBHOOKS).json()
    assert [e["id"] for e in listed["data"]] == [data["id"]]
    assert "secret" not in listed["data"][0]
    assert listed["pagination"] == {"hasMore": False, "nextCursor": None}


@pytest.mark.django_db
def test_it_lists_endpoints_page_by_page(api, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    ids = [
        api.post(
            WEBHOOKS, {"url": f"http://127.0.0.1:9/{n}", "events": ["*"]}, format="json"
        ).json()["data"]["id"]
        for n in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = api.get(WEBHOOKS, {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["pagination"]["nextCursor"]
        if not page["pagination"]["hasMore"]:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5


@pytest.mark.django_db
def test_it_updates_url_events_and_description_and_deletes(api, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    created = api.post(
        WEBHOOKS, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, format="json"
    ).json()["data"]
    response = api.patch(
        f"{WEBHOOKS}/{created['id']}",
        {"url": "http://127.0.0.1:9/b", "events": ["export.ready"], "description": "Exports"},
        format="json",
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["url"], data["events"], data["description"]) == (
        "http://127.0.0.1:9/b",
        ["export.ready"],
        "Exports",
    )
    disabled = api.patch(f"{WEBHOOKS}/{created['id']}", {"enabled": False}, format="json")
    assert disabled.json()["data"]["enabled"] is False
    assert disabled.json()["data"]["disabledReason"] == "Disabled through the API"

    response = api.delete(f"{WEBHOOKS}/{created['id']}")
    assert response.status_code == 200
    assert response.json()["data"] == {"id": created["id"], "deleted": True}
    assert api.get(f"{WEBHOOKS}/{created['id']}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:9/", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/"}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": ["clip.exploded"]}, "events.0"),
        ({"url": "http://127.0.0.1:9/", "events": "clip.failed"}, "events"),
        ({"url": "ftp://example.com/hook", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/hook", "events": ["*"]}, "url"),
        ({"url": "https://example.com:99999/hook", "events": ["*"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2100, "events": ["*"]}, "url"),
        ({"url": 5, "events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:9/", "events": ["*"], "description": "x" * 501}, "description"),
        ({"url": "http://127.0.0.1:9/", "events": ["*"], "secret": "whsec_mine"}, "secret"),
        ({"url": "http://127.0.0.1:9/", "events": ["*"], "enabled": False}, "enabled"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(api, settings, body, field):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    response = api.post(WEBHOOKS, body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field, error
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"enabled": "yes"}, "enabled"),
        ({"events": []}, "events"),
        ({"url": None}, "url"),
        ({"url": "http://10.0.0.1/hook"}, "url"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_it_refuses_a_bad_update_naming_the_field(api, settings, body, field):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    created = api.post(
        WEBHOOKS, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, format="json"
    ).json()["data"]
    response = api.patch(f"{WEBHOOKS}/{created['id']}", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert WebhookEndpoint.objects.get(pk=created["id"]).url == "http://127.0.0.1:9/a"


@pytest.mark.django_db
def test_it_refuses_bad_list_parameters_naming_them(api, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    created = api.post(
        WEBHOOKS, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, format="json"
    ).json()["data"]
    for url, params, field in (
        (WEBHOOKS, {"limit": "0"}, "limit"),
        (WEBHOOKS, {"cursor": "!!"}, "cursor"),
        (f"{WEBHOOKS}/{created['id']}/deliveries", {"status": "lost"}, "status"),
        (f"{WEBHOOKS}/{created['id']}/deliveries", {"limit": "x"}, "limit"),
    ):
        response = api.get(url, params)
        assert response.status_code == 400, (url, params)
        assert response.json()["error"]["field"] == field


@pytest.mark.django_db
def test_another_teams_endpoints_and_deliveries_are_not_found(api, other_caller, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_JOBS_INLINE = False
    created = endpoint_for(other_caller, "http://127.0.0.1:9/theirs")
    event = event_emit(team=other_caller.team, type="clip.failed", data={})
    delivery = WebhookDelivery.objects.get(event=event)
    base = f"{WEBHOOKS}/{created['id']}"
    assert api.get(WEBHOOKS).json()["data"] == []
    for method, url in (
        ("get", base),
        ("patch", base),
        ("delete", base),
        ("post", f"{base}/rotate-secret"),
        ("post", f"{base}/test"),
        ("get", f"{base}/deliveries"),
        ("get", f"{base}/deliveries/{delivery.pk}"),
        ("post", f"{base}/deliveries/{delivery.pk}/redeliver"),
    ):
        response = getattr(api, method)(url, {}, format="json")
        assert response.status_code == 404, (method, url)
        assert response.json()["error"]["code"] == "not_found"
    assert WebhookEndpoint.objects.get(pk=created["id"]).enabled
    # Nor is a delivery reached through one of the caller's own endpoints.
    mine = api.post(WEBHOOKS, {"url": "http://127.0.0.1:9/", "events": ["*"]}, format="json")
    mine = mine.json()["data"]
    response = api.get(f"{WEBHOOKS}/{mine['id']}/deliveries/{delivery.pk}")
    assert response.status_code == 404


@pytest.mark.django_db
def test_an_unauthenticated_caller_is_refused(anon):
    assert anon.get(WEBHOOKS).status_code == 401
    assert anon.post(WEBHOOKS, {}, format="json").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_test_event_goes_to_that_endpoint_only(caller, receiver, webhooks_queue):
    target = endpoint_for(caller, receiver.url("/target"), events=["clip.failed"])
    endpoint_for(caller, receiver.url("/bystander"), events=["*"])
    response = caller.client.post(f"{WEBHOOKS}/{target['id']}/test")
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["eventType"] == "webhook.test" and data["status"] == "pending"
    delivery = deliver(webhooks_queue, data["id"])
    assert delivery.status == "succeeded"
    (request,) = receiver.requests
    assert request.path == "/target"
    payload = Webhook(target["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpointId"] == target["id"]


@pytest.mark.django_db
def test_a_disabled_endpoint_takes_no_test_event(api, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    created = api.post(
        WEBHOOKS, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, format="json"
    ).json()["data"]
    api.patch(f"{WEBHOOKS}/{created['id']}", {"enabled": False}, format="json")
    response = api.post(f"{WEBHOOKS}/{created['id']}/test")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "webhook_disabled"


@pytest.mark.django_db(transaction=True)
def test_the_delivery_log_shows_status_code_duration_attempts_and_next_attempt(
    settings, caller, receiver, webhooks_queue
):
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [3600.0]
    created = endpoint_for(caller, receiver.url())
    receiver.answer(Answer(500, body=b'{"error": "database down"}'))
    event = event_emit(team=caller.team, type="clip.failed", data={"id": "clip_1"})
    delivery = deliver(webhooks_queue, event.deliveries.get().pk, until=lambda d: d.attempts)
    base = f"{WEBHOOKS}/{created['id']}/deliveries"

    listed = caller.client.get(base).json()
    (item,) = listed["data"]
    assert item["id"] == delivery.pk and item["eventId"] == event.pk
    assert item["eventType"] == "clip.failed"
    assert (item["status"], item["attempts"], item["responseCode"]) == ("retrying", 1, 500)
    assert item["durationMs"] >= 0 and item["error"] == "HTTP 500"
    assert item["nextAttemptAt"] > item["createdAt"]
    assert listed["pagination"]["hasMore"] is False
    assert caller.client.get(base, {"status": "succeeded"}).json()["data"] == []

    detail = caller.client.get(f"{base}/{delivery.pk}").json()["data"]
    assert detail["payload"]["id"] == event.pk
    assert detail["payload"]["data"] == {"id": "clip_1"}
    (attempt,) = detail["attemptLog"]
    assert attempt["number"] == 1 and attempt["responseCode"] == 500
    assert attempt["responseBody"] == '{"error": "database down"}'
    assert attempt["startedAt"].endswith("Z") and attempt["durationMs"] >= 0


@pytest.mark.django_db(transaction=True)
def test_redelivery_sends_the_same_event_again_now(settings, caller, receiver, webhooks_queue):
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [3600.0]
    created = endpoint_for(caller, receiver.url())
    receiver.answer(500)
    event = event_emit(team=caller.team, type="clip.failed", data={"id": "clip_1"})
    delivery = deliver(webhooks_queue, event.deliveries.get().pk, until=lambda d: d.attempts)
    assert delivery.status == "retrying"  # the next attempt an hour away

    url = f"{WEBHOOKS}/{created['id']}/deliveries/{delivery.pk}/redeliver"
    response = caller.client.post(url)
    assert response.status_code == 202
    assert response.json()["data"]["status"] == "pending"
    delivery = deliver(webhooks_queue, delivery.pk)
    assert delivery.status == "succeeded" and delivery.attempts == 2
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.pk
    Webhook(created["secret"]).verify(second.body, second.headers)

    # A succeeded delivery can be sent again too (the receiver lost it, say).
    assert caller.client.post(url).status_code == 202
    delivery = deliver(webhooks_queue, delivery.pk)
    assert delivery.attempts == 3 and len(receiver.requests) == 3
    detail = caller.client.get(f"{WEBHOOKS}/{created['id']}/deliveries/{delivery.pk}").json()
    assert [a["responseCode"] for a in detail["data"]["attemptLog"]] == [500, 200, 200]


@pytest.mark.django_db
def test_an_attempt_in_flight_or_a_disabled_endpoint_refuses_redelivery(api, settings):
    from django.utils import timezone

    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_JOBS_INLINE = False
    created = api.post(
        WEBHOOKS, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, format="json"
    ).json()["data"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    delivery = event_emit(team=endpoint.team, type="clip.failed", data={}).deliveries.get()
    url = f"{WEBHOOKS}/{created['id']}/deliveries/{delivery.pk}/redeliver"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() + timezone.timedelta(seconds=30)
    )
    response = api.post(url)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delivery_in_progress"
    api.patch(f"{WEBHOOKS}/{created['id']}", {"enabled": False}, format="json")
    assert api.post(url).json()["error"]["code"] == "webhook_disabled"


@pytest.mark.django_db
def test_real_answers_match_the_documented_schemas(api, anon, settings):
    from tests.api.test_openapi import conforms

    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_JOBS_INLINE = False
    document = anon.get("/v1/openapi.json").json()

    def check(path, method, code, response):
        schema = document["paths"][path][method]["responses"][str(code)]
        schema = schema["content"]["application/json"]["schema"]
        assert response.status_code == code
        assert conforms(document, schema, response.json()) == [], (path, method)

    created = api.post(WEBHOOKS, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, format="json")
    check("/v1/webhooks", "post", 201, created)
    check("/v1/webhooks", "post", 400, api.post(WEBHOOKS, {}, format="json"))
    check("/v1/webhooks", "get", 200, api.get(WEBHOOKS))
    webhook_id = created.json()["data"]["id"]
    one = "/v1/webhooks/{webhook_id}"
    check(one, "get", 200, api.get(f"{WEBHOOKS}/{webhook_id}"))
    check(f"{one}/rotate-secret", "post", 200, api.post(f"{WEBHOOKS}/{webhook_id}/rotate-secret"))
    check(f"{one}/test", "post", 202, api.post(f"{WEBHOOKS}/{webhook_id}/test"))
    deliveries = api.get(f"{WEBHOOKS}/{webhook_id}/deliveries")
    check(f"{one}/deliveries", "get", 200, deliveries)
    delivery_id = deliveries.json()["data"][0]["id"]
    check(
        f"{one}/deliveries/{{delivery_id}}",
        "get",
        200,
        api.get(f"{WEBHOOKS}/{webhook_id}/deliveries/{delivery_id}"),
    )
    check(
        one, "patch", 200, api.patch(f"{WEBHOOKS}/{webhook_id}", {"enabled": False}, format="json")
    )
    check(one, "delete", 200, api.delete(f"{WEBHOOKS}/{webhook_id}"))
