"""Fixtures for /choppity/v1/: clients with the document's `Key` header, jobs with clips
in the states the document describes, a loopback HTTP server for source URLs, and RQ
burst workers in subprocesses for the end-to-end module."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from clips.models import Clip, Job
from projects.services import default_project

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds" / "choppity-clips-api.txt"
VIDEO = "talking_head/grid_concat_11clips_33s.mp4"


@pytest.fixture
def chop(caller) -> APIClient:
    """The caller's client, authenticating as the document does: `Key <api key>`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    return client


@pytest.fixture
def other_chop(other_caller) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {other_caller.key}")
    return client


def make_job(team, *, status=Job.Status.PROCESSING, clips=0, previews=0, **fields) -> Job:
    """A job with `clips` selected clips, the first `previews` of them with a preview."""
    job = Job.objects.create(
        team=team,
        project=default_project(team=team),
        source_url="https://example.com/podcast.mp4",
        status=status,
        **fields,
    )
    for rank in range(1, clips + 1):
        clip = Clip.objects.create(
            team=team,
            project=job.project,
            job=job,
            rank=rank,
            name=f"Moment {rank}",
            start_time=10.0 * rank,
            end_time=10.0 * rank + 58.333,
            duration=58.333,
            score=0.9134 - rank / 100,
            status=Clip.Status.COMPLETED if rank <= previews else Clip.Status.PROCESSING,
        )
        if rank <= previews:
            clip.preview.save("p.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=True)
    return job


@pytest.fixture
def job_factory():
    return make_job


@pytest.fixture
def media_server(shared_media):
    """The shared media over plain HTTP on 127.0.0.1 (the only address tests fetch)."""
    handler = functools.partial(_QuietHandler, directory=str(shared_media))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def burst_worker(settings, media_root, tmp_path):
    """Run one RQ burst worker over `queues` in a subprocess on the test database."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        REDIS_URL=settings.RQ_QUEUES["render"]["URL"],
        CLYPAI_JOBS_INLINE="false",
        MEDIA_ROOT=str(media_root),
        CLYPAI_WORK_DIR=str(tmp_path / "work"),
        CLYPAI_WHISPER_MODEL="tiny.en",
        CLYPAI_WHISPER_ENGINE="faster-whisper",
        CLYPAI_URL_ALLOWLIST="127.0.0.1",
        CLYPAI_JOB_CLIP_COUNT=str(settings.CLYPAI_JOB_CLIP_COUNT),
        CLYPAI_TRANSCRIBE_ON_QUEUE=str(settings.CLYPAI_TRANSCRIBE_ON_QUEUE).lower(),
        HF_HUB_OFFLINE="1",
    )
    log = tmp_path / "worker.log"

    def run(*queues: str, timeout: float = 240) -> None:
        with open(log, "ab") as out:
            # One process for every job (no fork per job): models load once per worker.
            done = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "rqworker",
                    *queues,
                    "--burst",
                    "--worker-class",
                    "rq.worker.SimpleWorker",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        assert done.returncode == 0, log.read_text()[-4000:]

    return run


def stale(minutes: float = 10):
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture
def rq_queues(settings):
    """Real Redis queues (this run's database), empty before and after."""
    from clypai.queues import get_queue

    settings.CLYPAI_JOBS_INLINE = False
    connection_ = get_queue("render").connection
    connection_.flushdb()
    yield {name: get_queue(name) for name in ("analysis", "render")}
    connection_.flushdb()


def error_of(response, status_code: int, code: str) -> dict:
    """The document's one error shape: {"error": {"code", "message"[, "field", "details"]}}."""
    assert response.status_code == status_code, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "field", "details"}, error
    return error
