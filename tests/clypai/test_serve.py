"""The issue's proof: `manage.py serve` (what `make run` starts) as production runs it.

gunicorn, 2 RQ workers (one with the scheduler) and the sweep loop against real
PostgreSQL (this test's database), a Redis server of the test's own (so it can stop it)
and moto's S3 server, all on loopback. It checks that /healthz and /readyz answer,
/readyz turns 503 naming Redis while Redis is down, three concurrent jobs complete,
/metrics shows their stages, and a SIGTERM to a busy worker loses nothing: its job is
handed back and completes, once, long before the sweep's staleness delay.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from redis import Redis
from rq import Worker

from clips.models import Clip, Job
from projects.models import MonthlyUsage
from tests.clypai.test_health import sample
from tests.processes import ROOT, descendants, process_env, stop, wait_for
from tests.s3 import start_s3_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VIDEO = "talking_head/grid_concat_11clips_33s.mp4"
GRACE_SECONDS = 2.0
STALE_SECONDS = 900  # far beyond the test: only a hand-back can requeue in time


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of this test's own on a free port, which it may stop and start."""

    def __init__(self, folder: Path):
        self.port, self.folder = _free_port(), folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(self.answers, 10), "redis-server did not start"

    def answers(self) -> bool:
        try:
            return Redis.from_url(self.url, socket_timeout=1).ping()
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3():
    server, s3 = start_s3_server()
    yield s3
    server.stop()


@pytest.fixture
def serve(settings, media_root, tmp_path, redis_server, s3):
    """`manage.py serve` with 2 workers, and where it listens."""
    port = _free_port()
    bucket = s3.create_bucket()
    env = process_env(
        settings,
        media_root,
        tmp_path / "work",
        REDIS_URL=redis_server.url,
        PORT=port,
        CLYPAI_WORKERS=2,
        CLYPAI_WEB_WORKERS=2,
        CLYPAI_WEB_THREADS=4,
        CLYPAI_STOP_GRACE_SECONDS=GRACE_SECONDS,
        CLYPAI_STALE_SECONDS=STALE_SECONDS,
        CLYPAI_SWEEP_INTERVAL_SECONDS=5,
        CLYPAI_READY_TIMEOUT_SECONDS=5,  # this machine is shared and busy
        CLYPAI_VAR_DIR=tmp_path / "var",
        CLYPAI_LOG_FORMAT="json",
        CLYPAI_URL_ALLOWLIST="127.0.0.1",
        CLYPAI_JOB_CLIP_COUNT=1,
        CLYPAI_S3_BUCKET=bucket,
        CLYPAI_S3_ENDPOINT_URL=s3.endpoint_url,
        CLYPAI_S3_ACCESS_KEY_ID=s3.access_key,
        CLYPAI_S3_SECRET_ACCESS_KEY=s3.secret_key,
        HF_HUB_OFFLINE=1,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Served(process, port, log, redis_server, s3, bucket)
    yield running
    stop(process)  # whatever is left of it (the test stops it cleanly itself)


class Served:
    def __init__(self, process, port, log, redis_server, s3, bucket):
        self.process, self.port, self.log = process, port, log
        self.redis, self.s3, self.bucket = redis_server, s3, bucket

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url(path), timeout=10, **kwargs)

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def workers(self) -> list[Worker]:
        return Worker.all(connection=Redis.from_url(self.redis.url))


def _ready(served: Served) -> bool:
    try:
        return served.get("/readyz").status_code == 200
    except requests.RequestException:
        return False


def test_serve_runs_the_whole_system_and_stops_cleanly(serve, caller, media_server):
    # /healthz and /readyz answer once it is up; it says where the site is.
    assert wait_for(lambda: _ready(serve), 120, every=0.5), serve.tail()
    assert serve.get("/healthz").json() == {"status": "ok"}
    ready = serve.get("/readyz").json()
    assert ready["checks"] == {
        "database": {"ok": True},
        "redis": {"ok": True},
        "storage": {"ok": True},
    }
    # Two media workers and the webhook deliveries' own.
    assert wait_for(lambda: len(serve.workers()) == 3, 60), serve.tail()
    listening = sorted(sorted(q.name for q in w.queues) for w in serve.workers())
    assert ["webhooks"] in listening and all("webhooks" not in q for q in listening if len(q) > 1)
    printed = serve.log.read_text()
    for where in ("/admin/", "/docs/", f"http://localhost:{serve.port}/"):
        assert where in printed

    # Three jobs at once, through the API, from a URL.
    headers = {"Authorization": f"Key {caller.key}", "X-Request-Id": "serve-proof"}
    answers = []

    def create():
        answers.append(
            requests.post(
                serve.url("/choppity/v1/clips"),
                json={"source": {"url": f"{media_server}/{VIDEO}"}, "language": "en"},
                headers=headers,
                timeout=30,
            )
        )

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
    job_ids = [a.json()["job_id"] for a in answers]

    # SIGTERM to a worker busy with a job's analysis: it is handed back, not lost.
    busy = {}

    def a_worker_is_busy():
        for worker in serve.workers():
            current = worker.get_current_job_id()
            if (
                current in job_ids
                and Job.objects.filter(
                    pk=current, stage__in=("probe", "audio", "transcribe")
                ).exists()
            ):
                busy.update(pid=worker.pid, job=current)
                return True
        return False

    assert wait_for(a_worker_is_busy, 240, every=0.2), serve.tail()
    os.kill(busy["pid"], signal.SIGTERM)
    signalled_at = time.monotonic()
    assert wait_for(lambda: not _alive(busy["pid"]), GRACE_SECONDS + 30), serve.tail()
    # It finished its task within the grace (a quiet machine), or handed the job back:
    # one requeue, at once (tests/clypai/test_worker_stop.py holds the hand-back alone).
    handed_back = Job.objects.get(pk=busy["job"]).attempts
    assert handed_back in (0, 1)

    def all_settled():
        return Job.objects.filter(pk__in=job_ids, status__in=("done", "error")).count() == 3

    assert wait_for(all_settled, 600, every=1), (
        list(Job.objects.filter(pk__in=job_ids).values("status", "stage", "error")),
        serve.tail(),
    )
    assert time.monotonic() - signalled_at < STALE_SECONDS
    for job in Job.objects.filter(pk__in=job_ids):
        assert job.status == "done", job.error
        (clip,) = Clip.objects.filter(job=job)  # once
        assert clip.status == "completed" and clip.preview
        assert serve.s3.client().head_object(Bucket=serve.bucket, Key=clip.preview.name)
    assert MonthlyUsage.objects.get(team=caller.team).clips_created == 3
    handed = [line for line in serve.log.read_text().splitlines() if "queued again" in line]
    if handed_back:
        assert handed and busy["job"] in handed[0] and '"request_id": "serve-proof"' in handed[0]
    else:
        assert not handed

    # /metrics shows their stages (summed over every process, work horses included).
    text = serve.get("/metrics").text
    for stage in ("ingest", "probe", "audio", "transcribe", "scenes", "select"):
        assert sample_count(text, stage) >= 1, stage
    assert sample_count(text, "render") >= 3  # each job's clip
    assert sample(text, "clypai_queue_jobs", queue="analysis", state="queued") == 0
    assert sample(text, "clypai_queue_up") == 1
    assert (
        sample(
            text,
            "clypai_http_request_duration_seconds_count",
            view="choppity/v1/clips",
            method="POST",
            status="202",
        )
        == 3
    )

    # /readyz turns 503 naming Redis while Redis is down, and recovers with it.
    serve.redis.stop()
    down = serve.get("/readyz")
    assert down.status_code == 503 and down.json()["failing"] == ["redis"]
    serve.redis.start()
    assert wait_for(lambda: _ready(serve), 30, every=0.5), serve.tail()

    # SIGTERM stops every process cleanly.
    children = descendants(serve.process.pid)
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(timeout=GRACE_SECONDS + 30) == 0, serve.tail()
    assert not [pid for pid in children if _alive(pid)]

    # Every line it printed is a log line as JSON: the workers', the sweep loop's,
    # gunicorn's and serve's own.
    lines = [json.loads(line) for line in serve.log.read_text().splitlines() if line.strip()]
    assert all({"level", "logger", "message", "time"} <= set(line) for line in lines)
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "rq.worker", "clypai.serve"} <= loggers, loggers
    assert any(line["message"].startswith("sweep pass:") for line in lines)


def sample_count(text: str, stage: str) -> float:
    return sample(text, "clypai_stage_seconds_count", stage=stage) or 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# What serve starts, and how it restarts (no processes of the system needed) -----------


@pytest.mark.django_db(transaction=False)
def test_with_redis_serve_plans_gunicorn_the_workers_one_scheduler_and_the_sweep(settings):
    from clypai.management.commands.serve import Command
    from clypai.queues import QUEUES

    settings.CLYPAI_WEB_WORKERS, settings.CLYPAI_WEB_THREADS = 3, 8
    settings.CLYPAI_WEB_TIMEOUT_SECONDS = 90
    plan = {c.name: c.argv for c in Command().plan(port=8123, workers=3, embedded=False)}
    assert list(plan) == ["web", "worker-1", "worker-2", "worker-3", "webhooks", "sweep"]
    web = " ".join(plan["web"])
    assert "gunicorn clypai.wsgi:application" in web and ":8123" in web
    assert "--worker-class gthread --workers 3 --threads 8 --timeout 90" in web
    for n in (1, 2, 3):
        assert plan[f"worker-{n}"][2:3] == ["rqworker"]
        assert set(plan[f"worker-{n}"]) >= set(QUEUES) - {"webhooks"}
        assert "webhooks" not in plan[f"worker-{n}"]  # a slow endpoint holds no media worker
    assert plan["webhooks"][2:] == ["rqworker", "webhooks", "--with-scheduler"]
    assert "--with-scheduler" in plan["worker-1"]
    assert "--with-scheduler" not in plan["worker-2"] + plan["worker-3"]
    assert plan["sweep"][-2:] == ["sweep", "--loop"]


@pytest.mark.django_db(transaction=False)
def test_without_redis_serve_plans_gunicorn_alone_with_one_worker(settings):
    from clypai.management.commands.serve import Command

    settings.CLYPAI_WEB_WORKERS = None
    (web,) = Command().plan(port=8000, workers=0, embedded=True)
    assert web.name == "web" and web.argv[web.argv.index("--workers") + 1] == "1"


def test_a_child_that_keeps_dying_is_restarted_with_a_growing_backoff():
    from clypai.management.commands.serve import Child, Command

    command = Command()
    child = Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    child.start(dict(os.environ))
    starts, delays = [time.monotonic()], []
    deadline = time.monotonic() + 30
    while len(starts) < 3 and time.monotonic() < deadline:
        before = child.restarts
        command.supervise([child], dict(os.environ))
        if child.restarts > before:
            starts.append(time.monotonic())
        time.sleep(0.05)
    assert child.restarts == 2 and child.failures == 2
    delays = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert 1.0 <= delays[0] < 2.0 and 2.0 <= delays[1] < 3.5


@pytest.mark.django_db(transaction=False)
def test_gunicorn_reads_clypai_config_and_has_the_grace_and_the_hand_back_margin(settings):
    from clypai.background import HAND_BACK_MARGIN_SECONDS
    from clypai.management.commands.serve import Command

    settings.CLYPAI_STOP_GRACE_SECONDS = 7.5
    (web,) = Command().plan(port=8000, workers=0, embedded=True)
    argv = web.argv
    assert argv[argv.index("--config") + 1] == "python:clypai.gunicorn_conf"
    assert argv[argv.index("--graceful-timeout") + 1] == str(
        int(7.5 + HAND_BACK_MARGIN_SECONDS + 1)
    )


def test_the_web_keeps_its_database_connections_unless_told_otherwise(monkeypatch):
    from clypai.management.commands.serve import WEB_CONN_MAX_AGE_SECONDS, Command

    monkeypatch.delenv("DB_CONN_MAX_AGE", raising=False)
    web, worker, *_ = Command().plan(port=8000, workers=1, embedded=False)
    assert web.env == {"DB_CONN_MAX_AGE": str(WEB_CONN_MAX_AGE_SECONDS)}
    assert worker.env == {}  # RQ's work horses open their own, per task
    monkeypatch.setenv("DB_CONN_MAX_AGE", "0")  # the operator's word wins
    web, *_ = Command().plan(port=8000, workers=1, embedded=False)
    assert web.env == {}


def test_a_kept_connection_is_checked_before_a_request_reuses_it():
    from django.db import connection

    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_gunicorn_logs_its_own_lines_through_the_apps_handler_and_format(settings):
    from clypai import gunicorn_conf

    config = gunicorn_conf.logconfig_dict
    assert config["handlers"]["console"]["formatter"] == settings.CLYPAI_LOG_FORMAT
    assert config["formatters"]["json"] == {"()": "clypai.observability.JsonFormatter"}
    for name in ("gunicorn.error", "gunicorn.access"):
        assert config["loggers"][name]["handlers"] == ["console"]
        assert config["loggers"][name]["propagate"] is False  # once, not again via root
    # The app logs each request itself, with its id: gunicorn's access lines stay quiet.
    assert config["loggers"]["gunicorn.access"]["level"] == "WARNING"


def test_in_json_format_a_childs_other_output_becomes_json_lines_too(settings, capsys, caplog):
    import io

    from clypai.management.commands.serve import _relay

    source = io.BytesIO(b'{"level": "INFO", "message": "as it is"}\nINFO: Created TFLite\n\n')
    with caplog.at_level("INFO"):
        _relay(source, sys.stdout, "web")
    assert capsys.readouterr().out == '{"level": "INFO", "message": "as it is"}\n'
    (wrapped,) = caplog.records
    assert (wrapped.name, wrapped.getMessage()) == ("clypai.serve.web", "INFO: Created TFLite")


@pytest.mark.django_db(transaction=False)
def test_stopping_kills_what_a_child_left_behind(settings, tmp_path):
    from clypai.management.commands.serve import Child, Command

    settings.CLYPAI_STOP_GRACE_SECONDS = 1
    pid_file = tmp_path / "orphan"
    script = (
        "import signal, subprocess, sys, time\n"
        "orphan = subprocess.Popen(['sleep', '120'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(orphan.pid))\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # leaves sleep behind\n"
        "time.sleep(120)\n"
    )
    child = Child("leaky", [sys.executable, "-c", script])
    child.start(dict(os.environ))
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30)
        orphan = int(pid_file.read_text())
        Command().stop_all([child])
        assert child.process.returncode == 0
        assert wait_for(lambda: not _alive(orphan), 5)
    finally:
        stop(child.process)
