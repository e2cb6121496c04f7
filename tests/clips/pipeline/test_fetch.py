"""URL ingest: clips.pipeline.fetch.fetch_url against HTTP servers started on loopback.

No packet leaves the machine. The guard refuses loopback, so downloads that should
succeed name the test server in `allowlist`; names are resolved by injected resolvers;
and the `sandbox` fixture (autouse) records every socket connect and DNS lookup in the
process, refusing any that would go past loopback. A refusal "before any connection"
is asserted as an empty `sandbox.connections`.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clips.pipeline import StageError
from clips.pipeline.fetch import fetch_url
from tests.sandbox import Sandbox, install

VIDEO = "talking_head/grid/bbaf2n.mpg"  # in ../shared/media, read in place
MAX = 10 * 1024**2


# --- sandbox: the process may only talk to loopback --------------------------------------


@pytest.fixture(autouse=True)
def sandbox(monkeypatch) -> Sandbox:
    return install(monkeypatch)


# --- a loopback HTTP server ------------------------------------------------------------


class Server:
    """http.server in a thread; `routes` maps a path to a function of the handler."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.split("?")[0]
                server.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "peer": self.client_address[0],
                    }
                )
                route = server.routes.get(path)
                if route is None:
                    self.send_error(500 if path == "/broken" else 404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.httpd = Quiet((host, port), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_bytes(data: bytes, content_type: str = "video/mpeg"):
    def route(h):
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return route


def redirect(location: str, status: int = 302):
    def route(h):
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


@pytest.fixture
def video(shared_media) -> bytes:
    return (shared_media / VIDEO).read_bytes()


@pytest.fixture
def server(video):
    s = Server()
    s.routes["/video.mpg"] = send_bytes(video)
    yield s
    s.close()


@pytest.fixture
def other_server(video):
    s = Server()
    s.routes["/video.mpg"] = send_bytes(video)
    yield s
    s.close()


def no_dns(host: str) -> list[str]:
    raise AssertionError(f"resolver called for {host!r}; a literal address needs none")


def names(table: dict[str, list[str]]):
    """A resolver from a table; records the names asked for."""
    calls: list[str] = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls
    return resolve


def fetch(url, dest, **kwargs):
    kwargs.setdefault("max_bytes", MAX)
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("resolver", no_dns)
    return fetch_url(url, dest, **kwargs)


def refused(url, dest, **kwargs) -> StageError:
    with pytest.raises(StageError) as info:
        fetch(url, dest, **kwargs)
    error = info.value
    assert error.message == "Source video URL is not accessible"
    assert error.code == "invalid_request"
    assert error.field == "sourceVideoUrl"
    assert error.details["url"] == url.replace(":secret@", ":***@")
    if dest.exists():
        assert list(dest.iterdir()) == []  # no partial file left behind
    return error


# --- downloads -------------------------------------------------------------------------


def test_it_downloads_a_video_with_its_size_and_sha256(server, video, tmp_path, sandbox):
    got = fetch(server.url("/video.mpg"), tmp_path, allowlist=["127.0.0.1"])

    assert got.path.parent == tmp_path and got.path.suffix == ".mpg"
    assert got.path.read_bytes() == video
    assert got.size == len(video) == 452608
    assert got.sha256 == hashlib.sha256(video).hexdigest()
    assert got.content_type == "video/mpeg"
    assert got.final_url == server.url("/video.mpg")
    assert sandbox.connections == [("127.0.0.1", server.port)]


def test_it_accepts_a_body_of_exactly_max_bytes(server, video, tmp_path):
    got = fetch(server.url("/video.mpg"), tmp_path, allowlist=["127.0.0.0/8"], max_bytes=len(video))
    assert got.size == len(video)


def test_it_downloads_a_body_without_length_that_ends_when_the_server_closes(server, tmp_path):
    def route(h):
        h.protocol_version = "HTTP/1.0"
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"x" * 300_000)
        h.close_connection = True

    server.routes["/stream"] = route
    got = fetch(server.url("/stream"), tmp_path, allowlist=["127.0.0.1"])
    assert got.size == 300_000
    assert got.sha256 == hashlib.sha256(b"x" * 300_000).hexdigest()
    assert got.content_type == "application/octet-stream"


def test_it_refuses_the_same_loopback_url_without_the_allowlist(server, tmp_path, sandbox):
    error = refused(server.url("/video.mpg"), tmp_path)

    assert error.details["reason"] == "address 127.0.0.1 is loopback"
    assert error.permanent is True
    assert server.requests == [] and sandbox.connections == []


def test_an_allowlisted_name_is_fetched_from_its_checked_address_with_its_own_host_header(
    server, video, tmp_path, sandbox
):
    resolve = names({"media.test": ["127.0.0.1"]})
    got = fetch(
        server.url("/video.mpg", "media.test"), tmp_path, allowlist=["media.test"], resolver=resolve
    )

    assert got.path.read_bytes() == video
    assert resolve.calls == ["media.test"]
    assert sandbox.connections == [("127.0.0.1", server.port)]
    assert server.requests[0]["host"] == f"media.test:{server.port}"
    assert sandbox.lookups == []


def test_an_allowlisted_name_does_not_allow_its_address_under_another_name(
    server, tmp_path, sandbox
):
    resolve = names({"other.test": ["127.0.0.1"]})
    error = refused(
        server.url("/video.mpg", "other.test"), tmp_path, allowlist=["media.test"], resolver=resolve
    )
    # The address a name resolves to is not told: that would map the internal DNS.
    assert error.details["reason"] == "host other.test resolves to an address that is not public"
    assert "127.0.0.1" not in error.message + str(error.details)
    assert sandbox.connections == []


# --- addresses refused before any connection -------------------------------------------

LITERALS = [
    ("http://127.0.0.1/", "address 127.0.0.1 is loopback"),
    ("https://127.0.0.1/", "address 127.0.0.1 is loopback"),
    ("http://127.255.255.254:8080/x", "address 127.255.255.254 is loopback"),
    ("http://[::1]/", "address ::1 is loopback"),
    ("http://0.0.0.0/", "address 0.0.0.0 is unspecified"),
    ("http://[::]/", "address :: is unspecified"),
    ("http://10.0.0.5/", "address 10.0.0.5 is private"),
    ("http://172.16.3.4/", "address 172.16.3.4 is private"),
    ("http://192.168.1.1/", "address 192.168.1.1 is private"),
    ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local"),
    ("http://100.64.0.1/", "address 100.64.0.1 is shared (100.64.0.0/10)"),
    ("http://224.0.0.1/", "address 224.0.0.1 is multicast"),
    ("http://240.0.0.1/", "address 240.0.0.1 is reserved"),
    ("http://255.255.255.255/", "address 255.255.255.255 is broadcast"),
    ("http://192.0.2.1/", "address 192.0.2.1 is not globally routable"),
    ("http://198.18.0.1/", "address 198.18.0.1 is not globally routable"),
    ("http://[fc00::1]/", "address fc00::1 is private (unique local)"),
    ("http://[fd12:3456::1]/", "address fd12:3456::1 is private (unique local)"),
    ("http://[fe80::1]/", "address fe80::1 is link-local"),
    ("http://[fec0::1]/", "address fec0::1 is site-local"),
    ("http://[ff02::1]/", "address ff02::1 is multicast"),
    ("http://[2001:db8::1]/", "address 2001:db8::1 is not globally routable"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, which is loopback"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1, which is loopback"),
    (
        "http://[::ffff:169.254.169.254]/",
        "IPv4-mapped form of 169.254.169.254, which is link-local",
    ),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1, which is loopback"),
    ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1, which is loopback"),
    ("http://[2002:a00:5::1]/", "6to4 form of 10.0.0.5, which is private"),
    (
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "Teredo form of 127.0.0.1, which is loopback",
    ),
    ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1, which is loopback"),
    ("http://[64:ff9b::a00:5]/", "NAT64 form of 10.0.0.5, which is private"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254, which is link-local"),
    # Numeric spellings that inet_aton and browsers read as IPv4.
    ("http://2130706433/", "address 127.0.0.1 is loopback"),
    ("http://0177.0.0.1/", "address 127.0.0.1 is loopback"),
    ("http://0x7f.1/", "address 127.0.0.1 is loopback"),
    ("http://0x7F000001/", "address 127.0.0.1 is loopback"),
    ("http://127.1/", "address 127.0.0.1 is loopback"),
    ("http://017700000001/", "address 127.0.0.1 is loopback"),
    ("http://127.0.0.1./", "address 127.0.0.1 is loopback"),
    ("http://0/", "address 0.0.0.0 is unspecified"),
    ("http://3232235777/", "address 192.168.1.1 is private"),
    ("http://0xa9fea9fe/", "address 169.254.169.254 is link-local"),
    ("http://0251.0376.0251.0376/", "address 169.254.169.254 is link-local"),
    ("http://256.0.0.1/", "host 256.0.0.1 is not a valid IPv4 address"),
    ("http://1.2.3.4.5/", "host 1.2.3.4.5 is not a valid IPv4 address"),
    ("http://0x7g.1/", "host 0x7g.1 is not a valid IPv4 address"),
]


@pytest.mark.parametrize(("url", "reason"), LITERALS, ids=[u for u, _ in LITERALS])
def test_it_refuses_a_non_public_address_before_connecting(url, reason, tmp_path, sandbox):
    error = refused(url, tmp_path)
    assert reason in error.details["reason"]
    assert error.permanent is True
    assert sandbox.connections == [] and sandbox.lookups == []


@pytest.mark.parametrize(
    "answer", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.5", "fd00::1"]
)
def test_it_refuses_a_name_that_resolves_to_a_non_public_address(answer, tmp_path, sandbox, caplog):
    resolve = names({"internal.test": [answer]})
    with caplog.at_level("INFO", logger="clypai.lib.safe_http"):
        error = refused("http://internal.test/video.mp4", tmp_path, resolver=resolve)

    # The caller is told the name reaches inside, not where: the operator's log says.
    reason = "host internal.test resolves to an address that is not public"
    assert error.details["reason"] == reason
    assert f"resolves to {ipaddress.ip_address(answer)}, " in caplog.text
    assert resolve.calls == ["internal.test"]
    assert sandbox.connections == []


def test_it_refuses_a_name_when_any_of_its_addresses_is_private(tmp_path, sandbox, caplog):
    resolve = names({"mixed.test": ["93.184.216.34", "10.0.0.5"]})
    with caplog.at_level("INFO", logger="clypai.lib.safe_http"):
        error = refused("http://mixed.test/", tmp_path, resolver=resolve)
    assert error.details["reason"] == "host mixed.test resolves to an address that is not public"
    assert "refused mixed.test: it resolves to 10.0.0.5, private" in caplog.text
    assert sandbox.connections == []


# --- DNS rebinding: the address checked is the address connected to --------------------


def rebinding(first: str, then: str):
    calls: list[str] = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return [first if len(calls) == 1 else then]

    resolve.calls = calls
    return resolve


def test_a_public_answer_is_connected_to_and_never_a_later_private_one(tmp_path, sandbox):
    # The sandbox stops the connection to the public address: no packet leaves loopback.
    resolve = rebinding("93.184.216.34", "127.0.0.1")
    error = refused("http://rebind.test/video.mp4", tmp_path, resolver=resolve)

    assert sandbox.connections == [("93.184.216.34", 80)]
    assert resolve.calls == ["rebind.test"]
    assert error.details["reason"].startswith("cannot connect to rebind.test port 80")
    assert error.permanent is False


def test_a_rebinding_name_cannot_move_the_connection_after_the_check(video, tmp_path, sandbox):
    good = Server("127.0.0.1")
    good.routes["/video.mpg"] = send_bytes(video)
    evil = Server("127.0.0.2", good.port)
    evil.routes["/video.mpg"] = send_bytes(b"secret from 127.0.0.2")
    try:
        resolve = rebinding("127.0.0.1", "127.0.0.2")
        got = fetch(
            good.url("/video.mpg", "rebind.test"),
            tmp_path,
            allowlist=["127.0.0.1/32"],
            resolver=resolve,
        )
        assert got.path.read_bytes() == video
        assert resolve.calls == ["rebind.test"]
        assert sandbox.connections == [("127.0.0.1", good.port)]
        assert evil.requests == []
    finally:
        good.close()
        evil.close()


def test_each_redirect_hop_is_resolved_and_checked_again(server, tmp_path, sandbox, caplog):
    server.routes["/hop"] = redirect(server.url("/video.mpg", "rebind.test"))
    resolve = rebinding("127.0.0.1", "127.0.0.2")
    with caplog.at_level("INFO", logger="clypai.lib.safe_http"):
        error = refused(
            server.url("/hop", "rebind.test"),
            tmp_path,
            allowlist=["127.0.0.1/32"],
            resolver=resolve,
        )

    assert error.details["reason"].startswith(
        "host rebind.test resolves to an address that is not public"
    )
    assert "it resolves to 127.0.0.2, loopback" in caplog.text
    assert resolve.calls == ["rebind.test", "rebind.test"]
    assert [r["path"] for r in server.requests] == ["/hop"]


# --- redirects -------------------------------------------------------------------------


def test_it_refuses_a_redirect_from_an_allowlisted_host_to_loopback(
    server, other_server, tmp_path, sandbox
):
    target = other_server.url("/video.mpg")
    server.routes["/go"] = redirect(target)
    resolve = names({"media.test": ["127.0.0.1"]})

    error = refused(
        server.url("/go", "media.test"), tmp_path, allowlist=["media.test"], resolver=resolve
    )

    assert (
        error.details["reason"] == f"address 127.0.0.1 is loopback (after a redirect to {target})"
    )
    assert error.permanent is True
    assert other_server.requests == []
    assert sandbox.connections == [("127.0.0.1", server.port)]


def test_it_follows_a_redirect_to_an_allowed_address(server, other_server, video, tmp_path):
    target = other_server.url("/video.mpg")
    server.routes["/go"] = redirect(target, 307)
    resolve = names({"media.test": ["127.0.0.1"]})

    got = fetch(
        server.url("/go", "media.test"),
        tmp_path,
        allowlist=["media.test", "127.0.0.1"],
        resolver=resolve,
    )
    assert got.final_url == target
    assert got.sha256 == hashlib.sha256(video).hexdigest()


def test_it_refuses_a_redirect_to_a_name_that_resolves_to_a_private_address(
    server, tmp_path, sandbox, caplog
):
    server.routes["/go"] = redirect("http://intranet.test/admin")
    resolve = names({"intranet.test": ["10.0.0.5"]})

    with caplog.at_level("INFO", logger="clypai.lib.safe_http"):
        error = refused(server.url("/go"), tmp_path, allowlist=["127.0.0.1"], resolver=resolve)

    assert error.details["reason"].startswith(
        "host intranet.test resolves to an address that is not public"
    )
    assert "it resolves to 10.0.0.5, private" in caplog.text
    assert sandbox.outside() == []


def test_it_refuses_a_redirect_to_another_scheme(server, tmp_path, sandbox):
    server.routes["/go"] = redirect("file:///etc/passwd")
    error = refused(server.url("/go"), tmp_path, allowlist=["127.0.0.1"])
    assert error.details["reason"].startswith("scheme file is not allowed")


def test_it_refuses_too_many_redirects(server, video, tmp_path):
    for n in range(10):
        server.routes[f"/hop/{n}"] = redirect(f"/hop/{n + 1}", 301)
    server.routes["/hop/3"] = send_bytes(video)

    got = fetch(server.url("/hop/0"), tmp_path, allowlist=["127.0.0.1"], max_redirects=3)
    assert got.size == len(video)

    server.requests.clear()
    error = refused(
        server.url("/hop/4"), tmp_path / "refused", allowlist=["127.0.0.1"], max_redirects=3
    )
    assert error.details["reason"] == "too many redirects (4, at most 3)"
    assert error.permanent is True
    assert len(server.requests) == 4


# --- limits ----------------------------------------------------------------------------


def test_it_refuses_a_body_whose_content_length_is_over_the_limit(server, video, tmp_path):
    error = refused(
        server.url("/video.mpg"), tmp_path, allowlist=["127.0.0.1"], max_bytes=len(video) - 1
    )
    assert (
        error.details["reason"]
        == f"larger than {len(video) - 1} bytes (Content-Length {len(video)})"
    )
    assert error.permanent is True
    assert list(tmp_path.iterdir()) == []


def test_it_stops_a_chunked_body_without_length_at_the_limit(server, tmp_path):
    sent = []

    def endless(h):
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"y" * 65536
        for _ in range(1000):  # 64 MB at most, were the limit not enforced
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent.append(len(chunk))
        h.wfile.write(b"0\r\n\r\n")

    server.routes["/endless"] = endless
    error = refused(server.url("/endless"), tmp_path, allowlist=["127.0.0.1"], max_bytes=100_000)

    assert error.details["reason"] == "larger than 100000 bytes"
    assert error.permanent is True
    assert list(tmp_path.iterdir()) == []
    assert sum(sent) < 64 * 1024**2


def test_a_server_that_trickles_the_body_hits_the_deadline(server, tmp_path):
    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(200):
            h.wfile.write(b"z")
            h.wfile.flush()
            time.sleep(0.05)

    server.routes["/trickle"] = trickle
    started = time.monotonic()
    error = refused(server.url("/trickle"), tmp_path, allowlist=["127.0.0.1"], timeout=1.5)
    elapsed = time.monotonic() - started

    assert error.details["reason"] == "timed out after 1.5 s"
    assert error.permanent is False
    assert 1.4 < elapsed < 2.5
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_trickles_its_headers_hits_the_deadline(server, tmp_path):
    def trickle(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(200):
            h.wfile.write(b"a")
            h.wfile.flush()
            time.sleep(0.05)

    server.routes["/slow-headers"] = trickle
    started = time.monotonic()
    error = refused(server.url("/slow-headers"), tmp_path, allowlist=["127.0.0.1"], timeout=1.5)

    assert error.details["reason"] == "timed out after 1.5 s"
    assert error.permanent is False
    assert time.monotonic() - started < 2.5


# --- other failures --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "permanent"), [("/missing", True), ("/broken", False)])
def test_it_reports_an_http_error_status(path, permanent, server, tmp_path):
    error = refused(server.url(path), tmp_path, allowlist=["127.0.0.1"])
    assert error.details["reason"] == f"HTTP {404 if permanent else 500}"
    assert error.permanent is permanent


def test_a_refused_connection_may_pass_on_a_retry(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = refused(f"http://127.0.0.1:{port}/", tmp_path, allowlist=["127.0.0.1"])
    assert error.details["reason"].startswith(f"cannot connect to 127.0.0.1 port {port}")
    assert error.permanent is False


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/video.mp4", "scheme ftp is not allowed"),
        ("file:///etc/passwd", "scheme file is not allowed"),
        ("gopher://127.0.0.1:70/_GET", "scheme gopher is not allowed"),
        ("data:video/mp4;base64,AAAA", "scheme data is not allowed"),
        ("//127.0.0.1/video.mp4", "scheme (none) is not allowed"),
        ("http:///video.mp4", "URL has no host"),
        ("http://127.0.0.1:99999/", "URL is malformed"),
        ("http://127.0.0.1/a b", "URL contains whitespace or control characters"),
    ],
)
def test_it_refuses_urls_that_are_not_http(url, reason, tmp_path, sandbox):
    error = refused(url, tmp_path, allowlist=["127.0.0.0/8"])
    assert error.details["reason"].startswith(reason)
    assert error.permanent is True
    assert sandbox.connections == []


def test_it_refuses_a_url_with_credentials_and_does_not_echo_the_password(
    server, tmp_path, sandbox
):
    url = f"http://user:secret@127.0.0.1:{server.port}/video.mpg"
    error = refused(url, tmp_path, allowlist=["127.0.0.1"])

    assert error.details["reason"].startswith("URL must not contain credentials")
    assert "secret" not in error.details["url"]
    assert server.requests == [] and sandbox.connections == []


@pytest.mark.parametrize(
    ("errno", "permanent"), [(socket.EAI_NONAME, True), (socket.EAI_AGAIN, False)]
)
def test_a_name_that_does_not_resolve_is_refused(errno, permanent, tmp_path, sandbox):
    def resolve(host):
        raise socket.gaierror(errno, "lookup failed")

    error = refused("https://nowhere.test/v.mp4", tmp_path, resolver=resolve)
    assert error.details["reason"] == "cannot resolve host nowhere.test: lookup failed"
    assert error.permanent is permanent
    assert sandbox.connections == []


def test_https_verifies_the_certificate_for_the_url_name_sent_as_sni(tmp_path, sandbox):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "media.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    seen_sni: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, server_name, ctx: seen_sni.append(server_name)
    tls_server = Server(tls=context)
    dest = tmp_path / "out"
    try:
        resolve = names({"media.test": ["127.0.0.1"]})
        error = refused(
            f"https://media.test:{tls_server.port}/video.mpg",
            dest,
            allowlist=["media.test"],
            resolver=resolve,
        )
    finally:
        tls_server.close()

    # Connected to the checked IP, introduced itself as the URL's name, and did not
    # trust a certificate no authority signed.
    assert sandbox.connections == [("127.0.0.1", tls_server.port)]
    assert seen_sni == ["media.test"]
    assert error.details["reason"].startswith(f"TLS with media.test port {tls_server.port} failed")
    assert "CERTIFICATE_VERIFY_FAILED" in error.details["reason"]
    assert error.permanent is True
