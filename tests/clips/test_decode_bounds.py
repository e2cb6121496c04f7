"""Decodes bounded by the probed duration: a container header that lies about its length.

The hostile file is made here, at test time: a 120 s MP4 (a tiny test pattern and a
tone) whose `mvhd`, `tkhd` and `mdhd` durations are patched to say 5 s. ffprobe then
reports 5 s, so the file passes a 60 s duration limit, while its sample tables still
hold 120 s that ffmpeg decodes to the end unless told where to stop.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files import File

from clips import analysis
from clips.models import Clip
from clips.pipeline import StageError
from clips.pipeline.audio import extract_audio
from clips.pipeline.probe import ProbeLimits, probe
from clips.pipeline.render import RenderSettings, join_bumpers
from clips.pipeline.scenes import detect_scenes
from clips.services import ClipSpec, clip_create, upload_create
from clypai.lib import ffmpeg

REAL_SECONDS = 120
HEADER_SECONDS = 5


def _encode(path: Path, seconds: int) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=s=64x64:r=5:d={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=f=440:d={seconds}:r=16000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path


def _say_duration(data: bytearray, ratio: float, start: int = 0, end: int | None = None) -> int:
    """Scale the (version 0) durations of mvhd, tkhd and mdhd boxes by `ratio`; how many."""
    end = len(data) if end is None else end
    patched, i = 0, start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if size < 8:
            break
        if kind in (b"moov", b"trak", b"mdia"):
            patched += _say_duration(data, ratio, i + 8, i + size)
        elif kind in (b"mvhd", b"mdhd", b"tkhd") and data[i + 8] == 0:
            # version/flags, creation, modification, then timescale and duration
            # (tkhd: track id and a reserved word, then duration)
            at = i + 28 if kind == b"tkhd" else i + 24
            (duration,) = struct.unpack(">I", data[at : at + 4])
            struct.pack_into(">I", data, at, int(duration * ratio))
            patched += 1
        i += size
    return patched


@pytest.fixture(scope="module")
def lying_mp4(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lying")
    honest = _encode(folder / "honest.mp4", REAL_SECONDS)
    data = bytearray(honest.read_bytes())
    assert _say_duration(data, HEADER_SECONDS / REAL_SECONDS) == 5  # mvhd, 2 tkhd, 2 mdhd
    lying = folder / "lying.mp4"
    lying.write_bytes(bytes(data))
    return lying


def test_the_lying_file_passes_the_probe_and_decodes_far_longer(lying_mp4):
    info = probe(lying_mp4, limits=ProbeLimits(max_duration_seconds=60))
    assert info.duration == pytest.approx(HEADER_SECONDS, abs=0.1)
    unbounded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(lying_mp4), "-map", "0:a:0", "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    # what an unbounded extraction writes: 2 bytes a sample at 44.1 kHz mono aac's rate
    assert len(unbounded) > 100 * 16000 * 2


def test_a_file_without_a_duration_is_counted_only_to_the_limit(tmp_path):
    # A stream (as a browser's MediaRecorder writes WebM) carries no duration: the probe
    # counts its packets, and stops a second past the limit rather than at the end.
    live = tmp_path / "recorded.webm"
    with live.open("wb") as out:
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=s=64x64:r=5:d=60",
                "-c:v",
                "libvpx",
                "-f",
                "webm",
                "pipe:1",
            ],
            stdout=out,
            check=True,
        )
    assert "duration" not in ffmpeg.ffprobe_json(live)["format"]
    with pytest.raises(StageError) as caught:
        probe(live, limits=ProbeLimits(max_duration_seconds=10))
    assert "too long" in caught.value.message
    assert 10 < caught.value.details["found"]["duration"] <= 11.5


def test_the_audio_extraction_stops_at_the_bound_and_leaves_no_file(lying_mp4, tmp_path):
    wav = tmp_path / "audio.wav"
    with pytest.raises(StageError) as caught:
        extract_audio(lying_mp4, wav, duration=HEADER_SECONDS)
    err = caught.value
    assert err.permanent and "longer than its header says" in err.message
    bound = ffmpeg.decode_bound(HEADER_SECONDS)
    assert err.details["found"]["headerDuration"] == HEADER_SECONDS
    # it read to the bound and not a second further
    assert bound - 0.3 <= err.details["found"]["decodedAtLeast"] <= bound + 0.1
    assert err.details["limit"]["decodeBoundSeconds"] == pytest.approx(bound, abs=0.01)
    assert list(tmp_path.iterdir()) == []  # neither the WAV nor a partial one


def test_an_honest_file_is_extracted_whole(tmp_path):
    honest = _encode(tmp_path / "honest.mp4", 12)
    wav = extract_audio(honest, tmp_path / "audio.wav", duration=probe(honest).duration)
    seconds = (wav.stat().st_size - 78) / 32000
    assert seconds == pytest.approx(12, abs=0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio.wav", "honest.mp4"]


def test_the_shot_decode_stops_at_the_bound(lying_mp4):
    with pytest.raises(StageError) as caught:
        detect_scenes(lying_mp4)
    found = caught.value.details["found"]
    assert found["headerDuration"] == HEADER_SECONDS
    assert found["decodedAtLeast"] <= ffmpeg.decode_bound(HEADER_SECONDS) + 0.1


def test_a_bumper_that_lies_is_joined_only_as_long_as_it_says(lying_mp4, tmp_path):
    main = _encode(tmp_path / "main.mp4", 3)
    out = tmp_path / "joined.mp4"
    result = join_bumpers(
        main, out, intro=lying_mp4, settings=RenderSettings(width=64, height=64, fps=5)
    )
    assert result.duration < 3 + 8  # the intro read to its bound (7 s), not its 120 s
    assert sorted(p.name for p in tmp_path.iterdir()) == ["joined.mp4", "main.mp4"]


def test_a_join_that_reaches_its_size_cap_fails_and_leaves_no_file(tmp_path):
    main, intro = _encode(tmp_path / "main.mp4", 30), _encode(tmp_path / "intro.mp4", 30)
    settings = RenderSettings(width=64, height=64, fps=5, max_output_bytes_per_second=1)
    with pytest.raises(StageError) as caught:
        join_bumpers(main, tmp_path / "joined.mp4", intro=intro, settings=settings)
    assert "passed its size limit" in caught.value.message
    # ffmpeg stopped at the cap: the whole join is 1.3 MB (its 160 kb/s audio alone 1.2)
    found, limit = caught.value.details["found"]["bytes"], caught.value.details["limit"]
    assert limit["bytes"] <= found < limit["bytes"] + 200_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intro.mp4", "main.mp4"]


@pytest.mark.django_db(transaction=True)
def test_a_clip_render_past_the_output_cap_setting_fails_and_stores_nothing(settings, ready_clip):
    from clips.rendering import clip_video_make

    settings.CLYPAI_MAX_OUTPUT_BYTES_PER_SECOND = 1
    with pytest.raises(StageError) as caught:
        clip_video_make(ready_clip, None, kind="preview")
    assert "passed its size limit" in caught.value.message
    ready_clip.refresh_from_db()
    assert not ready_clip.preview and not ready_clip.video
    assert list(settings.CLYPAI_WORK_DIR.rglob("*.mp4")) == []  # no partial file either


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_clip_of_a_file_that_lies_about_its_duration_fails_with_the_reason(
    settings, tmp_path, team, lying_mp4
):
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    settings.CLYPAI_MAX_SOURCE_SECONDS = 60  # the file is 120 s; its header says 5
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    with open(lying_mp4, "rb") as fh:
        upload = upload_create(
            team=team,
            file=File(fh, name="lying.mp4"),
            filename="lying.mp4",
            sha256=hashlib.sha256(lying_mp4.read_bytes()).hexdigest(),
        )
    began = time.monotonic()
    clip = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))
    clip = Clip.objects.get(pk=clip.pk)
    assert clip.status == "failed"
    assert clip.error_code == "processing_failed"
    assert "longer than its header says" in clip.error
    assert clip.error_details["found"]["headerDuration"] == HEADER_SECONDS
    assert time.monotonic() - began < 60
    # no audio of the source was kept, whole or partial
    audio = settings.CLYPAI_WORK_DIR / "audio"
    assert not audio.exists() or list(audio.iterdir()) == []


# Eviction of the work dir's caches ------------------------------------------------------


def _file(path: Path, size: int, unused: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - unused, now - unused))
    return path


def test_the_work_caches_are_evicted_by_age_then_by_size(settings, tmp_path):
    settings.CLYPAI_WORK_DIR = tmp_path
    settings.CLYPAI_WORK_CACHE_MAX_AGE_SECONDS = 7 * 86400
    settings.CLYPAI_WORK_CACHE_MAX_BYTES = 3000
    settings.CLYPAI_WORK_CACHE_IN_USE_SECONDS = 3600
    now = time.time()
    stale = _file(tmp_path / "cache" / "sources__a.mp4", 100, 8 * 86400, now)
    stale_part = _file(tmp_path / "audio" / ".src_b.wav.part", 100, 8 * 86400, now)
    oldest = _file(tmp_path / "audio" / "src_c.wav", 1000, 3 * 86400, now)
    older = _file(tmp_path / "cache" / "sources__d.mp4", 1000, 2 * 86400, now)
    recent = _file(tmp_path / "audio" / "src_e.wav", 1000, 86400, now)
    in_use = _file(tmp_path / "cache" / "sources__f.mp4", 5000, 60, now)
    elsewhere = _file(tmp_path / "render" / "clip_x" / "out.mp4", 9000, 30 * 86400, now)

    freed = analysis.work_files_evict(now=now)

    # unused for a week: gone; then least recently used first while over 3000 bytes,
    # but the file in use stays even though the caches are still over the limit
    assert not stale.exists() and not stale_part.exists()
    assert not oldest.exists() and not older.exists() and not recent.exists()
    assert in_use.exists()
    assert elsewhere.exists()  # only the caches are evicted
    assert freed == {"files": 5, "bytes": 3200}


def test_reuse_keeps_a_cached_file(settings, tmp_path):
    settings.CLYPAI_WORK_DIR = tmp_path
    settings.CLYPAI_WORK_CACHE_MAX_AGE_SECONDS = 86400
    settings.CLYPAI_WORK_CACHE_MAX_BYTES = 10**9
    now = time.time()
    cold = _file(tmp_path / "audio" / "src_a.wav", 10, 2 * 86400, now)
    warm = _file(tmp_path / "audio" / "src_b.wav", 10, 2 * 86400, now)
    analysis._touch(warm)  # what source_audio_path does when it reuses the WAV
    assert analysis.work_files_evict() == {"files": 1, "bytes": 10}
    assert not cold.exists() and warm.exists()


@pytest.mark.django_db
def test_the_sweep_pass_evicts_the_work_caches(settings, tmp_path):
    from clips.sweep import sweep_pass

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path
    settings.CLYPAI_WORK_CACHE_MAX_AGE_SECONDS = 86400
    old = _file(tmp_path / "cache" / "sources__a.mp4", 10, 2 * 86400, time.time())
    assert sweep_pass()["workFilesEvicted"] == 1
    assert not old.exists()
