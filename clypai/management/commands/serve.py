"""`manage.py serve`: ClypAI on one machine as production runs it (`make run` starts it).

With Redis (REDIS_URL):
- gunicorn with gthread workers (CLYPAI_WEB_WORKERS, CLYPAI_WEB_THREADS,
  CLYPAI_WEB_TIMEOUT_SECONDS) on CLYPAI_WEB_HOST:PORT;
- CLYPAI_WORKERS RQ worker processes on every queue, the first with RQ's scheduler;
- the sweep as a loop process (`manage.py sweep --loop`).
Without it (the embedded default: SQLite, local disk) gunicorn alone, whose process runs
the jobs in its background threads (`clypai/background.py`), never inside a request.
gunicorn reads `clypai/gunicorn_conf.py` too: its own lines in the app's log format, and
in the embedded default the hand-back of jobs still running when it stops.
`--web-only` replaces this process with that same gunicorn (compose's and the image's
web process), so they run with the same flags.

Each process is restarted when it dies, after a backoff that grows while it keeps dying.
Every process writes its metrics to PROMETHEUS_MULTIPROC_DIR, which /metrics adds up.
On Ctrl-C or SIGTERM every process gets SIGTERM: gunicorn finishes its requests, each
RQ worker its current task (and hands it back, queued again at once, when
CLYPAI_STOP_GRACE_SECONDS pass first), gunicorn in the embedded default its job threads'
(handed back, queued at the next start); what is still running a little after that is
killed, and so is any process one of them left behind (an ffmpeg of a stopped task).
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from clypai import background
from clypai.lib.processes import descendants
from clypai.queues import QUEUES

logger = logging.getLogger("clypai.serve")

PR_SET_PDEATHSIG = 1
# Seconds past the grace period before what is still running is killed: an RQ worker
# needs a moment to stop its task and hand it back.
KILL_MARGIN_SECONDS = 15.0
BACKOFF_MAX_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0  # a child that ran this long starts its backoff anew
_OUTPUT_LOCK = threading.Lock()  # whole lines from the relays of every child


def _child_setup() -> None:
    """In each child before exec: a process group of its own (Ctrl-C reaches serve only,
    which stops the children in order), and SIGTERM when serve itself dies."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):  # not Linux: serve's own stop still reaches them
        pass


# The web's database connections are kept between requests unless DB_CONN_MAX_AGE says
# otherwise: a new PostgreSQL connection per request halves what a web process answers
# (bench/api_load.py: 97 against 192 list-or-get requests a second on 2 cores). Only the
# web's: RQ's work horses are forked per task and open their own.
WEB_CONN_MAX_AGE_SECONDS = 60


def _web_env() -> dict[str, str]:
    if "DB_CONN_MAX_AGE" in os.environ:
        return {}
    return {"DB_CONN_MAX_AGE": str(WEB_CONN_MAX_AGE_SECONDS)}


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    restarts: int = field(default=0)
    relays: list[threading.Thread] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # this child's own, over serve's

    def start(self, env: dict) -> None:
        relay = settings.CLYPAI_LOG_FORMAT == "json"
        pipe = subprocess.PIPE if relay else None
        self.process = subprocess.Popen(
            self.argv,
            env={**env, **self.env},
            cwd=settings.BASE_DIR,
            preexec_fn=_child_setup,
            stdout=pipe,
            stderr=pipe,
        )
        self.started_at, self.restart_at = time.monotonic(), None
        if relay:
            self.relays = [
                threading.Thread(target=_relay, args=(source, target, self.name), daemon=True)
                for source, target in (
                    (self.process.stdout, sys.stdout),
                    (self.process.stderr, sys.stderr),
                )
            ]
            for thread in self.relays:
                thread.start()

    def drain(self, timeout: float) -> None:
        """Wait (a little) for the relays to pass on the last lines of a child that ended."""
        deadline = time.monotonic() + timeout
        for thread in self.relays:
            thread.join(max(deadline - time.monotonic(), 0))

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            try:
                os.kill(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the child's process group (RQ's work horse has a group of its own)."""
        if self.process is None:
            return
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _relay(source, target, name: str) -> None:
    """Pass a child's output on, line by line, each one a JSON object: its log lines as
    they are; any other (a native library writing to the file descriptor itself, as
    TensorFlow Lite does, a traceback Python prints) as the message of one of ours."""
    output = logging.getLogger(f"clypai.serve.{name}")
    for raw in iter(source.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line.strip():
            continue
        if _is_json_object(line):
            with _OUTPUT_LOCK:
                target.write(line + "\n")
                target.flush()
        else:
            output.info(line, extra={"output": "stderr" if target is sys.stderr else "stdout"})
    source.close()


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class Command(BaseCommand):
    help = (
        "Run ClypAI as production does on one machine: gunicorn, the RQ workers (one with "
        "the scheduler) and the sweep loop, each restarted when it dies; with no REDIS_URL, "
        "gunicorn alone with in-process job threads. Ctrl-C or SIGTERM stops them cleanly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="default: PORT (8000)")
        parser.add_argument(
            "--workers", type=int, default=None, help="RQ workers (default: CLYPAI_WORKERS)"
        )
        parser.add_argument(
            "--web-only",
            action="store_true",
            help="become the web process alone (gunicorn, as serve starts it): for "
            "compose and containers, which start workers and the sweep on their own",
        )

    def handle(self, *args, port=None, workers=None, web_only=False, **options):
        port = port or settings.PORT
        embedded = settings.CLYPAI_JOBS_INLINE
        workers = settings.CLYPAI_WORKERS if workers is None else workers
        children = self.plan(port=port, workers=0 if embedded else workers, embedded=embedded)
        env = self.env = self.environment()
        if web_only:
            web = children[0]
            os.execve(web.argv[0], web.argv, {**env, **web.env})  # gunicorn gets the signals

        stop = {"signal": None}

        def request_stop(signum, frame):
            stop["signal"] = signum

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        for child in children:
            child.start(env)
        self.say(f"started {', '.join(c.name for c in children)}")
        self.announce_when_up(port, children, stop)
        while stop["signal"] is None:
            self.supervise(children, env)
            time.sleep(0.2)
        self.say(f"stopping (signal {signal.Signals(stop['signal']).name})")
        self.stop_all(children)
        for child in children:
            child.drain(timeout=2.0)
        self.say("stopped")

    # What runs -------------------------------------------------------------------------

    def plan(self, *, port: int, workers: int, embedded: bool) -> list[Child]:
        python, manage = sys.executable, str(Path(settings.BASE_DIR) / "manage.py")
        web_workers = settings.CLYPAI_WEB_WORKERS or (1 if embedded else 2 * _cores() + 1)
        grace = settings.CLYPAI_STOP_GRACE_SECONDS
        children = [
            Child(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "clypai.wsgi:application",
                    "--bind",
                    f"{settings.CLYPAI_WEB_HOST}:{port}",
                    "--worker-class",
                    "gthread",
                    "--workers",
                    str(web_workers),
                    "--threads",
                    str(settings.CLYPAI_WEB_THREADS),
                    "--timeout",
                    str(settings.CLYPAI_WEB_TIMEOUT_SECONDS),
                    "--graceful-timeout",
                    # In the embedded default, the time to hand job threads' work back.
                    str(math.ceil(grace + background.HAND_BACK_MARGIN_SECONDS)),
                    "--forwarded-allow-ips",
                    os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
                    "--config",
                    "python:clypai.gunicorn_conf",
                    *_no_control_socket(),
                ],
                env=_web_env(),
            )
        ]
        media = [name for name in QUEUES if name != "webhooks"]
        for n in range(1, workers + 1):
            argv = [python, manage, "rqworker", *media]
            if n == 1:
                argv.append("--with-scheduler")  # RQ's scheduler: retries, later work
            children.append(Child(f"worker-{n}", argv))
        if workers:
            # Webhook deliveries on a worker of their own: a slow endpoint holds it, never
            # a media worker (its retries wait in its own scheduler).
            children.append(
                Child("webhooks", [python, manage, "rqworker", "webhooks", "--with-scheduler"])
            )
            children.append(Child("sweep", [python, manage, "sweep", "--loop"]))
        return children

    def environment(self) -> dict:
        """The children's environment: this one, with a clean metrics folder."""
        env = dict(os.environ)
        folder = env.get("PROMETHEUS_MULTIPROC_DIR") or str(
            Path(settings.VAR_DIR) / "prometheus" / str(os.getpid())
        )
        path = Path(folder)
        if path.exists():  # samples of processes from an earlier start mean nothing now
            shutil.rmtree(path)
        path.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = folder
        return env

    # Running ---------------------------------------------------------------------------

    def supervise(self, children: list[Child], env: dict) -> None:
        now = time.monotonic()
        for child in children:
            if child.running():
                continue
            if child.restart_at is None:
                code = child.process.returncode if child.process else None
                if now - child.started_at > HEALTHY_AFTER_SECONDS:
                    child.failures = 0
                delay = min(2.0**child.failures, BACKOFF_MAX_SECONDS)
                child.failures += 1
                child.restart_at = now + delay
                self.say(f"{child.name} exited ({code}); restarting in {delay:g} s")
            elif now >= child.restart_at:
                child.restarts += 1
                child.start(env)

    def announce_when_up(self, port: int, children: list[Child], stop: dict) -> None:
        base = settings.CLYPAI_PUBLIC_URL or f"http://localhost:{port}"
        deadline = time.monotonic() + 120
        while stop["signal"] is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                self.supervise(children, self.env)
                time.sleep(0.3)
        else:
            return
        # A log line like every other (one JSON object under CLYPAI_LOG_FORMAT=json).
        logger.info(
            "ClypAI is running: site %s/ admin %s/admin/ API docs %s/docs/ (Ctrl-C stops it)",
            base,
            base,
            base,
            extra={"site": f"{base}/", "admin": f"{base}/admin/", "docs": f"{base}/docs/"},
        )

    def stop_all(self, children: list[Child]) -> None:
        below = self.below(children)
        for child in children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.CLYPAI_STOP_GRACE_SECONDS + KILL_MARGIN_SECONDS
        while time.monotonic() < deadline and any(c.running() for c in children):
            below |= self.below(children)
            time.sleep(0.2)
        for child in children:
            if not child.running():
                continue
            self.say(f"{child.name} did not stop in time: killed")
            child.kill()
            if child.process is not None:
                try:
                    child.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        # A process a child started and left running as it stopped (ffmpeg under a job
        # thread that was handed back) would go on, orphaned: nothing of serve stays.
        for pid in below:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.say(f"process {pid} was left behind: killed")
                except ProcessLookupError:
                    pass

    @staticmethod
    def below(children: list[Child]) -> set[int]:
        """Every process running under the children now."""
        return {
            pid for child in children if child.running() for pid in descendants(child.process.pid)
        }

    def say(self, message: str) -> None:
        logger.info("serve: %s", message)


def _alive(pid: int) -> bool:
    """Running (a zombie is not: it only waits to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _no_control_socket() -> list[str]:
    """gunicorn 24+ opens a control socket at one path per user (~/.gunicorn): two sites
    on one machine would fight over it, and nothing here uses it."""
    from gunicorn.config import KNOWN_SETTINGS

    return (
        ["--no-control-socket"]
        if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS)
        else []
    )


def _cores() -> int:
    return os.cpu_count() or 1
