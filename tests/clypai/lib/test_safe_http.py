"""The SSRF-safe HTTP client, clypai.lib.safe_http, called directly: the address rules,
`check_url` and `post_checked`. The guard as the source download uses it (literals,
names, rebinding, redirects, TLS, limits) is tested through `fetch_url` in
tests/clips/pipeline/test_fetch.py, and as webhooks use it in tests/webhooks/test_ssrf.py.

No packet leaves the machine: the `sandbox` fixture (autouse) records every socket
connect and DNS lookup and refuses any past loopback; the receiver is the webhook tests'
loopback HTTP server.
"""

from __future__ import annotations

import ipaddress

import pytest

from clypai.lib.errors import StageError
from clypai.lib.safe_http import address_problem, check_url, post_checked
from tests.sandbox import Sandbox, install
from tests.webhooks.support import Answer, Receiver


@pytest.fixture(autouse=True)
def sandbox(monkeypatch) -> Sandbox:
    return install(monkeypatch)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_public_addresses_pass_the_check():
    for text in [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ]:
        assert address_problem(ipaddress.ip_address(text)) is None, text


def test_post_checked_refuses_literals_before_connecting(sandbox):
    for url in ("http://10.0.0.1/hook", "http://127.0.0.1:9/hook", "http://[fd00::1]/"):
        with pytest.raises(StageError) as info:
            post_checked(url, b"{}", {}, timeout=2.0)
        assert info.value.field == "url"
        assert "address" in info.value.details["reason"]
    assert sandbox.connections == []


def test_check_url_refuses_bad_forms(sandbox):
    for url in ("gopher://example.com/", "http://user:pw@example.com/", "http:///nohost"):
        with pytest.raises(StageError):
            check_url(url)
    check_url("https://example.com/hook")  # unresolvable here: let through
    assert sandbox.connections == []


def test_post_checked_posts_once_and_does_not_follow_redirects(settings, receiver, sandbox):
    receiver.answer(Answer(307, headers={"Location": "http://10.0.0.1/"}, body=b"moved"))
    answer = post_checked(
        receiver.url("/hook?x=1"),
        b'{"a":1}',
        {"Content-Type": "application/json", "X-Test": "yes"},
        timeout=2.0,
        allowlist=["127.0.0.1"],
    )
    assert answer.status == 307 and answer.headers["location"] == "http://10.0.0.1/"
    assert answer.body == b"moved"
    (request,) = receiver.requests
    assert request.path == "/hook?x=1" and request.body == b'{"a":1}'
    assert request.headers["x-test"] == "yes"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert sandbox.outside() == []
