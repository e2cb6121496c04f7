"""The SSRF-safe HTTP client: reach a URL without letting it reach inside.

Every request refuses each address that is not on the public internet (loopback,
private, link-local, multicast, reserved, unspecified, shared, and their IPv6 and
numeric spellings) unless the operator's allowlist names it, and runs under a
wall-clock deadline. `check_url` checks a URL without connecting (a webhook endpoint
when it is saved); `reach_url` asks whether a URL answers now, with a one-byte GET (a
source URL when its clip is created); `post_checked` POSTs once (a webhook delivery);
`address_problem` says why one address is refused. The pipeline's source download, which follows
redirects, builds on the pieces below: `parse_url`, `checked_addresses`,
`open_response`, `Deadline`, `Allowlist`, `network_failure` and `Failure`. Failures
reach callers as `clypai.lib.errors.StageError`; this module imports no app.

Why not plain requests or requests-hardened: the guard must hold for the address the
socket really connects to. Each host is resolved once (through an injectable resolver),
every answer is checked, and the connection is made to that exact IP literal while the
request carries the original Host header and TLS name; the connected socket's peer is
checked again. requests-hardened pins the same way, but resolves with a hard-wired
`socket.getaddrinfo`, has no per-host allowlist (only "allow all loopback") and no
byte or time limits, so the pinning is done here on urllib3, as it does, in a few lines.
Redirects are not followed here: a caller that follows them (the source download)
checks each hop again.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error

from .errors import StageError

# The default; webhook deliveries send their own.
USER_AGENT = "ClypAI/1.0 (source video fetch)"
logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Sequence[str]]


def system_resolver(host: str) -> list[str]:
    """The addresses a name resolves to, in the system's order of preference."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


@dataclass(frozen=True)
class PostResponse:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes  # the first `max_body` bytes only


def post_checked(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    connect_timeout: float | None = None,
    allowlist: Sequence[str] = (),
    resolver: Resolver | None = None,
    max_body: int = 1024,
) -> PostResponse:
    """POST `body` to `url` once, under the guard (webhook deliveries).

    Inputs: an http or https URL; the body and headers to send; the seconds the whole
    exchange may take; `allowlist`, host names or CIDRs the operator lets through
    although they are not public; `resolver`, host name -> IP strings (default:
    getaddrinfo); how much of the answer's body to keep; `connect_timeout`, the seconds
    a connection may take to open (within `timeout`), so that a host that drops the
    connection attempt costs that, not the whole deadline. Output: the answer's status,
    headers and first `max_body` bytes. Redirects are not followed: a 3xx is returned as
    it is. Side effects: network I/O. Raises StageError (field `url`,
    `details["reason"]`) when no answer came: a refused address, a bad URL, a timeout,
    a connection that failed.
    """
    deadline = Deadline(timeout)
    try:
        return _post(
            url,
            body,
            headers,
            deadline=deadline,
            allowlist=Allowlist.parse(allowlist),
            resolver=resolver or system_resolver,
            max_body=max_body,
            connect_timeout=connect_timeout,
        )
    except Failure as failure:
        raise StageError(
            f"URL is not accessible: {failure.reason}",
            details={"reason": failure.reason, "url": without_password(url)},
            permanent=failure.permanent,
            code="invalid_request",
            field="url",
        ) from failure
    finally:
        deadline.cancel()


def check_url(url: str, *, allowlist: Sequence[str] = (), resolver: Resolver | None = None):
    """Refuse (StageError, field `url`) a URL that the guard would refuse to reach: a bad
    form, credentials, or an address (literal or resolved) that is not public and not
    allowlisted. A name that does not resolve now passes: each request checks again."""
    try:
        target = parse_url(url)
        answers: list[str] = []
        if target.literal is None:
            try:
                answers = list((resolver or system_resolver)(target.host))
            except OSError:
                return
            if not answers:
                return
        checked_addresses(target, lambda host: answers, Allowlist.parse(allowlist))
    except Failure as failure:
        raise StageError(
            f"URL is not accessible: {failure.reason}",
            details={"reason": failure.reason, "url": without_password(url)},
            code="invalid_request",
            field="url",
        ) from failure


@dataclass(frozen=True)
class Reachability:
    """What a one-byte GET of a URL found: `reachable` True (it answered with the file),
    False (refused, unresolvable, no connection, or an HTTP error that will not pass by
    itself), None (undecided: no answer before the deadline, a temporary failure); with
    the reason, for the operator's log."""

    reachable: bool | None
    reason: str = ""


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT = frozenset({408, 425, 429})


def reach_url(
    url: str,
    *,
    timeout: float,
    allowlist: Sequence[str] = (),
    resolver: Resolver | None = None,
    max_redirects: int = 5,
) -> Reachability:
    """Whether `url` answers now, under the guard: a GET of its first byte (`Range:
    bytes=0-0`; a GET rather than a HEAD, as presigned links are signed for GET), following
    redirects one checked hop at a time, within `timeout` seconds in all. Nothing of the
    body is read. Side effects: network I/O only. Never raises for what it finds."""
    deadline = Deadline(timeout)
    try:
        return _reach(
            url,
            deadline=deadline,
            allowlist=Allowlist.parse(allowlist),
            resolver=resolver or system_resolver,
            max_redirects=max_redirects,
        )
    finally:
        deadline.cancel()


def _reach(
    url: str, *, deadline: Deadline, allowlist: Allowlist, resolver: Resolver, max_redirects: int
) -> Reachability:
    current, redirects = url, 0
    while True:
        try:
            target = parse_url(current)
            addresses = checked_addresses(target, resolver, allowlist)
        except Failure as failure:
            # A refused address or form is final; a name that may resolve later is not.
            return Reachability(None if not failure.permanent else False, failure.reason)
        pool = response = None
        try:
            deadline.check()
            pool, response = open_response(
                target, addresses, deadline, headers={"Range": "bytes=0-0"}
            )
            status = response.status
            location = response.headers.get("Location", "").strip()
        except Failure as failure:
            return Reachability(None, failure.reason)
        except (PeerMismatch, Urllib3Error, http.client.HTTPException, OSError) as exc:
            failure = network_failure(exc, target, deadline)
            timed_out = deadline.expired or deadline.remaining() <= 0
            return Reachability(None if timed_out else False, failure.reason)
        finally:
            if response is not None:
                response.close()
            if pool is not None:
                pool.close()
            deadline.release()
        if status in _REDIRECTS and location:
            redirects += 1
            if redirects > max_redirects:
                return Reachability(False, f"too many redirects (at most {max_redirects})")
            current = urljoin(current, location)
            continue
        if 200 <= status < 300 or status == 416:  # 416: there, but empty
            return Reachability(True, f"HTTP {status}")
        if status >= 500 or status in _TRANSIENT:
            return Reachability(None, f"HTTP {status}")
        return Reachability(False, f"HTTP {status}")


def _post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline: Deadline,
    allowlist: Allowlist,
    resolver: Resolver,
    max_body: int,
    connect_timeout: float | None = None,
) -> PostResponse:
    target = parse_url(url)
    addresses = checked_addresses(target, resolver, allowlist)
    deadline.check()
    pool = response = None
    try:
        pool, response = open_response(
            target,
            addresses,
            deadline,
            method="POST",
            body=body,
            headers=headers,
            connect_timeout=connect_timeout,
        )
        status = response.status
        answer_headers = {k.lower(): v for k, v in response.headers.items()}
        kept = b""
        try:  # the status is the answer; a body cut short by the deadline still counts
            while len(kept) < max_body:
                chunk = response.read1(max_body - len(kept))
                if not chunk:
                    break
                kept += chunk
        except (Urllib3Error, http.client.HTTPException, OSError):
            pass
        return PostResponse(status=status, headers=answer_headers, body=kept)
    except (PeerMismatch, Urllib3Error, http.client.HTTPException, OSError) as exc:
        raise network_failure(exc, target, deadline) from exc
    finally:
        if response is not None:
            response.close()
        if pool is not None:
            pool.close()


class Failure(Exception):
    """Why a request was refused or got no answer; `permanent` is False only where a
    retry may pass. Callers turn it into StageError."""

    def __init__(self, reason: str, *, permanent: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class PeerMismatch(Exception):
    """The socket ended up connected to another address than the one checked."""


# --- addresses -------------------------------------------------------------------------

_net = ipaddress.ip_network
_THIS_NETWORK = _net("0.0.0.0/8")
_SHARED = _net("100.64.0.0/10")
_PRIVATE_V4 = (_net("10.0.0.0/8"), _net("172.16.0.0/12"), _net("192.168.0.0/16"))
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_IPV4_COMPATIBLE = _net("::/96")
_NAT64 = _net("64:ff9b::/96")
_UNIQUE_LOCAL = _net("fc00::/7")
# Special-purpose blocks that not every Python's is_global knows (gh-113171) or that
# only route inside an operator's network.
_NOT_GLOBAL = (
    _net("192.0.0.0/24"),
    _net("192.0.2.0/24"),
    _net("192.88.99.0/24"),
    _net("198.18.0.0/15"),
    _net("198.51.100.0/24"),
    _net("203.0.113.0/24"),
    _net("64:ff9b:1::/48"),
    _net("100::/64"),
    _net("2001::/23"),
    _net("2001:db8::/32"),
    _net("3fff::/20"),
    _net("5f00::/16"),
)


def address_problem(ip: IPAddress) -> str | None:
    """Why `ip` may not be fetched from ("loopback", "private", …), None if public."""
    if ip.version == 4:
        return _ipv4_problem(ip)
    return _ipv6_problem(ip)


def _ipv4_problem(ip: ipaddress.IPv4Address) -> str | None:
    if ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _SHARED:
        return "shared (100.64.0.0/10)"
    if any(ip in net for net in _PRIVATE_V4):
        return "private"
    if ip == _BROADCAST:
        return "broadcast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global or any(ip in net for net in _NOT_GLOBAL):
        return "not globally routable"
    return None


def _ipv6_problem(ip: ipaddress.IPv6Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.ipv4_mapped is not None:
        problem = _ipv4_problem(ip.ipv4_mapped)
        return problem and f"an IPv4-mapped form of {ip.ipv4_mapped}, which is {problem}"
    # Forms that carry an IPv4 address a gateway may forward to.
    embedded: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip in _IPV4_COMPATIBLE:
        embedded.append(("an IPv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    if ip in _NAT64:
        embedded.append(("a NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    if ip.sixtofour is not None:
        embedded.append(("a 6to4", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        embedded += [("a Teredo", client), ("a Teredo", server)]
    for kind, v4 in embedded:
        problem = _ipv4_problem(v4)
        if problem:
            return f"{kind} form of {v4}, which is {problem}"
    if ip in _NAT64:
        return None  # DNS64 on an IPv6-only network: a public IPv4 host, fine
    if ip.is_link_local:
        return "link-local"
    if ip.is_site_local:
        return "site-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _UNIQUE_LOCAL:
        return "private (unique local)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global or any(ip in net for net in _NOT_GLOBAL):
        return "not globally routable"
    return None


@dataclass(frozen=True)
class Allowlist:
    """Operator exceptions: a host name lets through whatever that exact name resolves
    to; a CIDR (or single IP) lets through its addresses whatever name led there."""

    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Allowlist:
        names, networks = set(), []
        for entry in entries:
            entry = entry.strip().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, ip: IPAddress) -> bool:
        if host in self.names:
            return True
        candidates = [ip]
        if ip.version == 6 and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(
            c in net for c in candidates for net in self.networks if c.version == net.version
        )


# --- URLs ------------------------------------------------------------------------------

_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


@dataclass(frozen=True)
class Target:
    """A URL the guard accepts the form of, taken apart for the request."""

    scheme: str
    host: str  # lower-case ASCII, no brackets, no trailing dot
    literal: IPAddress | None  # the address when the host is written as one
    port: int
    host_header: str
    request_target: str


def _parse_ipv4_numeric(host: str) -> ipaddress.IPv4Address:
    """An IPv4 host in any form inet_aton and browsers accept: 2130706433, 0177.0.0.1,
    0x7f.1, 127.1. Raises ValueError when it is not a valid one."""
    parts = host.split(".")
    if len(parts) > 4 or any(not p for p in parts):
        raise ValueError(host)
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part, 10))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(host)
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def parse_url(url: str) -> Target:
    """`url` taken apart, or Failure when its form is refused (not http(s), credentials,
    no host, a zone, a host that is neither a valid name nor a valid address)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise Failure("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Failure(f"URL is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Failure(f"scheme {scheme or '(none)'} is not allowed; use http or https")
    if "@" in parts.netloc:
        raise Failure("URL must not contain credentials (user:password@)")
    host = parts.hostname or ""
    if not host:
        raise Failure("URL has no host")
    if port == 0:
        raise Failure("port 0 is not allowed")

    literal: IPAddress | None = None
    if ":" in host:
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise Failure(f"host [{host}] is not a valid IPv6 address") from None
        if literal.scope_id:
            raise Failure(f"host [{host}] has a zone; zones are not allowed")
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise Failure(f"host {host} is not a valid host name") from None
        host = host.rstrip(".") if host.endswith(".") and not host.endswith("..") else host
        if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
            # Ends in a number: an IPv4 address in some spelling, never a DNS name.
            try:
                literal = _parse_ipv4_numeric(host)
            except ValueError:
                raise Failure(f"host {host} is not a valid IPv4 address") from None
        elif len(host) > 253 or not _HOST_NAME.fullmatch(host):
            raise Failure(f"host {host} is not a valid host name")

    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    host_header = f"[{host}]" if ":" in host else host
    if port != default_port:
        host_header += f":{port}"
    safe = "!$&'()*+,/:;=?@~%-._[]"
    request_target = quote(parts.path or "/", safe=safe)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=safe)
    return Target(scheme, host, literal, port, host_header, request_target)


def without_password(url: str) -> str:
    """`url` as it may be shown: a password in it replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


# --- resolution and connection ---------------------------------------------------------


def checked_addresses(target: Target, resolver: Resolver, allowlist: Allowlist) -> list[IPAddress]:
    """The addresses to connect to, every one of them checked; a single refused answer
    refuses the host (a name mixing public and private answers is not to be trusted)."""
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        try:
            answers = list(resolver(target.host))
        except socket.gaierror as exc:
            raise Failure(
                f"cannot resolve host {target.host}: {exc.strerror or exc}",
                permanent=exc.errno != socket.EAI_AGAIN,
            ) from exc
        except OSError as exc:
            raise Failure(f"cannot resolve host {target.host}: {exc}", permanent=False) from exc
        if not answers:
            raise Failure(f"host {target.host} has no address")
        addresses = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError:
                raise Failure(f"host {target.host} resolved to an invalid address") from None
    usable: list[IPAddress] = []
    for ip in addresses:
        problem = address_problem(ip)
        if problem and not allowlist.allows(target.host, ip):
            if target.literal is not None:
                raise Failure(f"address {ip} is {problem}")
            # Not the address a name resolves to: the caller must not learn this
            # network's internal DNS from our answers. The operator's log has it.
            logger.info("refused %s: it resolves to %s, %s", target.host, ip, problem)
            raise Failure(f"host {target.host} resolves to an address that is not public")
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # connect over IPv4 to the address that was checked
        if ip not in usable:
            usable.append(ip)
    return usable


class Deadline:
    """A wall-clock limit on a whole exchange (a download with its redirects). Socket
    timeouts only bound each wait, so a server that trickles a byte at a time would never
    trip them: at the deadline a timer shuts the connected sockets down, which ends any
    blocked read at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if self.expired or self.remaining() <= 0:
            raise Failure(f"timed out after {self.seconds:g} s", permanent=False)

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor: TLS wrapping detaches the original socket object.
        dup = sock.dup()
        with self._lock:
            self._sockets.append(dup)
            expired = self.expired
        if expired:
            self._shutdown(dup)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def release(self) -> None:
        """Forget (and close the duplicates of) the sockets watched so far."""
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets = []

    def cancel(self) -> None:
        self._timer.cancel()
        self.release()


def _pinned_connection(base: type[HTTPConnection], expected: IPAddress, deadline: Deadline):
    class PinnedConnection(base):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            peer = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
            if peer.version == 6 and peer.ipv4_mapped is not None:
                peer = peer.ipv4_mapped
            if (peer.version, int(peer)) != (expected.version, int(expected)):
                sock.close()
                raise PeerMismatch(f"connected to {peer}, not to the checked {expected}")
            deadline.watch(sock)
            return sock

    return PinnedConnection


def open_response(
    target: Target,
    addresses: list[IPAddress],
    deadline: Deadline,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    connect_timeout: float | None = None,
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    """A response from the first address that accepts a connection (`headers` are added
    to, or replace, the defaults; Host is always the target's). Each connection is pinned
    to its checked address and watched by `deadline`; the caller closes the response and
    the pool. Redirects are returned as they are."""
    extra = {k: v for k, v in (headers or {}).items() if k.lower() != "host"}
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        "Connection": "close",
        **extra,
    }
    tls_name = str(target.literal) if target.literal is not None else target.host
    for index, ip in enumerate(addresses):
        deadline.check()
        remaining = max(deadline.remaining(), 0.001)
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                str(ip),
                target.port,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
                assert_hostname=tls_name,
                server_hostname=tls_name,
            )
            base = HTTPSConnection
        else:
            pool = urllib3.HTTPConnectionPool(str(ip), target.port, maxsize=1, retries=False)
            base = HTTPConnection
        pool.ConnectionCls = _pinned_connection(base, ip, deadline)
        try:
            response = pool.urlopen(
                method,
                target.request_target,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(
                    connect=min(remaining, connect_timeout) if connect_timeout else remaining,
                    read=remaining,
                ),
            )
            return pool, response
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError):
            pool.close()
            if index == len(addresses) - 1:
                raise
        except BaseException:
            pool.close()
            raise
    raise AssertionError("unreachable: no address to connect to")


def network_failure(exc: BaseException, target: Target, deadline: Deadline) -> Failure:
    """The Failure to report for an error raised while connecting or reading."""
    if deadline.expired or deadline.remaining() <= 0:
        return Failure(f"timed out after {deadline.seconds:g} s", permanent=False)
    if isinstance(exc, PeerMismatch):
        return Failure(str(exc))
    where = f"{target.host} port {target.port}"
    if isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError | ssl.CertificateError):
        return Failure(f"TLS with {where} failed: {exc}")
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        cause = exc.__cause__ or exc
        return Failure(f"cannot connect to {where}: {cause}", permanent=False)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return Failure(f"no connection to {where} within the connect timeout", permanent=False)
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        return Failure(f"connection to {where} timed out", permanent=False)
    return Failure(f"connection to {where} broke: {exc}", permanent=False)
