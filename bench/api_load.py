"""API load: the web process as production runs it, at a steady rate, and a quota raced.

Starts gunicorn as deploy/compose.yaml does (`gunicorn clypai.wsgi:application`, gthread,
`--workers ${WEB_CONCURRENCY:-3} --threads 4 --timeout 120`, DEBUG off, the production
database settings: `DB_CONN_MAX_AGE=60` as `manage.py serve` gives its web, or
--conn-max-age N; 0 is a new connection per request) on a free loopback
port, against real PostgreSQL (a database of its own, made and migrated here) and Redis
(a database number of its own, emptied before and after). Then:

1. Reference: GET /healthz (one `SELECT 1`) at the same steady rate, for --reference-seconds.
2. Load: GET /v1/clips (pages of 20) and GET /v1/clips/{id}, half each, at --rate
   requests a second for --seconds, open loop (each request is sent at its scheduled
   time whatever came back before, and its latency counts from that time, so a slow
   server cannot slow the client down and hide its own delay; at most 512 wait at once,
   past that a due request counts as an error). p50, p99, max, errors, the answers
   a second, and each figure's ratio to the reference's. The machine's load average
   before and after is printed too: on a shared machine it says what the figures mean.
3. SQL queries per request: counted in the server (a gunicorn hook, bench/_query_count.py,
   wraps the WSGI app with a Django `execute_wrapper` and reports the count in a header),
   for list pages of 1, 20 and 100 clips and for one clip: constant per page means no query
   per row.
4. Quota: a team with a monthly quota of 100 clip generations, 200 POST /v1/clips sent at
   once on 200 connections: how many were accepted (201/202), how many refused and how,
   and how many clips and generations PostgreSQL counted. The limit on a team's work in
   flight is raised to 200 for it (nothing drains the queue here); `--in-flight-limit 20`
   (the default in production) shows that limit refusing first.

It prints the figures (and --json writes them) and asserts none of them; the targets
(issue 16) are p99 < 50 ms and exactly 100 accepted.

Usage: .venv/bin/python bench/api_load.py [--rate 200] [--seconds 60] [--workers 3]
         [--database-url postgres://postgres@127.0.0.1:5432/clypai_bench]
         [--redis-url redis://127.0.0.1:6379/14] [--conn-max-age N] [--in-flight-limit N]
         [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLIPS = 300  # in the load team's project: enough for 100-clip pages
QUOTA = 100
RACERS = 200
# Requests waiting for an answer at once, at most (each holds a connection); past it a due
# request is counted as an error and not sent, rather than opening thousands of sockets.
MAX_IN_FLIGHT = 512


# The server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(args, folder: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="clypai.settings",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        MEDIA_ROOT=str(folder / "media"),
        CLYPAI_VAR_DIR=str(folder / "var"),
        CLYPAI_WORK_DIR=str(folder / "work"),
        CLYPAI_JOBS_INLINE="false",
        # The creates name a URL nothing serves; checking it is not what is measured.
        CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS="0",
        PYTHONPATH=str(ROOT),
    )
    # No worker drains the queue here: the limit on a team's work in flight (20 by
    # default) would stop the race at 20 before the quota. --in-flight-limit 20 shows it.
    env["CLYPAI_MAX_IN_FLIGHT_PER_TEAM"] = str(args.in_flight_limit)
    if args.conn_max_age is not None:
        env["DB_CONN_MAX_AGE"] = str(args.conn_max_age)
    else:
        env.pop("DB_CONN_MAX_AGE", None)
    return env


def start_gunicorn(args, env: dict, port: int, log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "clypai.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={args.workers}",
        "--worker-class=gthread",
        "--threads=4",
        "--timeout=120",
        f"--access-logfile={log.with_suffix('.access')}",
        f"--config={ROOT / 'bench' / '_query_count.py'}",
    ]
    out = open(log, "ab")  # noqa: SIM115 (the child holds it)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)
    raise SystemExit("gunicorn did not listen within 60 s")


# The data --------------------------------------------------------------------------------


def prepare_database(args) -> None:
    """Create the bench's database if it is missing, and migrate it."""
    import psycopg

    url = urlsplit(args.database_url)
    name = url.path.lstrip("/")
    admin = args.database_url.replace(f"/{name}", "/postgres", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_teams() -> dict:
    """The load team (CLIPS completed clips with files, no limits) and the quota team
    (QUOTA generations a month); each with a key. Earlier runs' teams are removed."""
    from django.core.files.base import ContentFile

    from clips.models import Clip, Job
    from projects.models import Project, Team
    from projects.services import api_key_create, default_project

    earlier = Team.objects.filter(name__startswith="bench-")
    for model in (Clip, Job, Project):  # their projects are protected while they exist
        model.objects.filter(team__in=earlier).delete()
    earlier.delete()
    load = Team.objects.create(name="bench-load", requests_per_minute=10_000_000)
    quota = Team.objects.create(
        name="bench-quota", monthly_clip_quota=QUOTA, requests_per_minute=10_000_000
    )
    project = default_project(team=load)
    words = [{"word": "word", "start": 1.0 + k / 2, "end": 1.4 + k / 2} for k in range(40)]
    clip_ids = []
    for number in range(CLIPS):
        clip = Clip(
            team=load,
            project=project,
            name=f"Clip {number}",
            status="completed",
            source_url="https://example.com/v.mp4",
            start_time=10.0,
            end_time=40.0,
            duration=30.0,
            score=0.8,
            words=words,
            metadata={"hooks": [], "highlights": [], "reason": "bench", "topics": []},
        )
        clip.video.save("v.mp4", ContentFile(b"\x00" * 64), save=False)
        clip.thumbnail.save("t.jpg", ContentFile(b"\x00" * 64), save=False)
        clip.save()
        clip_ids.append(clip.pk)
    return {
        "load_key": api_key_create(team=load, name="bench").raw_key,
        "quota_key": api_key_create(team=quota, name="bench").raw_key,
        "quota_team": quota.pk,
        "clip_ids": clip_ids,
    }


# The client -----------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; answers read by Content-Length or chunked."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict, body: bytes = b""):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP answer: {status_line[:40]!r}")
        status = int(parts[1])
        answer_headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            content = b""
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                content += await self.reader.readexactly(size)
                await self.reader.readline()
            while (await self.reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
        else:
            length = int(answer_headers.get("content-length", 0))
            content = await self.reader.readexactly(length)
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return status, answer_headers, content

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def steady(port: int, rate: float, seconds: float, make_request) -> dict:
    """Open loop: request i is due at start + i/rate; latency counts from when it was due."""
    idle: list[Connection] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}
    total = int(rate * seconds)

    in_flight = [0]
    retried = [0]

    async def one(due: float, index: int):
        if in_flight[0] >= MAX_IN_FLIGHT:  # the server is that far behind: count, not send
            errors["not sent: server behind"] = errors.get("not sent: server behind", 0) + 1
            return
        in_flight[0] += 1
        try:
            await attempt(due, index)
        finally:
            in_flight[0] -= 1

    async def attempt(due: float, index: int):
        reused = bool(idle)
        connection = idle.pop() if idle else Connection(port)
        method, path, headers = make_request(index)
        try:
            try:
                status, _, _ = await connection.request(method, path, headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # gunicorn closes a keep-alive connection idle for 2 s; a GET sent as it
                # closed is sent again on a new one, as HTTP clients do.
                connection.close()
                retried[0] += 1
                status, _, _ = await connection.request(method, path, headers)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            connection.close()
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(time.perf_counter() - due)
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
        if connection.writer is not None:
            idle.append(connection)

    start = time.perf_counter() + 0.2
    tasks = []
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, index)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for connection in idle:
        connection.close()
    latencies.sort()
    return {
        "requests": total,
        "answered": len(latencies),
        "answered_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2)
        if latencies
        else None,
        "max_ms": round(1000 * latencies[-1], 2) if latencies else None,
        "errors": errors,
        "sent_again_after_keep_alive_closed": retried[0],
    }


async def queries_per_request(port: int, key: str, clip_ids: list[str]) -> dict:
    auth = {"Authorization": f"Bearer {key}"}
    found = {}
    connection = Connection(port)
    paths = {
        "GET /healthz": ("/healthz", {}),
        "GET /v1/clips?limit=1": ("/v1/clips?limit=1", auth),
        "GET /v1/clips (20)": ("/v1/clips", auth),
        "GET /v1/clips?limit=100": ("/v1/clips?limit=100", auth),
        "GET /v1/clips/{id}": (f"/v1/clips/{clip_ids[0]}", auth),
    }
    for name, (path, headers) in paths.items():
        counts = set()
        for _ in range(3):  # the first request of a thread may open its connection
            status, answer, _ = await connection.request("GET", path, headers)
            assert status == 200, (path, status)
            counts.add(int(answer["x-bench-queries"]))
        found[name] = sorted(counts)
    connection.close()
    return found


async def race(port: int, key: str, count: int) -> dict:
    """`count` clip creates, each on its own connection, released together."""
    connections = [Connection(port) for _ in range(count)]
    for connection in connections:  # connect first, so the requests leave together
        connection.reader, connection.writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"sourceVideoUrl": "https://example.com/talk.mp4"}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(c.request("POST", "/v1/clips", headers, body) for c in connections),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    statuses: dict[str, int] = {}
    codes: dict[str, int] = {}
    for answer in answers:
        if isinstance(answer, BaseException):
            statuses[type(answer).__name__] = statuses.get(type(answer).__name__, 0) + 1
            continue
        status, _, content = answer
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status >= 400:
            code = json.loads(content).get("error", {}).get("code", "?")
            codes[code] = codes.get(code, 0) + 1
    accepted = sum(n for s, n in statuses.items() if s in ("201", "202"))
    return {"sent": count, "accepted": accepted, "statuses": statuses, "refusals": codes,
            "seconds": round(elapsed, 2)}  # fmt: skip


# The run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reference-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 3)))
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/clypai_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--conn-max-age", type=int, default=60)  # serve's default
    parser.add_argument("--in-flight-limit", type=int, default=RACERS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="clypai-api-load-"))
    env = server_env(args, folder)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    import django

    django.setup()
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    prepare_database(args)
    data = make_teams()

    port = free_port()
    log = folder / "gunicorn.log"
    server = start_gunicorn(args, env, port, log)
    figures: dict = {
        "server": f"gunicorn gthread, {args.workers} workers x 4 threads, DB_CONN_MAX_AGE="
        f"{args.conn_max_age if args.conn_max_age is not None else 'unset (0)'}",
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 1) for x in os.getloadavg()],
        "rate": args.rate,
    }
    try:
        auth = {"Authorization": f"Bearer {data['load_key']}"}
        clip_ids = data["clip_ids"]

        def healthz(index):
            return "GET", "/healthz", {}

        def api(index):
            if index % 2:
                return "GET", f"/v1/clips/{clip_ids[index % len(clip_ids)]}", auth
            return "GET", "/v1/clips", auth

        asyncio.run(steady(port, args.rate, 2, api))  # warm every worker and thread
        reference = asyncio.run(steady(port, args.rate, args.reference_seconds, healthz))
        load = asyncio.run(steady(port, args.rate, args.seconds, api))
        figures["reference /healthz"] = reference
        figures["load: list and get"] = load
        figures["ratio to the reference"] = {
            key: round(load[key] / reference[key], 2)
            for key in ("p50_ms", "p99_ms")
            if load[key] and reference[key]
        }
        figures["sql queries per request"] = asyncio.run(
            queries_per_request(port, data["load_key"], clip_ids)
        )

        quota = asyncio.run(race(port, data["quota_key"], RACERS))
        from clips.models import Clip
        from projects.models import MonthlyUsage

        quota["quota"] = QUOTA
        quota["clips_in_postgresql"] = Clip.objects.filter(team_id=data["quota_team"]).count()
        usage = MonthlyUsage.objects.filter(team_id=data["quota_team"]).first()
        quota["generations_counted"] = usage.clips_created if usage else 0
        figures["quota race"] = quota
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        redis.Redis.from_url(args.redis_url).flushdb()

    figures["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
