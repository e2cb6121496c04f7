"""A source URL is checked when its clip (or Choppity job) is created.

The document's "Invalid Source Video" error, exactly:
    {"success": false, "error": {"code": "invalid_request",
     "message": "Source video URL is not accessible", "field": "sourceVideoUrl"}}
Choppity's: BAD_REQUEST on `source.url`. A URL that is refused (a port where nothing
listens), private, unresolvable or answers an HTTP error gets that same answer; a host
that says nothing within the deadline is accepted (the worker's download decides).
Everything runs on loopback: a test HTTP server on 127.0.0.1 (allowlisted), and
127.0.0.2 / 10.0.0.1 canaries that the guard must refuse without connecting.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from clips.models import Clip, Job
from tests.sandbox import install

pytestmark = pytest.mark.django_db

DOC_INVALID_SOURCE = {
    "success": False,
    "error": {
        "code": "invalid_request",
        "message": "Source video URL is not accessible",
        "field": "sourceVideoUrl",
    },
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.seen.append((self.path, self.headers.get("Range")))
        if self.path == "/video.mp4":
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-0/1000")
            self.send_header("Content-Length", "1")
            self.end_headers()
            self.wfile.write(b"\x00")
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/video.mp4")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(2.0)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/busy":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def sandbox(monkeypatch):
    return install(monkeypatch)


@pytest.fixture
def origin(settings, sandbox):
    """A loopback server for source URLs, allowlisted; the check on, with a short deadline."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS = 0.5
    yield server
    server.shutdown()
    server.server_close()


def base(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create(api, url):
    return api.post("/v1/clips", {"sourceVideoUrl": url}, format="json")


def test_a_source_that_answers_is_accepted_with_one_ranged_get(api, team, origin):
    response = create(api, f"{base(origin)}/video.mp4")
    assert response.status_code == 201, response.content
    assert origin.seen == [("/video.mp4", "bytes=0-0")]  # one byte asked for, nothing more
    redirected = create(api, f"{base(origin)}/moved")
    assert redirected.status_code == 201, redirected.content


def test_unreachable_sources_get_the_documents_invalid_source_error(
    api, team, origin, sandbox, settings
):
    sandbox.names["video.example"] = ["10.0.0.1"]
    unreachable = [
        f"{base(origin)}/missing.mp4",  # 404
        f"http://127.0.0.1:{free_port()}/video.mp4",  # refused: nothing listens
        "http://127.0.0.2/video.mp4",  # loopback, not allowlisted
        "http://10.0.0.1/video.mp4",  # private
        "http://video.example/video.mp4",  # a name that resolves to a private address
        "http://nowhere.invalid/video.mp4",  # a name that does not resolve
    ]
    for url in unreachable:
        response = create(api, url)
        assert response.status_code == 400, (url, response.content)
        assert response.json() == DOC_INVALID_SOURCE, url  # the same, whatever the cause
    assert not Clip.objects.filter(team=team).exists()
    assert sandbox.outside() == []
    assert ("127.0.0.2", 80) not in sandbox.connections  # refused before connecting


def test_a_slow_host_is_accepted_and_left_to_the_worker(api, team, origin):
    started = time.monotonic()
    response = create(api, f"{base(origin)}/slow")
    assert response.status_code == 201, response.content
    assert time.monotonic() - started < 1.8  # the check's deadline, not the host's pace
    busy = create(api, f"{base(origin)}/busy")  # 503 may pass by itself
    assert busy.status_code == 201, busy.content


def test_choppity_refuses_an_unreachable_source_url_in_its_shape(caller, team, origin):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    response = client.post(
        "/choppity/v1/clips", {"source": {"url": f"{base(origin)}/missing.mp4"}}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": {
            "code": "BAD_REQUEST",
            "message": "Source video URL is not accessible",
            "field": "source.url",
        }
    }
    accepted = client.post(
        "/choppity/v1/clips", {"source": {"url": f"{base(origin)}/video.mp4"}}, format="json"
    )
    assert accepted.status_code == 202, accepted.content
    assert Job.objects.filter(team=team).count() == 1


def test_the_check_is_off_with_a_deadline_of_zero(api, team, origin, settings):
    settings.CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS = 0
    assert create(api, f"{base(origin)}/missing.mp4").status_code == 201
    assert origin.seen == []
