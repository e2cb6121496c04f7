"""The test sandbox: the process may only talk to loopback.

`install(monkeypatch)` wraps socket.socket and socket.getaddrinfo for one test: every
connect and DNS lookup is recorded; a connection past loopback is refused; names resolve
only through `Sandbox.names` (no DNS in tests). A refusal "before any connection" is
asserted as an empty `connections`.
"""

from __future__ import annotations

import ipaddress
import socket


class Sandbox:
    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.lookups: list[str] = []
        self.names: dict[str, list[str]] = {}

    def outside(self) -> list[tuple[str, int]]:
        return [a for a in self.connections if not ipaddress.ip_address(a[0]).is_loopback]


def install(monkeypatch) -> Sandbox:
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
