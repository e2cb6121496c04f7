"""Our signatures are Standard Webhooks' own: the same bytes as its library signs, and
the README's receiver (a Django view) verifies them."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

from django.http import HttpResponse
from django.test import RequestFactory
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks.signing import secret_generate, signature, signed_headers


def test_a_secret_is_whsec_and_the_base64_of_32_random_bytes():
    secret = secret_generate()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret_generate() != secret


def test_the_signature_is_the_libraries_own():
    secret = secret_generate()
    body = json.dumps({"id": "evt_1", "type": "clip.completed", "data": {"é": 1}})
    ours = signature(secret=secret, msg_id="evt_1", timestamp=1700000000, body=body.encode())
    theirs = Webhook(secret).sign("evt_1", datetime.fromtimestamp(1700000000, tz=UTC), body)
    assert ours == theirs


def test_the_readmes_receiver_verifies_a_delivery_and_refuses_a_forgery():
    secret = secret_generate()
    webhook = Webhook(secret)

    def receive(request):  # as the README shows it
        try:
            event = webhook.verify(request.body, dict(request.headers))
        except WebhookVerificationError:
            return HttpResponse(status=400)
        assert event["type"] == "clip.completed"
        return HttpResponse(status=204)

    body = b'{"id":"evt_1","type":"clip.completed","createdAt":"2024-01-15T10:30:00Z","data":{}}'
    headers = signed_headers(
        secrets_in_use=[secret], msg_id="evt_1", timestamp=int(time.time()), body=body
    )
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    meta["CONTENT_TYPE"] = meta.pop("HTTP_CONTENT_TYPE")
    factory = RequestFactory()
    request = factory.post("/hooks", data=body, content_type="application/json", **meta)
    assert receive(request).status_code == 204
    forged = factory.post(
        "/hooks", data=body.replace(b"{}", b'{"x":1}'), content_type="application/json", **meta
    )
    assert receive(forged).status_code == 400
    stale = signed_headers(secrets_in_use=[secret], msg_id="evt_1", timestamp=1, body=body)
    meta["HTTP_WEBHOOK_TIMESTAMP"] = stale["webhook-timestamp"]
    meta["HTTP_WEBHOOK_SIGNATURE"] = stale["webhook-signature"]
    old = factory.post("/hooks", data=body, content_type="application/json", **meta)
    assert receive(old).status_code == 400  # a replayed old delivery
