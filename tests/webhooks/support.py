"""The loopback receiver and the helpers of the webhook tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.utils import timezone
from rq import SimpleWorker

from webhooks.models import WebhookDelivery

FINAL = ("succeeded", "failed")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    body: bytes = b"ok"


class Receiver:
    """An HTTP server on 127.0.0.1 that records each request and answers from `script`
    (one Answer per request, in order; 200 once it runs out)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.monotonic(),
                        )
                    )
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                try:
                    if answer.delay:
                        time.sleep(answer.delay)
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = _handle

            def log_message(self, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer | int) -> None:
        self.script.extend(a if isinstance(a, Answer) else Answer(status=a) for a in answers)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def work(queue) -> bool:
    """One burst of a real RQ worker on the webhooks queue, its scheduler first moving
    the retries that are due (SimpleWorker: in this process, on the test's database)."""
    from django_rq import get_worker

    worker = get_worker("webhooks", worker_class=SimpleWorker)
    return worker.work(burst=True, with_scheduler=True, logging_level="WARNING")


def deliver(
    queue, delivery_id: str, *, timeout: float = 20.0, until: Callable | None = None
) -> WebhookDelivery:
    """Run burst workers until the delivery is final (or `until(delivery)` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        work(queue)
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        if (until(delivery) if until else delivery.status in FINAL) or (
            time.monotonic() > deadline
        ):
            return delivery
        time.sleep(0.05)


def endpoint_for(caller, url: str, events=("*",), **extra) -> dict:
    response = caller.client.post(
        "/v1/webhooks", {"url": url, "events": list(events), **extra}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["data"]


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)
