"""Selection wired into the pipeline: /v1/ clips, multi-clip jobs, the clip command."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files import File
from django.core.management import call_command
from django.utils import timezone

from clips.models import Clip, Job
from clips.selection import clip_bounds
from clips.services import ClipSpec, JobSpec, clip_create, job_create, upload_create
from clips.states import job_refresh
from clips.sweep import clips_sweep
from projects.models import MonthlyUsage
from projects.services import default_project


def _upload(team, video):
    with open(video, "rb") as fh:
        return upload_create(
            team=team,
            file=File(fh, name=video.name),
            filename=video.name,
            sha256=hashlib.sha256(video.read_bytes()).hexdigest(),
        )


# Clip length bounds --------------------------------------------------------------------


def test_platform_limits_keep_short_form_clips_under_a_minute():
    assert clip_bounds(platform="tiktok") == (15.0, 59.0)
    assert clip_bounds(platform="instagram") == (15.0, 59.0)
    assert clip_bounds(platform="") == (15.0, 59.0)
    # a vertical YouTube clip is a Short; a landscape one may run longer, as on LinkedIn
    assert clip_bounds(platform="youtube", aspect_ratio="9:16")[1] < 60
    assert clip_bounds(platform="youtube", aspect_ratio="16:9")[1] > 60
    assert clip_bounds(platform="linkedin")[1] > 60


def test_max_duration_caps_and_target_duration_aims():
    assert clip_bounds(platform="linkedin", max_duration=30) == (15.0, 30.0)
    lo, hi = clip_bounds(target_duration=60)
    assert lo < 60 < hi and hi - lo <= 40
    lo, hi = clip_bounds(target_duration=60, max_duration=50)
    assert hi == 50 and lo <= hi


# Jobs settle from their clips ----------------------------------------------------------


@pytest.mark.django_db
def test_a_job_is_done_when_all_its_clips_are_and_errors_when_one_fails(team):
    job = Job.objects.create(
        team=team,
        project=default_project(team=team),
        source_url="https://example.com/v.mp4",
        status=Job.Status.PROCESSING,
    )
    job_refresh(job.pk)  # no clips yet: still analysing
    assert Job.objects.get(pk=job.pk).status == "processing"
    a = Clip.objects.create(
        team=team, project=job.project, job=job, rank=1, status=Clip.Status.COMPLETED
    )
    b = Clip.objects.create(
        team=team, project=job.project, job=job, rank=2, status=Clip.Status.PROCESSING
    )
    job_refresh(job.pk)
    assert Job.objects.get(pk=job.pk).status == "processing"
    Clip.objects.filter(pk=b.pk).update(status=Clip.Status.COMPLETED)
    job_refresh(job.pk)
    assert Job.objects.get(pk=job.pk).status == "done"

    job2 = Job.objects.create(
        team=team,
        project=job.project,
        source_url="https://e.com/v.mp4",
        status=Job.Status.PROCESSING,
    )
    Clip.objects.create(
        team=team,
        project=job.project,
        job=job2,
        rank=1,
        status=Clip.Status.FAILED,
        error="Clip generation failed: disk full",
    )
    Clip.objects.create(
        team=team, project=job.project, job=job2, rank=2, status=Clip.Status.COMPLETED
    )
    job_refresh(job2.pk)
    job2.refresh_from_db()
    assert job2.status == "error" and job2.error == "Clip generation failed: disk full"
    assert a.pk != b.pk


@pytest.mark.django_db(transaction=True)  # django-rq holds enqueues until commit
def test_the_sweep_requeues_a_job_whose_worker_died_and_one_whose_enqueue_was_lost(settings, team):
    settings.CLYPAI_JOBS_INLINE = False
    from clypai.queues import get_queue

    queue = get_queue("analysis")
    queue.connection.flushdb()
    project = default_project(team=team)
    old = timezone.now() - timedelta(seconds=settings.CLYPAI_STALE_SECONDS + 5)
    dead = Job.objects.create(
        team=team,
        project=project,
        source_url="https://e.com/a.mp4",
        status=Job.Status.PROCESSING,
        stage="transcribe",
        heartbeat_at=old,
    )
    lost = Job.objects.create(team=team, project=project, source_url="https://e.com/b.mp4")
    Job.objects.filter(pk=lost.pk).update(updated_at=old)
    fresh = Job.objects.create(
        team=team,
        project=project,
        source_url="https://e.com/c.mp4",
        status=Job.Status.PROCESSING,
        stage="transcribe",
        heartbeat_at=timezone.now(),
    )

    report = clips_sweep()
    assert str(dead.pk) in report.requeued_stale
    assert str(lost.pk) in report.requeued_pending
    assert str(fresh.pk) not in report.requeued_stale + report.requeued_pending
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("queued", 1)
    assert set(queue.job_ids) >= {str(dead.pk), str(lost.pk)}
    # a second sweep right after does not double the work
    again = clips_sweep()
    assert again.requeued_pending == [] and again.requeued_stale == []


# On real media -------------------------------------------------------------------------


@pytest.fixture
def inline_tiny(settings, tmp_path):
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    settings.CLYPAI_WHISPER_ENGINE = "faster-whisper"
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    return settings


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_v1_clip_with_a_range_keeps_it_and_gets_scored_metadata(inline_tiny, team, shared_media):
    video = shared_media / "talking_head" / "grid_concat_11clips_33s.mp4"
    clip = clip_create(
        team=team,
        spec=ClipSpec(
            upload=_upload(team, video), start_time=3.0, end_time=18.0, config={"language": "en"}
        ),
    )
    clip.refresh_from_db()
    assert clip.status == "completed", clip.error
    assert (clip.start_time, clip.end_time, clip.duration) == (3.0, 18.0, 15.0)
    assert clip.name and clip.metadata["reason"]
    # Its full render was made, so its length counts against the month's render minutes.
    assert MonthlyUsage.objects.get(team=team).render_seconds == pytest.approx(15.0)
    assert set(clip.metadata) >= {
        "hooks",
        "highlights",
        "sentiment",
        "topics",
        "scoreBreakdown",
        "reason",
    }
    assert 0 <= clip.score <= 1
    assert all(0 <= t <= 15.0 for t in clip.metadata["highlights"])
    # the clip's own words, on the source's clock, inside its range
    assert clip.words and all(3.0 - 0.06 <= w["start"] <= w["end"] <= 18.06 for w in clip.words)
    # a /v1/ clip completes with its full render: 1080x1920 H.264/AAC of the range's length
    from clips.pipeline.probe import probe

    info = probe(Path(clip.video.path))
    assert (info.video.display_width, info.video.display_height) == (1080, 1920)
    assert info.video.codec == "h264" and info.audio.codec == "aac"
    assert abs(info.duration - 15.0) < 0.15
    assert clip.thumbnail.name.endswith(".jpg") and clip.thumbnail.size > 1000
    srt = clip.captions.read().decode()
    assert "-->" in srt and clip.words[0]["word"].strip().strip(".,").lower() in srt.lower()
    # the crop path is stored with the clip for reuse
    assert clip.crop_path["path"]["keyframes"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_enable_captions_false_makes_a_clip_without_any_captions(
    inline_tiny, team, shared_media, caller
):
    """The document: `enableCaptions` "Whether to generate captions"; `captionsUrl` "URL
    of SRT caption file (if generated)". Off: no SRT (nor VTT) is written, none is
    burned, and captionsUrl is null."""
    video = shared_media / "talking_head" / "grid_concat_11clips_33s.mp4"
    clip = clip_create(
        team=team,
        spec=ClipSpec(
            upload=_upload(team, video),
            start_time=3.0,
            end_time=8.0,
            config={"language": "en", "enableCaptions": False},
        ),
    )
    clip.refresh_from_db()
    assert clip.status == "completed", clip.error
    assert clip.words  # transcribed all the same (selection and metadata use it)
    assert not clip.captions
    media = Path(clip.video.storage.location)
    assert not [p for p in media.rglob("*") if p.suffix in (".srt", ".vtt")]
    outputs = caller.client.get(f"/v1/clips/{clip.pk}").json()["data"]["outputs"]
    assert outputs["captionsUrl"] is None and outputs["videoUrl"]
    # Nor does an export burn any, even when asked to ("if available").
    exported = caller.client.post(
        f"/v1/clips/{clip.pk}/export",
        {"format": "mp4", "quality": "low", "burnCaptions": True},
        format="json",
    )
    assert exported.status_code == 200, exported.content
    assert exported.json()["data"]["burnCaptions"] is False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_silent_source_still_gets_a_clip_cut_on_its_shots(inline_tiny, team, shared_media):
    video = shared_media / "cuts" / "big_buck_bunny_0-30s_720p.webm"
    job = job_create(
        team=team, spec=JobSpec(upload=_upload(team, video), count=3, clip_video=Job.ClipVideo.NONE)
    )
    job.refresh_from_db()
    assert job.status == "done", job.error
    (clip,) = job.clips.all()
    assert clip.status == "completed" and clip.start_time == 0.0
    assert 10 <= clip.duration <= 30.1
    assert clip.metadata["reason"].startswith("No speech")


TOPICS = "topics/podcast-topics-dev"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_clip_command_answers_a_topic_criteria_with_clips_inside_that_topic(
    inline_tiny, shared_media
):
    truth = json.loads((shared_media / f"{TOPICS}.truth.json").read_text())["segments"]
    segment = truth[3]
    out = io.StringIO()
    call_command(
        "clip",
        str(shared_media / f"{TOPICS}.mp4"),
        "--criteria",
        segment["criteria"],
        "--count",
        "3",
        "--no-render",
        "--json",
        stdout=out,
    )
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 3
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    for row in rows:
        assert set(row) >= {"id", "title", "startTime", "endTime", "duration", "score"}
        assert "path" not in row  # nothing rendered
        assert row["duration"] == pytest.approx(row["endTime"] - row["startTime"], abs=0.01)
        assert 15 - 0.5 <= row["duration"] <= 59
    top = rows[0]
    overlap = max(
        0.0, min(top["endTime"], segment["end"]) - max(top["startTime"], segment["start"])
    )
    assert overlap / top["duration"] >= 0.8, (top, segment)
    # The rows are the job's clips, ranked, and visible as /v1/ clips.
    clips = {c.pk: c for c in Clip.objects.filter(pk__in=[r["id"] for r in rows])}
    assert [clips[r["id"]].rank for r in rows] == [1, 2, 3]
    assert all(c.status == "completed" and c.job.status == "done" for c in clips.values())


# Analysis: shots beside the transcription ----------------------------------------------


@pytest.mark.django_db
def test_a_failing_transcription_stops_the_shot_decode_beside_it(shared_media, monkeypatch, team):
    import threading

    from clips import analysis
    from clips.models import Analysis
    from clips.pipeline import StageError, scenes, select, transcribe

    video = shared_media / "talking_head" / "grid_concat_11clips_33s.mp4"
    source = analysis.source_from_file(
        team_id=team.pk,
        path=video,
        sha256=hashlib.sha256(video.read_bytes()).hexdigest(),
        size=video.stat().st_size,
        suffix=".mp4",
    )
    real_detect = scenes.detect_scenes
    started, seen = threading.Event(), {}

    def detect_scenes(path, *, stop, threads, **options):
        started.set()
        seen["stopped"] = stop.wait(10)  # until the transcription fails
        seen["threads"] = threads
        seen["shots"] = real_detect(path, stop=stop, threads=threads, **options)
        return seen["shots"]

    def failing_transcribe(*args, **kwargs):
        assert started.wait(10)  # the shot decode runs beside the transcription
        raise StageError("Transcription failed")

    monkeypatch.setattr(scenes, "detect_scenes", detect_scenes)
    monkeypatch.setattr(transcribe, "transcribe", failing_transcribe)
    monkeypatch.setattr(select, "warm_up", lambda: seen.setdefault("warmed up", True))

    with pytest.raises(StageError, match="Transcription failed"):
        analysis.source_analyse(source)

    # stopped early, and the selection's models not loaded for a failed job
    assert seen == {"stopped": True, "threads": 1, "shots": []}
    assert not Analysis.objects.filter(source=source).exists()
