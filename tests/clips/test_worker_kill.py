"""A worker SIGKILLed in the middle of a job: the sweep finds the clip by its stale
heartbeat, a new worker finishes the work, and nothing is done or stored twice."""

from __future__ import annotations

import time

import pytest
from django.core.files import File

from clips.models import Analysis, Clip, Source
from clips.services import ClipSpec, clip_create, upload_create
from clips.sweep import clips_sweep
from clypai.queues import get_queue
from tests.processes import kill_machine, manage, process_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _start_worker(env):
    return manage(env, "rqworker", "analysis", "--burst")


def test_a_killed_worker_s_clip_is_finished_after_the_sweep_without_duplicates(
    settings, team, media_root, tmp_path, shared_media
):
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_STALE_SECONDS = 2
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    queue = get_queue("analysis")
    queue.connection.flushdb()
    env = process_env(settings, media_root, tmp_path / "work")

    video = shared_media / "talking_head" / "grid_concat_11clips_33s.mp4"
    import hashlib

    with open(video, "rb") as fh:
        upload = upload_create(
            team=team,
            file=File(fh, name=video.name),
            filename=video.name,
            sha256=hashlib.sha256(video.read_bytes()).hexdigest(),
        )
    clip = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))
    assert queue.job_ids == [clip.pk]

    worker = _start_worker(env)
    try:
        # Kill it once the transcript is stored and shot detection is under way.
        reached = wait_for(
            lambda: Clip.objects.filter(pk=clip.pk, stage="scenes").exists(), timeout=120
        )
        assert reached, Clip.objects.values("status", "stage", "error").get(pk=clip.pk)
        kill_machine(worker)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            kill_machine(worker)

    killed = Clip.objects.get(pk=clip.pk)
    assert killed.status == "processing"  # nobody is left to say otherwise
    transcript = Analysis.objects.get(source__sha256=upload.sha256, kind="transcript")

    assert clips_sweep().requeued_stale == []  # the heartbeat is still fresh
    time.sleep(settings.CLYPAI_STALE_SECONDS + 0.5)
    assert clips_sweep().requeued_stale == [clip.pk]
    assert queue.job_ids == [clip.pk]

    second = _start_worker(env)
    assert second.wait(timeout=180) == 0

    clip.refresh_from_db()
    assert clip.attempts == 1
    # The second worker took the analysis up where the first died and finished the clip.
    assert clip.status == "completed", clip.error
    assert clip.start_time is not None and clip.end_time > clip.start_time
    assert clip.metadata["reason"] and clip.name and len(clip.words) > 5
    assert clip.video and clip.thumbnail and clip.captions
    # Nothing duplicated: one source, one analysis of each kind, the transcript reused.
    assert Source.objects.filter(sha256=upload.sha256).count() == 1
    kinds = list(
        Analysis.objects.filter(source__sha256=upload.sha256)
        .values_list("kind", flat=True)
        .order_by("kind")
    )
    assert kinds == ["audio", "faces", "scenes", "transcript"]
    again = Analysis.objects.get(source__sha256=upload.sha256, kind="transcript")
    assert (again.pk, again.created_at) == (transcript.pk, transcript.created_at)
