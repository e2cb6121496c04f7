"""Faults with real processes, the sweep running as `make run` runs it (`manage.py sweep
--loop`, its own process): a worker SIGKILLed while rendering, and Redis losing everything
with work queued and in flight. After each, every clip and job ends completed, appears
once and is charged once, and no half-written file is visible."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest
from django.core.files import File

from clips.models import Clip, Job, Source
from clips.services import ClipSpec, JobSpec, clip_create, job_create, upload_create
from clypai.queues import get_queue
from projects.models import MonthlyUsage
from tests.processes import kill_machine, manage, process_env, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VIDEO = "talking_head/grid_concat_11clips_33s.mp4"
STALE_SECONDS = 3


@pytest.fixture
def system(settings, media_root, tmp_path):
    """What `make run` starts, but the web process: a worker on every media queue (with
    its scheduler) and the sweep loop, restarted like compose restarts them when they
    exit; `system.check()` inside a wait does the restarting."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_STALE_SECONDS = STALE_SECONDS
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    settings.CLYPAI_TRANSCRIBE_ON_QUEUE = True  # as on RQ by default: three tasks a clip
    queue = get_queue("analysis")
    queue.connection.flushdb()
    env = process_env(settings, media_root, tmp_path / "work", CLYPAI_STALE_SECONDS=STALE_SECONDS)
    running = System(env, tmp_path)
    yield running
    running.stop()
    queue.connection.flushdb()


class System:
    def __init__(self, env, tmp_path):
        self.env, self.logs = env, tmp_path
        self.sweep = manage(env, "sweep", "--loop", "--interval", "0.5", log=self.log("sweep"))
        self.worker = self.start_worker()
        self.restarts = 0

    def log(self, name):
        return self.logs / f"{name}.log"

    def start_worker(self):
        return manage(
            self.env,
            "rqworker",
            "transcribe",
            "analysis",
            "render",
            "--with-scheduler",
            log=self.log("worker"),
        )

    def check(self) -> None:
        if self.worker.poll() is not None:  # restart: unless-stopped
            self.restarts += 1
            self.worker = self.start_worker()
        assert self.sweep.poll() is None, self.log("sweep").read_text()

    def stop(self) -> None:
        stop(self.worker)
        stop(self.sweep)


def _upload(team, shared_media):
    video = shared_media / VIDEO
    with open(video, "rb") as fh:
        return upload_create(
            team=team,
            file=File(fh, name=video.name),
            filename=video.name,
            sha256=hashlib.sha256(video.read_bytes()).hexdigest(),
        )


def _settled(system, predicate, timeout):
    def check():
        system.check()
        return predicate()

    return wait_for(check, timeout, every=0.25)


def _video_seconds(clip) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json"]
        + [clip.video.path],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def _usage(team) -> MonthlyUsage:
    return MonthlyUsage.objects.get(team=team)


def test_a_worker_killed_while_rendering_leaves_one_clip_charged_once(system, team, shared_media):
    upload = _upload(team, shared_media)
    clip = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))
    assert _settled(
        system, lambda: Clip.objects.filter(pk=clip.pk, stage="render").exists(), 240
    ), Clip.objects.values("status", "stage", "error").get(pk=clip.pk)
    time.sleep(1)  # the render is under way
    kill_machine(system.worker)
    system.worker.wait(timeout=10)
    killed_at = time.monotonic()

    done = _settled(
        system,
        lambda: Clip.objects.filter(pk=clip.pk, status__in=("completed", "failed")).exists(),
        240,
    )
    assert done, system.log("worker").read_text()[-3000:]
    recovered_in = time.monotonic() - killed_at
    clip.refresh_from_db()
    assert clip.status == "completed", clip.error
    assert clip.attempts == 1  # one worker lost, one requeue
    assert recovered_in < 120
    # Charged once: the clip's generation, and its full render's seconds.
    usage = _usage(team)
    assert usage.clips_created == 1
    assert usage.render_seconds == pytest.approx(clip.end_time - clip.start_time)
    assert clip.render_charged
    # Appears once, and its file is whole.
    assert Clip.objects.filter(team=team).count() == 1
    assert Source.objects.filter(team=team).count() == 1
    assert _video_seconds(clip) == pytest.approx(clip.end_time - clip.start_time, abs=0.3)


def test_redis_losing_everything_loses_no_clip_or_job(system, team, shared_media, settings):
    upload = _upload(team, shared_media)
    in_flight = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))
    queued = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))
    job = job_create(team=team, spec=JobSpec(upload=upload, count=1, language="en"))
    assert _settled(
        system,
        lambda: Clip.objects.filter(pk=in_flight.pk, stage="transcribe").exists(),
        240,
    ), Clip.objects.values("status", "stage", "error").get(pk=in_flight.pk)

    get_queue("analysis").connection.flushdb()  # what `shutdown nosave` leaves
    lost_at = time.monotonic()

    def settled():
        clips = Clip.objects.filter(team=team)
        return (
            Job.objects.filter(pk=job.pk, status__in=("done", "error")).exists()
            and clips.count() == 3
            and not clips.exclude(status__in=("completed", "failed")).exists()
        )

    assert _settled(system, settled, 360), (
        list(Clip.objects.filter(team=team).values("id", "status", "stage", "error")),
        Job.objects.values("status", "stage", "error").get(pk=job.pk),
        system.log("sweep").read_text()[-2000:],
    )
    recovered_in = time.monotonic() - lost_at
    for clip in (in_flight, queued):
        clip.refresh_from_db()
        assert clip.status == "completed", clip.error
        assert clip.video and _video_seconds(clip) > 0
    job.refresh_from_db()
    assert job.status == "done", job.error
    (job_clip,) = Clip.objects.filter(job=job)  # its clip, once
    assert job_clip.status == "completed" and job_clip.preview
    assert Source.objects.filter(team=team).count() == 1
    usage = _usage(team)
    assert usage.clips_created == 3  # two clips and one job, each once
    charged = sum(c.end_time - c.start_time for c in (in_flight, queued))  # previews are free
    assert usage.render_seconds == pytest.approx(charged)
    assert recovered_in < 360
