"""A PostgreSQL cluster of a test's own, on loopback and a free port, that the test may
stop and start (the shared server on 5432 is never touched).

`initdb` runs as the `postgres` user (PostgreSQL refuses to run as root) into a
temporary folder; trust authentication, no fsync. `database_copy` loads the test
database's schema and rows into it (`pg_dump | psql`, faster than migrating anew)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """One PostgreSQL server of this test: `start`, `stop`, `restart`, `remove`."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="clypai-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        owner = pwd.getpwnam("postgres")
        os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._as_postgres(
            _bin("initdb"),
            "-D",
            self.data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _as_postgres(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, args)],
            check=check,
            capture_output=True,
            text=True,
        )

    def pg_ctl(self, *args: str, wait_for_it: bool = True) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        flags = ["-w"] if wait_for_it else ["-W"]
        self._as_postgres(
            _bin("pg_ctl"), *args, *flags, "-D", self.data, "-o", options,
            "-l", self.dir / "server.log", "-t", "60",
        )  # fmt: skip

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, as a restart or failover cuts them."""
        self.pg_ctl("stop", "-m", "fast")

    def remove(self) -> None:
        self._as_postgres(_bin("pg_ctl"), "stop", "-m", "immediate", "-D", self.data, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def database_copy(self, *, source: dict, name: str) -> None:
        """Create database `name` here holding what `source` (a Django settings_dict of
        a database on another server) holds."""
        self._as_postgres(_bin("createdb"), "-h", "127.0.0.1", "-p", self.port, name)
        dump = subprocess.run(
            [
                _bin("pg_dump"),
                "--no-owner",
                "-h",
                source["HOST"] or "127.0.0.1",
                "-p",
                str(source["PORT"] or 5432),
                "-U",
                source["USER"],
                source["NAME"],
            ],  # fmt: skip
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            [_bin("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port)]
            + ["-U", "postgres", "-d", name],
            input=dump,
            check=True,
            capture_output=True,
        )
