"""Request ids, JSON log lines and the log context following work into a real worker."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys

import pytest

from clips.models import Clip
from clypai import observability
from clypai.queues import get_queue
from tests.processes import ROOT, manage, process_env

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_it_makes_a_request_id_and_returns_it(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert HEX_ID.fullmatch(response["X-Request-Id"])
    assert client.get("/healthz")["X-Request-Id"] != response["X-Request-Id"]


def test_it_keeps_a_sane_incoming_request_id(client):
    response = client.get("/healthz", headers={"X-Request-Id": "req-7f3a.b2:c9"})
    assert response["X-Request-Id"] == "req-7f3a.b2:c9"


@pytest.mark.parametrize(
    "incoming", ["has space", "x" * 200, '{"json": 1}', "line\nbreak", "-leading-dash", ""]
)
def test_it_replaces_an_incoming_request_id_that_is_not_sane(client, incoming):
    response = client.get("/healthz", headers={"X-Request-Id": incoming})
    assert HEX_ID.fullmatch(response["X-Request-Id"])


def test_api_errors_carry_the_request_id_too(api):
    response = api.get("/v1/clips/clip_nope", headers={"X-Request-Id": "abc123"})
    assert response.status_code == 404 and response["X-Request-Id"] == "abc123"


@pytest.fixture
def json_lines():
    """What the console handler of settings.LOGGING writes, captured: JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    handler.addFilter(observability.LogContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.level = level


def test_each_request_logs_one_json_line_with_its_id_view_and_status(api, caller, json_lines):
    api.get("/v1/clips", headers={"X-Request-Id": "req-list-1"})
    (line,) = [line for line in json_lines() if line["logger"] == "clypai.request"]
    assert line["request_id"] == "req-list-1"
    assert line["level"] == "INFO" and line["status"] == 200 and line["method"] == "GET"
    assert line["path"] == "/v1/clips" and line["view"] == "v1/clips"
    assert line["duration_ms"] >= 0 and line["time"].endswith("+00:00")
    assert line["team"] == caller.team.pk  # bound once the API knew the caller
    assert line["clip_id"] is None and line["job_id"] is None


def test_lines_logged_inside_a_context_carry_it(json_lines):
    log = logging.getLogger("clips.test")
    with observability.log_context(request_id="r1", clip_id="clip_a"):
        with observability.log_context(job_id="job_b"):
            log.warning("inner")
        log.warning("outer")
    log.warning("after")
    inner, outer, after = [line for line in json_lines() if line["logger"] == "clips.test"]
    assert (inner["request_id"], inner["clip_id"], inner["job_id"]) == ("r1", "clip_a", "job_b")
    assert (outer["clip_id"], outer["job_id"]) == ("clip_a", None)
    assert after["request_id"] is None and after["message"] == "after"


def test_a_process_logs_json_lines_by_default_and_text_when_asked(tmp_path):
    code = (
        "import django, logging; django.setup();"
        "from clypai.observability import log_context;"
        "ctx = log_context(request_id='rq-9', team='team_x'); ctx.__enter__();"
        "logging.getLogger('clips.x').warning('hello %s', 'there')"
    )

    def run(**env):
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**process_env_plain(), **env},
        ).stderr.strip()

    (line,) = [json.loads(raw) for raw in run().splitlines()]
    assert line["message"] == "hello there" and line["logger"] == "clips.x"
    assert line["request_id"] == "rq-9" and line["team"] == "team_x"
    assert line["level"] == "WARNING" and isinstance(line["pid"], int)
    text = run(CLYPAI_LOG_FORMAT="text")
    assert text.endswith("WARNING clips.x: hello there [request_id=rq-9 team=team_x]"), text


def process_env_plain() -> dict:
    import os

    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "clypai.settings"
    env.pop("CLYPAI_LOG_FORMAT", None)
    return env


@pytest.mark.django_db(transaction=True)
def test_the_request_id_and_clip_id_follow_a_clip_into_a_real_worker(
    api, settings, media_root, tmp_path
):
    settings.CLYPAI_JOBS_INLINE = False
    queue = get_queue("analysis")
    queue.connection.flushdb()
    response = api.post(
        "/v1/clips",
        # Loopback: the worker's fetch refuses it, so the clip fails at once, logging.
        {"sourceVideoUrl": "http://127.0.0.1:9/talk.mp4"},
        format="json",
        headers={"X-Request-Id": "req-follow-1"},
    )
    assert response.status_code == 201, response.json()
    clip_id = response.json()["data"]["id"]
    task = queue.fetch_job(clip_id)
    assert task.meta[observability.META_KEY]["request_id"] == "req-follow-1"

    log = tmp_path / "worker.log"
    env = process_env(settings, media_root, tmp_path / "work", CLYPAI_LOG_FORMAT="json")
    worker = manage(env, "rqworker", "analysis", "--burst", log=log)
    assert worker.wait(timeout=120) == 0, log.read_text()[-3000:]

    assert Clip.objects.get(pk=clip_id).status == "failed"
    lines = [json.loads(raw) for raw in log.read_text().splitlines() if raw.startswith("{")]
    about = [line for line in lines if line.get("clip_id") == clip_id]
    assert len(about) >= 2, log.read_text()[-3000:]  # processing, then why it failed
    assert {line["request_id"] for line in about} == {"req-follow-1"}
    assert {line["team"] for line in about} == {Clip.objects.get(pk=clip_id).team_id}
    assert any("processing" in line["message"] for line in about)
    assert all(line["pid"] != worker.pid for line in about)  # the work horse's lines
    queue.connection.flushdb()
