"""Webhook tests: a real HTTP receiver on loopback, real RQ workers, and a sandbox.

No packet leaves the machine: the `sandbox` fixture (autouse) records every socket
connect and DNS lookup in the process and refuses any past loopback; names resolve only
through `sandbox.names`. The receiver listens on 127.0.0.1, which the delivery guard
refuses unless CLYPAI_URL_ALLOWLIST names it: the `receiver` fixture does.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from clypai.queues import get_queue

from .support import Receiver


class Sandbox:
    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.lookups: list[str] = []
        self.names: dict[str, list[str]] = {}

    def outside(self) -> list[tuple[str, int]]:
        return [a for a in self.connections if not ipaddress.ip_address(a[0]).is_loopback]


@pytest.fixture(autouse=True)
def sandbox(monkeypatch) -> Sandbox:
    box = Sandbox()
    real_socket, real_getaddrinfo = socket.socket, socket.getaddrinfo

    def check(address) -> None:
        if isinstance(address, tuple):
            host, port = address[0], address[1]
            box.connections.append((host, port))
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise PermissionError(f"sandbox: no connections past loopback ({host})")

    class GuardedSocket(real_socket):
        def connect(self, address):
            check(address)
            return super().connect(address)

        def connect_ex(self, address):
            check(address)
            return super().connect_ex(address)

    def getaddrinfo(host, port=None, *args, **kwargs):
        try:
            ipaddress.ip_address(str(host).split("%")[0])
        except ValueError:
            box.lookups.append(host)
            if host not in box.names:
                raise socket.gaierror(socket.EAI_NONAME, "sandbox: no DNS in tests") from None
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                for a in box.names[host]
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", GuardedSocket)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return box


@pytest.fixture
def receiver(settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhooks_queue(settings):
    """The "webhooks" queue on real Redis (this run's database), emptied around a test;
    tiny retry delays so schedules run in seconds."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [0.2, 0.4, 0.8]
    settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS = 5.0
    queue = get_queue("webhooks")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()
