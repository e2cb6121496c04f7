"""Webhook endpoints in the Choppity API's words: `"format": "choppity"` on POST
/v1/webhooks (the default is "clypai").

Such an endpoint receives job.done, job.error, render.done and render.error, whose
`data` is exactly the body the Choppity GET of that job or render answers at that moment
(UUIDs, Unix milliseconds, snake_case), in an envelope of the same words
(`{id, type, created_at, data}`), signed and retried as every delivery is.
"""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from clips.models import Clip, Job
from clips.states import full_render_finish, job_fail, job_refresh
from tests.choppity.conftest import make_job
from webhooks.models import WebhookDelivery, WebhookEvent

from .support import Answer, deliver, endpoint_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chop(caller) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    return client


def _unsigned(body):
    """A body with the signature of each signed link cut off: links signed a moment
    apart may differ in their expiry; everything else must be the same."""
    if isinstance(body, dict):
        return {key: _unsigned(value) for key, value in body.items()}
    if isinstance(body, list):
        return [_unsigned(item) for item in body]
    if isinstance(body, str) and "/files/" in body:
        return body.split("/files/")[0] + "/files/…"
    return body


def _received(queue, receiver, endpoint, type) -> list[dict]:
    """Deliver every event of `type` to `endpoint`; the payloads, verified as signed."""
    payloads = []
    for delivery in WebhookDelivery.objects.filter(endpoint_id=endpoint["id"], event__type=type):
        delivered = deliver(queue, delivery.pk)
        assert delivered.status == "succeeded", delivered.last_error
    for request in receiver.requests:
        if not endpoint["url"].endswith(request.path):
            continue
        payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        if payload["type"] == type:
            payloads.append(payload)
    return payloads


def _endpoints(caller, receiver, **events):
    """A Choppity-format endpoint and a /v1 one, each on its own path."""
    choppity = endpoint_for(caller, receiver.url("/choppity"), format="choppity", **events)
    clypai = endpoint_for(caller, receiver.url("/clypai"), **events)
    return choppity, clypai


def test_a_choppity_endpoint_gets_job_done_with_the_job_as_its_get_answers_it(
    settings, caller, chop, receiver, webhooks_queue
):
    settings.CLYPAI_PUBLIC_URL = "https://clyp.example.org"
    choppity, clypai = _endpoints(caller, receiver)
    assert choppity["format"] == "choppity" and clypai["format"] == "clypai"
    job = make_job(caller.team, status=Job.Status.PROCESSING, clips=2, previews=2)
    job_refresh(job.pk)

    (payload,) = _received(webhooks_queue, receiver, choppity, "job.done")
    assert set(payload) == {"id", "type", "created_at", "data"}
    assert payload["id"].startswith("evt_") and isinstance(payload["created_at"], int)
    polled = chop.get(f"/choppity/v1/clips/{job.pk}").json()
    assert polled["status"] == "done" and len(polled["clips"]) == 2
    assert _unsigned(payload["data"]) == _unsigned(polled)
    assert all(
        c["preview_url"].startswith("https://clyp.example.org/files/") for c in polled["clips"]
    )
    # The /v1 endpoint gets /v1's words for the same job, and neither gets the other's.
    (native,) = _received(webhooks_queue, receiver, clypai, "job.done")
    assert native["data"]["id"] == str(job.pk) and "createdAt" in native
    assert not WebhookEvent.objects.filter(type__startswith="clip.").exists()


def test_a_choppity_endpoint_gets_job_error_with_the_jobs_error(
    caller, chop, receiver, webhooks_queue
):
    choppity, _ = _endpoints(caller, receiver, events=["job.error"])
    job = make_job(caller.team, status=Job.Status.PROCESSING)
    job_fail(job, message="Clip generation failed: unreadable", code="processing_failed")

    (payload,) = _received(webhooks_queue, receiver, choppity, "job.error")
    polled = chop.get(f"/choppity/v1/clips/{job.pk}").json()
    assert payload["data"] == polled
    assert polled == {
        "job_id": str(job.pk),
        "status": "error",
        "created_at": polled["created_at"],
        "clips": [],
        "error": "Clip generation failed: unreadable",
    }


def test_a_choppity_endpoint_gets_render_done_and_render_error_as_the_render_get(
    settings, caller, chop, receiver, webhooks_queue
):
    settings.CLYPAI_PUBLIC_URL = "https://clyp.example.org"
    choppity, clypai = _endpoints(caller, receiver)
    job = make_job(caller.team, status=Job.Status.DONE, clips=2, previews=2)
    done, failed = job.clips.order_by("rank")
    for clip in (done, failed):
        chop.post(f"/choppity/v1/clips/{clip.uuid}/renders")
        Clip.objects.filter(pk=clip.pk).update(full_render_status="processing")
    Clip.objects.filter(pk=done.pk).update(video=done.preview.name)
    full_render_finish(done.pk)
    full_render_finish(failed.pk, error="Render failed: disk full")

    (ok,) = _received(webhooks_queue, receiver, choppity, "render.done")
    rendered = chop.get(f"/choppity/v1/renders/{done.uuid}").json()
    assert rendered["status"] == "done" and rendered["output_url"]
    assert _unsigned(ok["data"]) == _unsigned(rendered)
    (bad,) = _received(webhooks_queue, receiver, choppity, "render.error")
    assert bad["data"] == chop.get(f"/choppity/v1/renders/{failed.uuid}").json()
    assert bad["data"]["error"] == "Render failed: disk full"
    # /v1's words for the same renders: render.failed.
    assert _received(webhooks_queue, receiver, clypai, "render.failed")
    assert not _received(webhooks_queue, receiver, choppity, "render.failed")


def test_choppity_deliveries_are_retried_as_every_delivery_is(caller, receiver, webhooks_queue):
    choppity = endpoint_for(caller, receiver.url(), events=["job.error"], format="choppity")
    receiver.answer(Answer(status=500), Answer(status=503))
    job = make_job(caller.team, status=Job.Status.PROCESSING)
    job_fail(job, message="Clip generation failed: x", code="processing_failed")
    (delivery,) = WebhookDelivery.objects.filter(endpoint_id=choppity["id"])
    delivered = deliver(webhooks_queue, delivery.pk)
    assert (delivered.status, delivered.attempts) == ("succeeded", 3)
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert ids == {delivered.event_id}  # the same event, three attempts


def test_the_format_is_checked_against_the_events_it_sends(caller, receiver):
    api = caller.client
    url = receiver.url()

    def create(**body):
        return api.post("/v1/webhooks", {"url": url, **body}, format="json")

    default = create(events=["*"]).json()["data"]
    assert default["format"] == "clypai"
    for body, field in (
        ({"events": ["clip.completed"], "format": "choppity"}, "events"),
        ({"events": ["render.error"]}, "events"),
        ({"events": ["render.failed"], "format": "choppity"}, "events"),
        ({"events": ["*"], "format": "slack"}, "format"),
    ):
        refused = create(**body)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["field"] == field, refused.json()
    message = create(events=["clip.completed"], format="choppity").json()["error"]["message"]
    assert re.search(r"job\.done, job\.error, render\.done, render\.error$", message)
    # Changing the format checks the events it keeps.
    switched = api.patch(f"/v1/webhooks/{default['id']}", {"format": "choppity"}, format="json")
    assert switched.status_code == 200 and switched.json()["data"]["format"] == "choppity"
    kept = api.patch(
        f"/v1/webhooks/{default['id']}", {"events": ["job.done"]}, format="json"
    ).json()["data"]
    assert kept["events"] == ["job.done"]
    back = api.patch(f"/v1/webhooks/{default['id']}", {"format": "clypai"}, format="json")
    assert back.status_code == 200  # job.done is /v1's too
