"""/healthz, /readyz and /metrics: what they check, what they answer, and to whom."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

from clypai import metrics
from clypai.queues import get_queue
from tests.processes import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample of the Prometheus text `text`, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if line.startswith(name + "{") and found != {k: str(v) for k, v in labels.items()}:
            continue
        return float(line.rsplit(" ", 1)[1])
    return None


def test_healthz_answers_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")  # a pod's address
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_checks_the_database_redis_and_storage(client, settings):
    settings.CLYPAI_JOBS_INLINE = False
    response = client.get("/readyz", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "redis": {"ok": True}, "storage": {"ok": True}},
    }


@pytest.mark.django_db
def test_readyz_leaves_redis_out_when_work_runs_in_process(client, settings):
    settings.CLYPAI_JOBS_INLINE = True
    assert set(client.get("/readyz").json()["checks"]) == {"database", "storage"}


@pytest.mark.django_db
def test_readyz_answers_503_naming_redis_when_redis_does_not_answer(client, settings):
    settings.CLYPAI_JOBS_INLINE = False
    settings.RQ_QUEUES = {
        name: {**queue, "URL": f"redis://127.0.0.1:{_free_port()}/0"}
        for name, queue in settings.RQ_QUEUES.items()
    }
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < settings.CLYPAI_READY_TIMEOUT_SECONDS + 1
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failing"] == ["redis"]
    assert "redis" in body["message"]
    assert (
        body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    )
    assert body["checks"]["database"] == {"ok": True}


@pytest.mark.django_db
def test_readyz_names_storage_when_it_cannot_be_written(client, settings, tmp_path):
    settings.CLYPAI_JOBS_INLINE = True
    (tmp_path / "file").write_text("not a folder")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "file")},
        },
    }
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failing"] == ["storage"]


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_does_not_answer(client, settings):
    from django.db import connections

    port = _free_port()
    saved = dict(connections["default"].settings_dict)
    connections["default"].settings_dict["PORT"] = port
    try:
        response = client.get("/readyz")
    finally:
        connections["default"].settings_dict.clear()
        connections["default"].settings_dict.update(saved)
    assert response.status_code == 503 and "database" in response.json()["failing"]


def test_metrics_answer_loopback_clients_only_without_a_token(client, settings):
    settings.CLYPAI_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    response = client.get("/metrics", REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 403 and "CLYPAI_METRICS_TOKEN" in response.json()["message"]


def test_metrics_ask_for_the_token_when_one_is_set(client, settings):
    settings.CLYPAI_METRICS_TOKEN = "s3cret-metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-metrics"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    response = client.get(
        "/metrics", headers={"Authorization": "Bearer s3cret-metrics"}, REMOTE_ADDR="10.0.0.5"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")


def _noop():
    return None


@pytest.mark.django_db(transaction=True)
def test_metrics_report_latency_by_view_queue_depth_stages_and_failures(api, client, settings):
    settings.CLYPAI_JOBS_INLINE = False
    queue = get_queue("render")
    queue.connection.flushdb()
    for n in range(3):
        queue.enqueue(_noop, job_id=f"noop-{n}")
    before = client.get("/metrics").content.decode()
    api.get("/v1/clips")
    api.get("/v1/clips/clip_nope")
    with metrics.stage_clock() as clock:
        clock.enter("probe")
        time.sleep(0.05)
        clock.enter("transcribe")
    metrics.failure(stage="transcribe", code="processing_failed")

    text = client.get("/metrics").content.decode()
    assert sample(text, "clypai_queue_jobs", queue="render", state="queued") == 3
    assert sample(text, "clypai_queue_jobs", queue="analysis", state="started") == 0
    assert sample(text, "clypai_queue_up") == 1

    def grew(name, **labels):
        return (sample(text, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    assert (
        grew(
            "clypai_http_request_duration_seconds_count",
            view="v1/clips",
            method="GET",
            status="200",
        )
        == 1
    )
    assert (
        grew(
            "clypai_http_request_duration_seconds_count",
            view="v1/clips/<str:clip_id>",
            method="GET",
            status="404",
        )
        == 1
    )
    assert grew("clypai_stage_seconds_count", stage="probe") == 1
    assert grew("clypai_stage_seconds_sum", stage="probe") >= 0.05
    assert grew("clypai_stage_seconds_count", stage="transcribe") == 1
    assert grew("clypai_failures_total", stage="transcribe", code="processing_failed") == 1
    queue.connection.flushdb()


def test_metrics_say_redis_is_down_rather_than_fail(client, settings):
    settings.CLYPAI_JOBS_INLINE = False
    settings.RQ_QUEUES = {
        name: {**queue, "URL": f"redis://127.0.0.1:{_free_port()}/0"}
        for name, queue in settings.RQ_QUEUES.items()
    }
    response = client.get("/metrics")
    assert response.status_code == 200
    assert sample(response.content.decode(), "clypai_queue_up") == 0


MULTIPROCESS_WRITER = """
import django, sys
django.setup()
from clypai import metrics
for _ in range(int(sys.argv[1])):
    metrics.failure(stage="render", code="processing_failed")
    metrics.STAGE_SECONDS.labels(stage="render").observe(2.0)
"""

MULTIPROCESS_READER = """
import django
django.setup()
from clypai import metrics
print(metrics.exposition()[0].decode())
"""


def test_in_multiprocess_mode_metrics_add_up_across_processes_and_ended_ones_fold(tmp_path):
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clypai.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "CLYPAI_JOBS_INLINE": "true",
    }

    def run(code, *args):
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    for count in (2, 3):  # two processes, as two work horses, each ended
        run(MULTIPROCESS_WRITER, str(count))
    assert len(list(folder.glob("counter_*.db"))) == 2
    text = run(MULTIPROCESS_READER)
    assert sample(text, "clypai_failures_total", stage="render", code="processing_failed") == 5
    assert sample(text, "clypai_stage_seconds_count", stage="render") == 5
    assert sample(text, "clypai_stage_seconds_sum", stage="render") == 10
    # The ended processes' files were folded into one archive per kind; a later process
    # adds to it.
    left = sorted(p.name for p in folder.glob("*.db") if p.name.startswith(("counter", "histo")))
    assert left == ["counter_archive.db", "histogram_archive.db"]
    run(MULTIPROCESS_WRITER, "1")
    text = run(MULTIPROCESS_READER)
    assert sample(text, "clypai_failures_total", stage="render", code="processing_failed") == 6
