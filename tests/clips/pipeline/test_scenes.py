"""clips.pipeline.scenes: shot boundaries against the cuts the test media are known to have."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from clips.pipeline import StageError, scenes
from clips.pipeline.probe import ProbeLimits, probe
from clips.pipeline.scenes import Shot, detect_scenes
from clypai.lib import ffmpeg

GRID_CONCAT = "talking_head/grid_concat_11clips_33s.mp4"
BUNNY = "cuts/big_buck_bunny_0-30s_720p.webm"


def _boundaries(shots: list[Shot]) -> list[int]:
    return [shot.start_frame for shot in shots[1:]]


def _assert_contiguous(shots: list[Shot], frames: int, seconds: float) -> None:
    assert shots[0].start == 0.0 and shots[0].start_frame == 0
    for before, after in zip(shots, shots[1:], strict=False):
        assert before.end == after.start and before.end_frame == after.start_frame
    assert shots[-1].end_frame == frames
    assert shots[-1].end == pytest.approx(seconds, abs=0.05)


def test_it_finds_every_cut_of_the_grid_concatenation(shared_media):
    truth = json.loads(
        (shared_media / "talking_head/grid_concat_11clips_33s.groundtruth.json").read_text()
    )

    shots = detect_scenes(shared_media / GRID_CONCAT)

    found = _boundaries(shots)
    assert len(found) == len(truth["hard_cuts_frames"]) == 10
    for cut_frame, frame in zip(truth["hard_cuts_frames"], found, strict=True):
        assert abs(frame - cut_frame) <= 2
    starts = [shot.start for shot in shots[1:]]
    assert starts == pytest.approx(truth["hard_cuts_seconds"], abs=2 / 25)
    _assert_contiguous(shots, 825, 33.0)


def test_it_finds_the_hard_cuts_of_big_buck_bunny(shared_media):
    truth = json.loads((shared_media / "cuts/big_buck_bunny_0-30s.cuts.json").read_text())
    result = probe(shared_media / BUNNY, limits=ProbeLimits())

    shots = detect_scenes(shared_media / BUNNY, probe=result)

    found = _boundaries(shots)
    for cut in truth["hard_cuts"]:
        assert min(abs(frame - cut["frame"]) for frame in found) <= 2, (cut, found)
    # Anything else must sit in one of the fades or overlays the curator listed.
    spans = [(start - 0.5, end + 0.5) for start, end, _ in truth["gradual_transitions_s"]]
    for shot in shots[1:]:
        if min(abs(shot.start_frame - cut["frame"]) for cut in truth["hard_cuts"]) > 2:
            assert any(start <= shot.start <= end for start, end in spans), shot
    _assert_contiguous(shots, truth["frames"], 30.0)


def test_a_1080p_source_without_cuts_is_one_shot_decoded_small(shared_media, monkeypatch):
    seen: list[list[str]] = []
    real_stream = ffmpeg.stream

    def spy(args, **kwargs):
        seen.append(list(args))
        return real_stream(args, **kwargs)

    monkeypatch.setattr(scenes.ffmpeg, "stream", spy)

    shots = detect_scenes(shared_media / "talking_head/two-speakers-dev.mp4")

    assert shots == [Shot(start=0.0, end=24.04, start_frame=0, end_frame=601)]
    (args,) = seen
    filters = args[args.index("-vf") + 1]
    assert "scale=256:144" in filters  # 1920x1080 is never handed to Python
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert "-format_whitelist" in args


def test_a_60_fps_source_is_analysed_at_30_and_reported_in_its_own_frames(tmp_path):
    source = tmp_path / "fast.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=60:duration=1.5",
            "-f",
            "lavfi",
            "-i",
            "smptebars=size=320x240:rate=60:duration=1.5",
            "-filter_complex",
            "[0][1]concat=n=2:v=1:a=0",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(source),
        ],
        check=True,
    )

    shots = detect_scenes(source, max_fps=30)

    assert len(shots) == 2
    assert abs(shots[1].start_frame - 90) <= 2  # source frames, at 60 fps
    assert shots[1].start == pytest.approx(1.5, abs=2 / 60)
    assert shots[1].end_frame == 180


def test_a_rotated_source_is_decoded_upright(tmp_path, monkeypatch):
    plain = tmp_path / "plain.mp4"
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(plain),
        ],
        check=True,
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(plain),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )

    seen: list[list[str]] = []
    real_stream = ffmpeg.stream
    monkeypatch.setattr(
        scenes.ffmpeg,
        "stream",
        lambda args, **kw: seen.append(list(args)) or real_stream(args, **kw),
    )

    shots = detect_scenes(rotated)

    assert shots == [Shot(start=0.0, end=2.0, start_frame=0, end_frame=50)]
    # ffmpeg turns the frames upright, so they are scaled to the display's 240x320.
    filters = seen[0][seen[0].index("-vf") + 1]
    assert "scale=240:320" in filters


def test_the_content_detector_is_there_for_bold_cuts(shared_media):
    shots = detect_scenes(shared_media / BUNNY, detector="content")

    assert _boundaries(shots) == [283, 376, 551]


def test_it_refuses_what_probe_refuses(tmp_path):
    upload = tmp_path / "upload.mp4"
    upload.write_text("ffconcat version 1.0\nfile other.mp4\n")

    with pytest.raises(StageError) as caught:
        detect_scenes(upload)

    assert caught.value.details["found"] == {"format": "concat"}


def test_a_set_stop_ends_the_decode_early_with_no_shots(shared_media):
    stop = threading.Event()
    stop.set()

    assert detect_scenes(shared_media / GRID_CONCAT, stop=stop) == []
