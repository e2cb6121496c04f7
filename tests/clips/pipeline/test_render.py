"""clips.pipeline.render: real renders of short ranges of the test media at preview sizes,
checked with ffprobe and by their pixels."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from clips.pipeline import StageError
from clips.pipeline.audio import audio_features, extract_audio
from clips.pipeline.captions import caption_chunks, fonts_dir, write_ass
from clips.pipeline.reframe import CropPath, Keyframe, ShotLayout, crop_path, position_at
from clips.pipeline.render import (
    Captions,
    RenderSettings,
    output_byte_cap,
    output_size,
    render_clip,
    thumbnail,
    thumbnail_from_stills,
)
from clips.pipeline.render.reader import _axis_expression
from clips.platforms import (
    EXPORT_QUALITIES,
    PLATFORM_PRESETS,
    export_settings,
    full_settings,
    full_size,
    preview_settings,
    preview_size,
)

MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"
GRID = MEDIA / "talking_head/grid_concat_11clips_33s.mp4"
TWO = MEDIA / "talking_head/two-speakers-dev.mp4"
BUNNY = MEDIA / "cuts/big_buck_bunny_0-30s_720p.webm"


def _probe(path: Path) -> dict:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    )
    return json.loads(done.stdout)


def _stream(data: dict, kind: str) -> dict:
    return next(s for s in data["streams"] if s["codec_type"] == kind)


def _frame(path: Path, t: float, size: tuple[int, int]) -> np.ndarray:
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{t}", "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    return np.frombuffer(done.stdout, np.uint8).reshape(size[1], size[0], 3).astype(int)


def test_a_preview_has_the_size_duration_and_codecs_asked(tmp_path):
    width, height = preview_size("9:16")

    result = render_clip(
        GRID,
        tmp_path / "clip.mp4",
        start=4.0,
        end=8.0,
        settings=RenderSettings(width=width, height=height),
    )

    assert (width, height) == (480, 854)
    assert (result.width, result.height) == (480, 854)
    data = _probe(result.path)
    video, audio = _stream(data, "video"), _stream(data, "audio")
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert audio["codec_name"] == "aac" and int(audio["sample_rate"]) == 48000
    assert int(video["nb_frames"]) == 100  # 4 s at the source's 25 fps
    assert float(video["duration"]) == pytest.approx(4.0, abs=0.04)
    assert float(audio["duration"]) == pytest.approx(4.0, abs=0.05)  # one AAC frame of padding
    assert result.duration == pytest.approx(4.0, abs=2 / 25)
    assert result.size_bytes == result.path.stat().st_size > 10_000


def test_captions_are_burned_into_the_caption_area(tmp_path):
    width, height = preview_size("9:16")
    words = [("Keep", 4.2, 4.5), ("the", 4.5, 4.6), ("speaker", 4.6, 5.2), ("in", 5.2, 5.3),
             ("frame.", 5.3, 6.0)]  # fmt: skip
    chunks = caption_chunks(words, start=4.0, end=7.0)
    ass = write_ass(tmp_path / "c.ass", chunks, width=width, height=height, style={"size": 72})
    plain = render_clip(
        GRID,
        tmp_path / "plain.mp4",
        start=4.0,
        end=7.0,
        settings=RenderSettings(width=width, height=height),
    )

    burned = render_clip(
        GRID, tmp_path / "burned.mp4", start=4.0, end=7.0,
        settings=RenderSettings(width=width, height=height), captions=Captions(ass, fonts_dir(None)),
    )  # fmt: skip

    a, b = _frame(plain.path, 1.0, (width, height)), _frame(burned.path, 1.0, (width, height))
    difference = np.abs(a - b).mean(axis=2)
    caption_band = difference[int(height * 0.6) : int(height * 0.8)]  # above the bottom safe zone
    above = difference[: int(height * 0.5)]
    assert (caption_band > 60).mean() > 0.03  # letters and their outline
    assert (above > 60).mean() < 0.001
    # Before the first word nothing is drawn.
    early_a, early_b = (
        _frame(plain.path, 0.0, (width, height)),
        _frame(burned.path, 0.0, (width, height)),
    )
    assert (np.abs(early_a - early_b).mean(axis=2) > 60).mean() < 0.001


def test_webm_is_vp9_and_opus_and_mov_is_h264_and_aac(tmp_path):
    webm = render_clip(
        GRID,
        tmp_path / "clip.webm",
        start=1.0,
        end=3.0,
        settings=RenderSettings(width=480, height=480),
    )
    mov = render_clip(
        GRID,
        tmp_path / "clip.mov",
        start=1.0,
        end=3.0,
        settings=RenderSettings(width=480, height=480),
    )

    data = _probe(webm.path)
    assert _stream(data, "video")["codec_name"] == "vp9"
    assert _stream(data, "audio")["codec_name"] == "opus"
    assert "webm" in data["format"]["format_name"]
    assert float(data["format"]["duration"]) == pytest.approx(2.0, abs=0.08)
    data = _probe(mov.path)
    assert _stream(data, "video")["codec_name"] == "h264"
    assert _stream(data, "audio")["codec_name"] == "aac"
    assert "mov" in data["format"]["format_name"]


def test_a_reframed_clip_shows_the_speaker_and_switches_on_the_cut(tmp_path):
    # Two speakers side by side: left speaks 0-3 s, right 3-6 s (two-speakers-dev.truth.json).
    path = CropPath(
        source_width=1920, source_height=1080, aspect="9:16", duration=2.0,
        keyframes=[Keyframe(0.0, 256, 0, 608, 1080, "cut"), Keyframe(1.0, 1056, 0, 608, 1080, "cut")],
        shots=[ShotLayout(0.0, 2.0, "fill")],
    )  # fmt: skip
    result = render_clip(
        TWO,
        tmp_path / "clip.mp4",
        start=2.0,
        end=4.0,
        settings=RenderSettings(width=480, height=854),
        crop_path=path,
    )

    left_face = _frame(result.path, 0.5, (480, 854))
    right_face = _frame(result.path, 1.5, (480, 854))
    # The same window of the source, cropped by ffmpeg directly, is what the clip shows.
    for t, x, frame in ((2.5, 256, left_face), (3.5, 1056, right_face)):
        done = subprocess.run(
            ["ffmpeg", "-v", "error", "-ss", f"{t}", "-i", str(TWO), "-frames:v", "1",
             "-vf", f"crop=608:1080:{x}:0,scale=480:854:flags=area", "-f", "rawvideo",
             "-pix_fmt", "rgb24", "-"],
            capture_output=True, check=True,
        )  # fmt: skip
        expected = np.frombuffer(done.stdout, np.uint8).reshape(854, 480, 3).astype(int)
        assert np.abs(expected - frame).mean() < 6


def test_split_and_fit_layouts_fill_the_frame(tmp_path):
    shots = [ShotLayout(0.0, 1.0, "split",
                        panels=[{"x": 260, "y": 200, "w": 600, "h": 532},
                                {"x": 1060, "y": 200, "w": 600, "h": 532}]),
             ShotLayout(1.0, 2.0, "fit")]  # fmt: skip
    path = CropPath(1920, 1080, "9:16", 2.0, [Keyframe(0.0, 656, 0, 608, 1080, "cut")], shots)

    result = render_clip(TWO, tmp_path / "clip.mp4", start=0.0, end=2.0,
                         settings=RenderSettings(width=480, height=854), crop_path=path)  # fmt: skip

    assert (result.width, result.height) == (480, 854)
    assert result.duration == pytest.approx(2.0, abs=0.08)
    split, fit = _frame(result.path, 0.5, (480, 854)), _frame(result.path, 1.5, (480, 854))
    top, bottom = split[:427], split[427:]
    assert np.abs(top.mean(axis=(0, 1)) - bottom.mean(axis=(0, 1))).max() < 40  # both faces
    assert np.abs(top - bottom).mean() > 10  # but two different people
    # Fit: the whole 16:9 frame in the middle band, a blurred copy above and below.
    middle = fit[427 - 120 : 427 + 120]
    edge = fit[:150]
    sharp = np.abs(np.diff(middle, axis=1)).mean()
    blurred = np.abs(np.diff(edge, axis=1)).mean()
    assert sharp > 2 * blurred


def test_a_watermark_is_drawn_where_asked(tmp_path):
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGBA", (200, 100), (255, 0, 0, 255)).save(logo)

    result = render_clip(
        BUNNY, tmp_path / "clip.mp4", start=5.0, end=6.0,
        settings=RenderSettings(width=480, height=854),
        watermark={"path": str(logo), "position": "top-right", "scale": 0.25, "opacity": 1.0,
                   "margin": 0.05},
    )  # fmt: skip

    frame = _frame(result.path, 0.5, (480, 854))
    patch = frame[24 + 10 : 24 + 50, 480 - 24 - 110 : 480 - 24 - 10]  # inside the 120x60 logo
    assert patch[..., 0].mean() > 200 and patch[..., 1].mean() < 60 and patch[..., 2].mean() < 60


def test_a_platform_preset_normalises_loudness_and_caps_the_length(tmp_path):
    settings = export_settings(aspect="9:16", quality="low", platform="tiktok")
    assert (settings.width, settings.height, settings.fps) == (480, 854, 30)
    assert settings.loudness == -14.0 and settings.max_seconds == 600
    options = replace(settings, max_seconds=None)

    result = render_clip(GRID, tmp_path / "clip.mp4", start=0.0, end=6.0, settings=options)

    data = _probe(result.path)
    assert _stream(data, "video")["r_frame_rate"] == "30/1"
    sound = audio_features(extract_audio(result.path, tmp_path / "a.wav", sample_rate=48000))
    assert sound.integrated_lufs == pytest.approx(-14.0, abs=2.0)
    with pytest.raises(StageError, match="at most 140 s"):
        render_clip(GRID, tmp_path / "long.mp4", start=0.0, end=150.0,
                    settings=RenderSettings(width=480, height=854,
                                            max_seconds=PLATFORM_PRESETS["twitter"].max_seconds))  # fmt: skip


def test_the_tables_give_the_documented_sizes():
    assert full_size("9:16") == (1080, 1920) and full_size("4:5") == (1080, 1350)
    assert full_size("1:1") == (1080, 1080) and full_size("16:9") == (1920, 1080)
    assert output_size("16:9", 480) == (854, 480)
    assert preview_settings("1:1").width == 480 and preview_settings("1:1").preset == "veryfast"
    assert (full_settings("9:16").width, full_settings("9:16").height) == (1080, 1920)
    assert set(EXPORT_QUALITIES) == {"low", "medium", "high", "ultra"}
    assert set(PLATFORM_PRESETS) == {"youtube", "tiktok", "instagram", "twitter", "linkedin"}
    for preset in PLATFORM_PRESETS.values():
        assert {"size", "fps", "max_bitrate", "max_seconds", "loudness"} <= set(asdict(preset))
    assert export_settings(aspect="1:1", quality="ultra").width == 1080
    with pytest.raises(ValueError):
        export_settings(aspect="9:16", quality="best")
    with pytest.raises(ValueError):
        export_settings(aspect="9:16", quality="low", platform="myspace")


def test_the_crop_expression_matches_the_crop_path():
    frames = [
        Keyframe(0.0, 100, 0, 608, 1080, "cut"),
        Keyframe(1.0, 100, 0, 608, 1080, "linear"),
        Keyframe(1.8, 700, 0, 608, 1080, "inOut"),
        Keyframe(3.0, 200, 0, 608, 1080, "cut"),
        Keyframe(3.5, 200, 0, 608, 1080, "linear"),
        Keyframe(4.0, 400, 0, 608, 1080, "linear"),
    ]
    functions = {"gte": lambda a, b: float(a >= b), "lt": lambda a, b: float(a < b)}
    for offset in (0.0, 1.5):
        expression = _axis_expression(frames, "x", offset, 6.0)
        for t in np.arange(0.0, 6.0 - offset, 0.05):
            value = eval(expression, functions, {"t": float(t)})  # noqa: S307 - our own text
            assert value == pytest.approx(position_at(frames, t + offset)[0], abs=0.01)


def test_the_thumbnail_is_a_sharp_frame_with_a_face_in_the_crop(tmp_path):
    path = crop_path(source_width=360, source_height=288, start=3.0, end=9.0, faces=None)

    picked = thumbnail(
        GRID, tmp_path / "thumb.jpg", times=[3.5, 5.0, 7.5], crop=path, clip_start=3.0
    )

    assert picked["face"] is True and picked["time"] in (3.5, 5.0, 7.5)
    from PIL import Image

    with Image.open(tmp_path / "thumb.jpg") as image:
        assert image.format == "JPEG"
        assert image.size == (162, 288)


def test_the_render_keeps_its_frames_at_the_stills_asked_for_a_thumbnail(tmp_path):
    # GRID, 360x288: a 9:16 crop is 162x288, so the reader gives frames at that size
    result = render_clip(
        GRID, tmp_path / "clip.mp4", start=3.0, end=9.0,
        settings=RenderSettings(width=162, height=288),
        stills=[0.5, 2.0, 4.5, 7.0],
    )  # fmt: skip

    # the frame nearest each time (25 fps); 7.0 is past the clip's end
    assert [t for t, _ in result.stills] == pytest.approx([0.5, 2.0, 4.5], abs=0.021)
    assert all(frame.shape == (288, 162, 3) for _, frame in result.stills)
    # each kept frame is the render's own frame at that time (the output, no captions)
    decoded = _frame(result.path, 2.0, (162, 288))
    kept = dict(result.stills)[2.0].astype(int)
    assert np.abs(decoded - kept).mean() < 6  # x264's loss only

    picked = thumbnail_from_stills(result.stills, tmp_path / "thumb.jpg", width=120)

    assert picked["face"] is True and picked["time"] in [t for t, _ in result.stills]
    from PIL import Image

    with Image.open(tmp_path / "thumb.jpg") as image:
        assert image.format == "JPEG"
        assert image.size == (120, 214)


def test_it_refuses_an_odd_size_and_an_unknown_container(tmp_path):
    with pytest.raises(ValueError):
        render_clip(
            GRID, tmp_path / "a.mp4", start=0, end=1, settings=RenderSettings(width=481, height=854)
        )
    with pytest.raises(ValueError):
        render_clip(
            GRID, tmp_path / "a.avi", start=0, end=1, settings=RenderSettings(width=480, height=854)
        )


def test_a_render_that_reaches_its_size_cap_fails_and_leaves_no_file(tmp_path):
    """Before: the encode had no size cap; a runaway encode wrote until the disk was full."""
    settings = RenderSettings(width=480, height=854, max_output_bytes_per_second=1)
    cap = output_byte_cap(settings, 20.0)
    with pytest.raises(StageError) as caught:
        render_clip(GRID, tmp_path / "clip.mp4", start=4.0, end=24.0, settings=settings)
    assert "passed its size limit" in caught.value.message and caught.value.permanent
    assert caught.value.details["limit"] == {"bytes": cap, "duration": 20.0}
    # ffmpeg stopped at the cap (and the packets it held): these 20 s make 1.3 MB whole.
    assert cap <= caught.value.details["found"]["bytes"] < cap + 400_000
    assert list(tmp_path.iterdir()) == []  # neither the output nor its partial file


def test_the_size_cap_follows_the_bitrate_ceiling_with_headroom():
    low = export_settings(aspect="9:16", quality="low")  # 1500k video, 96k audio
    assert output_byte_cap(low, 10.0) == int(2 * (1_500_000 + 96_000) / 8 * 12 + 65536)
    # Constant quality, no ceiling: 5 MB a second; a setting wins over both.
    assert output_byte_cap(full_settings("9:16"), 10.0) == 5_000_000 * 12 + 65536
    assert output_byte_cap(low, 10.0, ceiling=False) == 5_000_000 * 12 + 65536
    assert output_byte_cap(replace(low, max_output_bytes_per_second=100), 10.0) == 1200 + 65536


def test_an_export_stays_under_its_size_cap(tmp_path):
    settings = export_settings(aspect="9:16", quality="low")
    result = render_clip(GRID, tmp_path / "clip.mp4", start=4.0, end=8.0, settings=settings)
    assert 10_000 < result.size_bytes < output_byte_cap(settings, 4.0)


# --- audio/video sync, measured on a synthetic source ------------------------------------

FPS = 25
EVENTS = (2.00, 4.48, 6.96)  # source seconds of each white flash and each 1 kHz beep
RATE = 48000


def _sync_source(path: Path) -> Path:
    """9 s of 1280x720 black at 25 fps with a white full frame at each event, and silence
    with a 40 ms 1 kHz beep starting at the same instants (sample-exact), as H.264/AAC with
    a keyframe every 2 s (so a clip's start is not on one)."""
    flashes = "+".join(f"eq(n,{round(t * FPS)})" for t in EVENTS)
    beeps = "+".join(f"between(t,{t},{t + 0.04 - 1 / RATE:.6f})" for t in EVENTS)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"color=c=black:s=1280x720:r={FPS}:d=9,"
                              f"drawbox=c=white:t=fill:enable='{flashes}',format=yuv420p",
         "-f", "lavfi", "-i", f"aevalsrc='0.5*sin(2*PI*1000*t)*({beeps})':s={RATE}:d=9",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50",
         "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        capture_output=True, check=True,
    )  # fmt: skip
    return path


def _flash_times(path: Path) -> list[float]:
    """The presentation time of each frame whose mean luma is bright (a flash)."""
    times = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
        capture_output=True, check=True, text=True,
    ).stdout.split()  # fmt: skip
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-vsync", "passthrough",
         "-vf", "scale=64:64", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    luma = np.frombuffer(raw, np.uint8).reshape(-1, 64 * 64).mean(axis=1)
    assert len(luma) == len(times)
    return [float(times[i]) for i in np.flatnonzero(luma > 128)]


def _beep_onsets(path: Path) -> tuple[list[float], float]:
    """The start of each beep (first sample over a quarter of the loudest) and the decoded
    audio's length, in seconds. Sample 0 is time 0: the decoder drops the codec's priming
    samples (AAC's edit list, Opus's pre-skip), as a player does. (ffmpeg 5.1 stamps the
    first Opus frame of a WebM after its pre-skip with a pts 7 ms off, so placing samples
    by pts, `aresample=async=1:first_pts=0`, would misread a WebM by that much.)"""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
         "-ar", str(RATE), "-f", "s16le", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    samples = np.abs(np.frombuffer(raw, "<i2").astype(float))
    loud = np.flatnonzero(samples > samples.max() / 4)
    starts = loud[np.concatenate(([True], np.diff(loud) > RATE // 5))]
    return [float(i) / RATE for i in starts], len(samples) / RATE


@pytest.fixture(scope="module")
def sync_source(tmp_path_factory) -> Path:
    return _sync_source(tmp_path_factory.mktemp("sync") / "sync.mp4")


def test_the_sync_measurement_reads_the_source_right(sync_source):
    flashes = _flash_times(sync_source)
    beeps, _ = _beep_onsets(sync_source)

    assert flashes == pytest.approx(list(EVENTS), abs=1e-3)
    assert beeps == pytest.approx(list(EVENTS), abs=2e-3)


@pytest.mark.parametrize("suffix", ["mp4", "mov", "webm"])
def test_audio_and_video_stay_in_sync_from_an_unaligned_start(tmp_path, sync_source, suffix):
    start, end = 1.37, 8.0  # neither on a keyframe (0, 2, 4 s) nor on a frame (40 ms)

    result = render_clip(
        sync_source,
        tmp_path / f"clip.{suffix}",
        start=start,
        end=end,
        settings=RenderSettings(width=480, height=854),
    )

    # Measured (all three containers): flashes at 0.64, 3.12, 5.60 s (the frame after
    # event - start, +10 ms), beeps at event - start + 0.04 ms; 166 frames, 6.64 s.
    frame = 1 / FPS
    flashes = _flash_times(result.path)
    beeps, decoded = _beep_onsets(result.path)
    assert len(flashes) == len(beeps) == len(EVENTS)
    for flash, beep, event in zip(flashes, beeps, EVENTS, strict=True):
        assert abs(beep - flash) <= frame + 1e-6
        assert abs(flash - (event - start)) <= frame + 1e-6
        # The audio is cut sample-exactly, not on frames: half a frame still catches an
        # AAC priming (21 ms) left in, and a 30 ms shift that one frame would let pass.
        assert abs(beep - (event - start)) <= frame / 2
    data = _probe(result.path)
    audio = _stream(data, "audio")
    stated = audio.get("duration") or audio["tags"]["DURATION"]  # WebM: a tag, h:mm:ss.f
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(stated.split(":"))))
    assert seconds == pytest.approx(end - start, abs=frame)
    assert float(data["format"]["duration"]) == pytest.approx(end - start, abs=frame)
    assert result.duration == pytest.approx(end - start, abs=frame)
    assert decoded == pytest.approx(end - start, abs=frame)  # the audio stream's own length
