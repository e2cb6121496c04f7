"""The app as production runs it: gunicorn (as compose starts it), DEBUG off, behind a
TLS proxy (`SECURE_PROXY_SSL_HEADER`), spoken to over real HTTP on loopback."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import threading

import pytest

from tests.processes import ROOT, process_env, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_KEY = "production-test-key-" + "s" * 40
HTTPS = {"X-Forwarded-Proto": "https"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(settings, tmp_path):
    port = _free_port()
    env = process_env(
        settings,
        tmp_path / "media",
        tmp_path / "work",
        DEBUG="false",
        SECRET_KEY=SECRET_KEY,
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CLYPAI_VAR_DIR=tmp_path / "var",
    )
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "clypai.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                "--workers=1",
                "--worker-class=gthread",
                "--threads=2",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            try:
                return _request(port, "GET", "/healthz")[0] == 200
            except OSError:
                return False

        assert wait_for(up, timeout=30, every=0.2), log.read_text()
        yield port
    finally:
        stop(process)


def _request(port, method, path, body=None, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _post_large(port, path, body: bytes, headers: dict, *, chunked: bool):
    """POST `body` while reading the answer, as curl does: the server answers (and closes)
    before it has read a body it refuses, so a client that only reads after sending all
    of it sees a broken pipe instead of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())

    def send() -> None:
        try:
            step = 1 << 16
            for start in range(0, len(body), step):
                piece = body[start : start + step]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server stopped reading: it has answered
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return response.status, response.headers, response.read()
    finally:
        sock.close()
        sender.join(timeout=30)


def test_plain_http_is_redirected_to_https_but_the_health_probe(gunicorn):
    status, headers, _ = _request(gunicorn, "GET", "/v1/projects")
    assert status == 301
    assert headers["Location"] == f"https://127.0.0.1:{gunicorn}/v1/projects"
    status, headers, _ = _request(gunicorn, "GET", "/accounts/login/")
    assert status == 301 and headers["Location"].startswith("https://")
    # the load balancer's probe over plain HTTP is answered
    status, _, body = _request(gunicorn, "GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_https_answers_carry_hsts_and_the_cookies_are_secure(gunicorn, django_user_model):
    from projects.services import member_create

    member_create(email="ann@example.com", password="a-long-pass-phrase-7", team_name="Acme")
    status, headers, body = _request(gunicorn, "GET", "/accounts/login/", headers=HTTPS)
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    csrf_cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("csrftoken="))
    assert "; Secure" in csrf_cookie
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    form = f"csrfmiddlewaretoken={token}&username=ann%40example.com&password=a-long-pass-phrase-7"
    status, headers, _ = _request(
        gunicorn,
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            **HTTPS,
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": csrf_cookie.split(";", 1)[0],
            "Referer": f"https://127.0.0.1:{gunicorn}/accounts/login/",
        },
    )
    assert status == 302, headers
    session = next(c for c in headers.get_all("Set-Cookie") if c.startswith("sessionid="))
    assert "; Secure" in session and "; HttpOnly" in session


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
@pytest.mark.parametrize(
    ("path", "shape"),
    [("/v1/clips", "v1"), ("/choppity/v1/clips", "choppity")],
)
def test_a_20_mb_json_body_gets_the_apis_json_413(gunicorn, caller, path, shape, chunked):
    body = json.dumps({"source": {"url": "https://example.com/a.mp4"}, "name": "x" * 20 * 2**20})
    headers = {
        **HTTPS,
        "Content-Type": "application/json",
        "Authorization": f"Bearer {caller.key}",
    }
    status, answer_headers, answer = _post_large(
        gunicorn, path, body.encode(), headers, chunked=chunked
    )
    assert status == 413, answer[:300]
    assert answer_headers["Content-Type"] == "application/json"
    error = json.loads(answer)["error"]
    if shape == "v1":
        assert json.loads(answer)["success"] is False
        assert error["code"] == "payload_too_large"
    else:
        assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert error["details"] == {"limit": 2 * 1024**2}


def test_a_small_chunked_json_body_is_read_as_any_other(gunicorn, caller):
    headers = {**HTTPS, "Content-Type": "application/json", "Authorization": f"Bearer {caller.key}"}
    status, _, answer = _post_large(
        gunicorn, "/v1/projects", json.dumps({"name": "Chunked"}).encode(), headers, chunked=True
    )
    assert status == 201, answer
    assert json.loads(answer)["data"]["name"] == "Chunked"
