"""`manage.py serve` with the embedded defaults: no DATABASE_URL, no REDIS_URL.

SQLite, local disk, jobs in gunicorn's own threads (`clypai/background.py`). One run of
the whole thing: a Choppity job from a URL on loopback, SIGTERM while it is analysed (the
job thread's work is handed back at once: CLYPAI_STALE_SECONDS is far beyond the test, so
only the hand-back can bring it back in time), a second start that takes it up at once
and finishes it, once, to a preview that plays; each stop exits 0 and leaves no process.
Every line serve printed, gunicorn's included, is one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.processes import ROOT, descendants, stop, wait_for

pytestmark = pytest.mark.slow

VIDEO = "talking_head/grid_concat_11clips_33s.mp4"
STALE_SECONDS = 900
GRACE_SECONDS = 1  # the job thread is handed back, not waited for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def embedded_env(tmp_path) -> dict:
    """serve's environment: nothing of the test's PostgreSQL or Redis, files in tmp_path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CLYPAI_JOBS_INLINE", "CLYPAI_JOBS_THREADS")
        and not key.startswith(("CLYPAI_S3_", "PROMETHEUS_"))
    }
    env.update(
        CLYPAI_VAR_DIR=str(tmp_path / "var"),  # the SQLite file lives here
        MEDIA_ROOT=str(tmp_path / "media"),
        CLYPAI_WORK_DIR=str(tmp_path / "work"),
        PORT=str(_free_port()),
        CLYPAI_WEB_HOST="127.0.0.1",
        CLYPAI_WHISPER_MODEL="tiny.en",
        CLYPAI_WHISPER_ENGINE="faster-whisper",
        CLYPAI_HEARTBEAT_SECONDS="0.5",
        CLYPAI_STALE_SECONDS=str(STALE_SECONDS),
        CLYPAI_STOP_GRACE_SECONDS=str(GRACE_SECONDS),
        CLYPAI_LOG_FORMAT="json",
        CLYPAI_URL_ALLOWLIST="127.0.0.1",
        CLYPAI_JOB_CLIP_COUNT="1",
        HF_HUB_OFFLINE="1",
    )
    return env


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _api_key(env: dict) -> str:
    """The SQLite database migrated, a team and its key (one Django start for both)."""
    _manage(env, "migrate", "--noinput", "-v", "0")
    out = _manage(
        env,
        "shell",
        "-c",
        "from projects.models import Team; from projects.services import api_key_create; "
        "print(api_key_create(team=Team.objects.create(name='Acme'), name='t').raw_key)",
    )
    return out.strip().splitlines()[-1]


class Serve:
    """One `manage.py serve` of the test, its output in `log`."""

    def __init__(self, env: dict, log: Path, *args: str):
        self.env, self.log = env, log
        self.port = int(env["PORT"])
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def up(self) -> bool:
        try:
            return requests.get(self.url("/healthz"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def sigterm(self) -> None:
        """SIGTERM: serve exits 0 and nothing it started is left running."""
        below = descendants(self.process.pid)
        assert below, "serve started nothing"
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=GRACE_SECONDS + 40) == 0, self.tail()
        assert not [pid for pid in below if _alive(pid)], self.tail()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _job_row(env: dict, job_id: str) -> dict:
    """The job's row, read from serve's SQLite file (a UUID there is its 32 hex digits)."""
    job_id = uuid.UUID(job_id).hex
    with sqlite3.connect(Path(env["CLYPAI_VAR_DIR"]) / "clypai.sqlite3", timeout=10) as db:
        db.row_factory = sqlite3.Row
        row = db.execute(
            "SELECT status, stage, attempts FROM clips_job WHERE id = ?", [job_id]
        ).fetchone()
        clips = db.execute("SELECT count(*) FROM clips_clip WHERE job_id = ?", [job_id]).fetchone()
    return {**dict(row), "clips": clips[0]}


def _json_lines(log: Path) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line in {log.name}: {line!r}")
        assert isinstance(parsed[-1], dict), line
    return parsed


def test_embedded_serve_hands_a_running_job_back_and_finishes_it_at_the_next_start(
    embedded_env, tmp_path, media_server
):
    env = embedded_env
    key = _api_key(env)
    headers = {"Authorization": f"Key {key}"}
    first = Serve(env, tmp_path / "serve-1.log")
    second = None
    try:
        assert wait_for(first.up, 120, every=0.3), first.tail()
        answer = requests.post(
            first.url("/choppity/v1/clips"),
            json={"source": {"url": f"{media_server}/{VIDEO}"}, "language": "en"},
            headers=headers,
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]

        # SIGTERM while a job thread analyses it: handed back, waiting, at once.
        def analysing():
            row = _job_row(env, job_id)
            # Well before its render (a job rendering is left to its clips' own rows).
            return row["status"] == "processing" and row["stage"] in (
                "probe",
                "audio",
                "transcribe",
            )

        assert wait_for(analysing, 240, every=0.1), (_job_row(env, job_id), first.tail())
        first.sigterm()
        row = _job_row(env, job_id)
        assert (row["status"], row["stage"], row["attempts"]) == ("queued", "requeued", 1), row

        # The next start takes it up at once (not after the stale delay) and finishes it.
        second = Serve(env, tmp_path / "serve-2.log")
        started = time.monotonic()

        def done():
            polled = requests.get(
                second.url(f"/choppity/v1/clips/{job_id}"), headers=headers, timeout=10
            ).json()
            return polled if polled["status"] in ("done", "error") else None

        assert wait_for(second.up, 120, every=0.3), second.tail()
        assert wait_for(done, 600, every=1), (_job_row(env, job_id), second.tail())
        assert time.monotonic() - started < STALE_SECONDS
        polled = done()
        assert polled["status"] == "done", polled
        row = _job_row(env, job_id)
        assert (row["attempts"], row["clips"]) == (1, 1), row  # taken up once
        (clip,) = polled["clips"]
        preview = requests.get(clip["preview_url"], timeout=30)
        assert preview.status_code == 200
        path = tmp_path / "preview.mp4"
        path.write_bytes(preview.content)
        probed = json.loads(
            subprocess.run(
                ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json"]
                + [str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert {s["codec_type"] for s in probed["streams"]} >= {"video", "audio"}
        assert abs(float(probed["format"]["duration"]) - clip["duration"]) < 1.0
        second.sigterm()
    finally:
        for served in (first, second):
            if served is not None:
                stop(served.process)

    # Every line either run printed is one JSON object: serve's, the app's, gunicorn's.
    lines = _json_lines(first.log) + _json_lines(second.log)
    loggers = {line["logger"] for line in lines}
    assert {"clypai.serve", "gunicorn.error", "clypai.request"} <= loggers, loggers
    messages = [line["message"] for line in lines]
    assert any("Booting worker" in m for m in messages)
    assert any(m.startswith("ClypAI is running") and "/docs/" in m for m in messages)
    handed = [m for m in _json_lines(first.log) if "waits for the next start" in m["message"]]
    assert len(handed) == 1 and handed[0]["job_id"] == job_id, handed


def test_serve_web_only_becomes_the_same_gunicorn(embedded_env, tmp_path, settings):
    """What compose, the image and Kubernetes run as their web process."""
    from clypai.management.commands.serve import Command

    settings.CLYPAI_WEB_HOST = embedded_env["CLYPAI_WEB_HOST"]
    settings.CLYPAI_STOP_GRACE_SECONDS = GRACE_SECONDS
    settings.CLYPAI_WEB_WORKERS = None

    served = Serve(embedded_env, tmp_path / "web.log", "--web-only")
    try:
        assert wait_for(served.up, 60, every=0.3), served.tail()
        # serve replaced itself with gunicorn (signals reach it directly), with serve's flags.
        argv = Path(f"/proc/{served.process.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        (planned,) = Command().plan(port=served.port, workers=0, embedded=True)
        assert [arg.decode() for arg in argv[1:]] == planned.argv[1:]
        served.sigterm()
    finally:
        stop(served.process)
    lines = _json_lines(served.log)
    assert any(line["logger"] == "gunicorn.error" for line in lines)
