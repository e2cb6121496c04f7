"""Transcription on its own queue: a clip's (and a job's) analysis ends once its audio
is stored, the `transcribe` queue's task makes the transcript from storage, and the
analysis goes on from there; each task on a machine of its own (a fresh work dir), on
real Redis and real burst workers. The sweep recovers each wait."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone
from rq.worker import SimpleWorker

from clips import states
from clips.analysis import source_audio_name
from clips.models import Analysis, Clip, Job
from clips.services import ClipSpec, JobSpec, clip_create, job_create, upload_create
from clips.sweep import clips_sweep
from clips.tasks import transcribe_rq_id
from clypai.queues import get_queue
from projects.services import default_project

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = "talking_head/grid_concat_11clips_33s.mp4"


@pytest.fixture
def queues(settings):
    """Real Redis queues, emptied before and after; transcription on its queue."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_TRANSCRIBE_ON_QUEUE = True
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    found = {name: get_queue(name) for name in ("transcribe", "analysis", "render")}
    found["analysis"].connection.flushdb()
    yield found
    found["analysis"].connection.flushdb()


def _machine(settings, tmp_path, name: str):
    """A new machine: an empty work dir of its own."""
    settings.CLYPAI_WORK_DIR = tmp_path / name
    return settings.CLYPAI_WORK_DIR


def _burst(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def _upload(team, shared_media):
    video = shared_media / VIDEO
    with open(video, "rb") as fh:
        return upload_create(
            team=team,
            file=File(fh, name=video.name),
            filename=video.name,
            sha256=hashlib.sha256(video.read_bytes()).hexdigest(),
        )


def test_a_clip_is_analysed_transcribed_and_finished_by_three_tasks_on_three_machines(
    settings, team, shared_media, tmp_path, queues
):
    upload = _upload(team, shared_media)
    clip = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))

    _machine(settings, tmp_path, "cpu-1")
    _burst(queues["analysis"])
    clip.refresh_from_db()
    # The analysis ended at the transcription: the clip waits for it, still processing.
    assert (clip.status, clip.stage) == ("processing", states.TRANSCRIBE_QUEUED)
    source = clip.source
    kinds = set(Analysis.objects.filter(source=source).values_list("kind", flat=True))
    assert kinds == {"audio", "scenes"}
    assert default_storage.exists(source_audio_name(source))
    assert queues["transcribe"].job_ids == [transcribe_rq_id(clip.pk)]
    task = queues["transcribe"].fetch_job(transcribe_rq_id(clip.pk))
    assert task.func_name == "clips.tasks.clip_transcribe_task"
    assert task.args == (clip.pk, "faster-whisper", "tiny.en")
    assert queues["analysis"].count == 0
    # Waiting for its task is not a lost worker: the sweep leaves it.
    report = clips_sweep(now=timezone.now() + timedelta(seconds=settings.CLYPAI_STALE_SECONDS))
    assert clip.pk not in report.requeued_stale + report.requeued_pending

    gpu = _machine(settings, tmp_path, "gpu-1")
    _burst(queues["transcribe"])
    clip.refresh_from_db()
    assert (clip.status, clip.stage) == ("processing", states.TRANSCRIBED)
    transcript = Analysis.objects.get(source=source, kind="transcript")
    assert transcript.key == "faster-whisper:tiny.en:en"
    assert "blue" in transcript.result["text"].lower()
    assert queues["analysis"].job_ids == [clip.pk]
    # It read the audio from storage (it had no source to extract it from).
    assert not (gpu / "audio").exists()

    cpu2 = _machine(settings, tmp_path, "cpu-2")
    _burst(queues["analysis"])
    clip.refresh_from_db()
    assert clip.status == "completed", clip.error
    assert clip.attempts == 0
    assert clip.video and clip.thumbnail and len(clip.words) > 3
    # Transcript and loudness were stored: the audio was not extracted again.
    assert not (cpu2 / "audio").exists()
    for kind in ("transcript", "audio", "scenes"):
        assert Analysis.objects.filter(source=source, kind=kind).count() == 1
    # Every queue is empty: nothing was queued twice.
    assert [q.count for q in queues.values()] == [0, 0, 0]


def test_a_job_waits_for_its_transcript_and_then_makes_its_clips(
    settings, team, shared_media, tmp_path, queues
):
    upload = _upload(team, shared_media)
    job = job_create(team=team, spec=JobSpec(upload=upload, count=1, language="en"))

    _machine(settings, tmp_path, "cpu-1")
    _burst(queues["analysis"])
    job.refresh_from_db()
    assert (job.status, job.stage) == ("processing", states.TRANSCRIBE_QUEUED)
    assert not job.clips.exists()
    assert queues["transcribe"].job_ids == [transcribe_rq_id(str(job.pk))]

    _machine(settings, tmp_path, "gpu-1")
    _burst(queues["transcribe"])
    job.refresh_from_db()
    assert (job.status, job.stage) == ("processing", states.TRANSCRIBED)
    assert queues["analysis"].job_ids == [str(job.pk)]

    _machine(settings, tmp_path, "cpu-2")
    _burst(queues["analysis"])
    (clip,) = job.clips.all()
    assert queues["render"].job_ids == [clip.pk]
    _machine(settings, tmp_path, "cpu-3")
    _burst(queues["render"])
    job.refresh_from_db()
    assert job.status == "done", job.error
    clip.refresh_from_db()
    assert clip.status == "completed" and clip.preview


def _waiting_clip(team, stage: str, *, seconds_ago: float, **fields) -> Clip:
    clip = Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source_url="https://example.com/a.mp4",
        status="processing",
        stage=stage,
        **fields,
    )
    then = timezone.now() - timedelta(seconds=seconds_ago)
    Clip.objects.filter(pk=clip.pk).update(updated_at=then)
    return clip


def test_the_sweep_queues_again_a_clip_whose_transcribe_task_redis_lost(settings, team, queues):
    old = settings.CLYPAI_STALE_SECONDS + 5
    lost = _waiting_clip(team, states.TRANSCRIBE_QUEUED, seconds_ago=old)
    waiting = _waiting_clip(team, states.TRANSCRIBE_QUEUED, seconds_ago=old)
    from clips.tasks import clip_transcribe_task

    queues["transcribe"].enqueue(
        clip_transcribe_task,
        waiting.pk,
        "faster-whisper",
        "tiny.en",
        job_id=transcribe_rq_id(waiting.pk),
    )
    after = _waiting_clip(team, states.TRANSCRIBED, seconds_ago=old)

    report = clips_sweep()
    assert sorted(report.requeued_pending) == sorted([lost.pk, after.pk])
    assert report.requeued_stale == []
    assert set(queues["analysis"].job_ids) == {lost.pk, after.pk}
    # The analysis task takes a waiting clip up where it waits, without a new attempt.
    assert states.clip_claim(lost.pk).stage == "queued"
    assert Clip.objects.get(pk=lost.pk).attempts == 0
    assert states.clip_claim(lost.pk) is None
    # A second sweep right after doubles nothing.
    assert clips_sweep().requeued_pending == []


def test_a_transcribing_worker_that_died_is_swept_and_its_task_entry_cleared(
    settings, team, queues
):
    from clips.tasks import clip_transcribe_task

    old = timezone.now() - timedelta(seconds=settings.CLYPAI_STALE_SECONDS + 5)
    dead = _waiting_clip(team, "transcribe", seconds_ago=60, heartbeat_at=old)
    entry = queues["transcribe"].enqueue(
        clip_transcribe_task,
        dead.pk,
        "faster-whisper",
        "tiny.en",
        job_id=transcribe_rq_id(dead.pk),
    )
    entry.set_status("started")  # its worker took it, then died

    report = clips_sweep()
    assert report.requeued_stale == [dead.pk]
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("pending", 1)
    assert queues["analysis"].job_ids == [dead.pk]
    # The dead worker's entry is gone, so the transcription can be queued again.
    assert queues["transcribe"].fetch_job(transcribe_rq_id(dead.pk)) is None


def test_the_transcribe_task_takes_only_a_clip_that_waits_for_it(team, queues):
    pending = Clip.objects.create(
        team=team, project=default_project(team=team), source_url="https://e.com/a.mp4"
    )
    assert states.clip_transcribe_claim(pending.pk) is None
    waiting = _waiting_clip(team, states.TRANSCRIBE_QUEUED, seconds_ago=0)
    claimed = states.clip_transcribe_claim(waiting.pk)
    assert claimed is not None and claimed.stage == "transcribe" and claimed.heartbeat_at
    assert states.clip_transcribe_claim(waiting.pk) is None  # once


def test_the_setting_defaults_on_with_redis_and_off_inline(monkeypatch):
    import importlib

    import clypai.settings as module

    try:
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
        monkeypatch.delenv("CLYPAI_JOBS_INLINE", raising=False)
        monkeypatch.delenv("CLYPAI_TRANSCRIBE_ON_QUEUE", raising=False)
        assert importlib.reload(module).CLYPAI_TRANSCRIBE_ON_QUEUE is True
        monkeypatch.setenv("CLYPAI_JOBS_INLINE", "true")
        assert importlib.reload(module).CLYPAI_TRANSCRIBE_ON_QUEUE is False
        monkeypatch.delenv("CLYPAI_JOBS_INLINE")
        monkeypatch.delenv("REDIS_URL")
        assert importlib.reload(module).CLYPAI_TRANSCRIBE_ON_QUEUE is False
        assert "transcribe" in importlib.reload(module).RQ_QUEUES
    finally:
        monkeypatch.undo()
        importlib.reload(module)


def test_progress_never_goes_back_when_the_analysis_is_taken_up_after_its_transcript(team, queues):
    clip = _waiting_clip(team, states.TRANSCRIBED, seconds_ago=0, progress=65)
    claimed = states.clip_claim(clip.pk)
    assert claimed is not None and claimed.progress == 65
    states.clip_stage_set(clip.pk, "ingest")
    states.clip_stage_set(clip.pk, "select")
    clip.refresh_from_db()
    assert (clip.stage, clip.progress) == ("select", 85)
    states.clip_stage_set(clip.pk, "probe")
    clip.refresh_from_db()
    assert (clip.stage, clip.progress) == ("probe", 85)


def test_the_dashboard_says_a_job_waits_for_its_transcription_in_words(team):
    from dashboard.selectors import job_state

    job = Job.objects.create(
        team=team,
        project=default_project(team=team),
        source_url="https://example.com/a.mp4",
        status="processing",
        stage=states.TRANSCRIBE_QUEUED,
        progress=12,
    )
    assert job_state(job).words == "Waiting to transcribe the speech"
    Job.objects.filter(pk=job.pk).update(stage=states.TRANSCRIBED)
    job.refresh_from_db()
    assert job_state(job).words == "Speech transcribed; choosing the best moments"


def test_each_worker_keeps_its_own_machines_work_dir_bounded(settings, tmp_path, team):
    """The sweep evicts only its own machine's caches: a worker's task evicts its own."""
    import os
    import time

    from clips import analysis
    from clips.tasks import clip_transcribe_task

    settings.CLYPAI_WORK_DIR = tmp_path / "worker-machine"
    settings.CLYPAI_WORK_CACHE_MAX_AGE_SECONDS = 3600
    settings.CLYPAI_WORK_CACHE_IN_USE_SECONDS = 600
    old = analysis.work_dir("audio") / "old.wav"
    old.write_bytes(b"x" * 10)
    then = time.time() - 2 * 3600
    os.utime(old, (then, then))
    fresh = analysis.work_dir("cache") / "fresh.mp4"
    fresh.write_bytes(b"y" * 10)
    analysis._evicted_at = None
    clip_transcribe_task("clip_none", "faster-whisper", "tiny.en")  # nothing waits: returns
    assert not old.exists() and fresh.exists()
    # Not again within the sweep's interval, in this process.
    old.write_bytes(b"x")
    os.utime(old, (then, then))
    clip_transcribe_task("clip_none", "faster-whisper", "tiny.en")
    assert old.exists()
