"""clips.pipeline.timeline: each format written through OpenTimelineIO parses back with
it and times the cut to the frame of the real source's rate; the FCPXML's transform
keyframes put the crop path's window (a real one, from the faces of the two-speakers
video) in the frame; its captions sit where the chunks do; OTIO keeps the crop path."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest

from clips.pipeline import StageError
from clips.pipeline.captions import caption_chunks
from clips.pipeline.faces import detect_faces
from clips.pipeline.probe import probe
from clips.pipeline.reframe import CropPath, crop_path
from clips.pipeline.timeline import (
    TIMELINE_FORMATS,
    TimelineCut,
    TimelineMedia,
    TransformKey,
    cut_frames,
    timeline_read,
    timeline_write,
    transform_keyframes,
    window_from_transform,
)

MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"
TWO = MEDIA / "talking_head" / "two-speakers-dev.mp4"
WORDS = [
    {"word": w, "start": 3.2 + 0.5 * k, "end": 3.6 + 0.5 * k}
    for k, w in enumerate("Bin blue at F two now. Lay green with N.".split())
]


def plain(value):
    """OpenTimelineIO's metadata containers as plain dicts and lists."""
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    return [plain(v) for v in value]


def _media(path: Path) -> TimelineMedia:
    info = probe(path)
    return TimelineMedia(
        url=f"media/{path.name}",
        fps=info.video.fps,
        duration=info.duration,
        width=info.video.display_width,
        height=info.video.display_height,
        name=path.name,
    )


@pytest.fixture(scope="module")
def two_speakers_crop() -> dict:
    """The crop path of 3.0-15.0 s of the two-speakers video, from its real faces: the
    window moves from one speaker to the other."""
    info = probe(TWO)
    faces = detect_faces(TWO, start=3.0, end=15.0, probe=info)
    path = crop_path(
        source_width=1920, source_height=1080, start=3.0, end=15.0, faces=faces, aspect="9:16"
    )
    xs = {k.x for k in path.keyframes}
    assert max(xs) - min(xs) > 400, "the path should move between the two speakers"
    return path.to_dict()


@pytest.mark.parametrize(
    "video, start, end",
    [
        ("talking_head/grid_concat_11clips_33s.mp4", 3.03, 9.41),  # 25 fps
        ("cuts/big_buck_bunny_0-30s_720p.webm", 11.52, 17.02),  # 24 fps
        ("talking_head/two-speakers-dev.mp4", 0.0, 24.0),  # the whole source
    ],
)
@pytest.mark.parametrize("fmt", TIMELINE_FORMATS)
def test_each_format_parses_back_and_times_the_cut_to_the_frame(video, start, end, fmt):
    media = _media(MEDIA / video)
    cut = TimelineCut(
        name="A clip",
        start=start,
        end=end,
        frame_width=1080,
        frame_height=1920,
        captions=caption_chunks(WORDS, start=start, end=end),
    )
    text = timeline_write(media, cut, fmt)
    back = timeline_read(text, fmt, fps=media.fps)

    first, length = round(start * media.fps), round(end * media.fps) - round(start * media.fps)
    assert cut_frames(start, end, media.fps) == (first, length)
    clips = list(back.find_clips())
    assert len(clips) == (1 if fmt == "edl" else 2)  # CMX 3600 lists the video event
    for clip in clips:
        assert clip.source_range.start_time.rate == pytest.approx(media.fps)
        assert clip.source_range.start_time.value == first
        assert clip.source_range.duration.value == length
        assert clip.source_range.start_time.to_seconds() == pytest.approx(
            start, abs=0.5 / media.fps
        )
        assert clip.source_range.end_time_exclusive().to_seconds() == pytest.approx(
            end, abs=0.5 / media.fps
        )
    assert back.duration().value == length


def test_the_fcpxml_follows_the_crop_path_with_keyframed_transforms(two_speakers_crop):
    media = _media(TWO)
    cut = TimelineCut(
        name="Two", start=3.0, end=15.0, frame_width=1080, frame_height=1920, crop=two_speakers_crop
    )
    root = ET.fromstring(timeline_write(media, cut, "fcpxml").split("<!DOCTYPE fcpxml>")[-1])
    formats = {f.get("id"): f for f in root.iter("format")}
    sequence = root.find(".//sequence")
    assert (
        formats[sequence.get("format")].get("width"),
        formats[sequence.get("format")].get("height"),
    ) == ("1080", "1920")
    asset = root.find(".//asset")
    assert (
        formats[asset.get("format")].get("width"),
        formats[asset.get("format")].get("height"),
    ) == ("1920", "1080")
    video = root.find(".//spine/clip")
    assert video.find("adjust-conform").get("type") == "none"
    transform = video.find("adjust-transform")
    position = transform.find("param[@name='position']/keyframeAnimation")
    scale = transform.find("param[@name='scale']/keyframeAnimation")
    assert len(position) == len(scale) >= 3

    path = CropPath.from_dict(two_speakers_crop)
    first = 3 * 25
    for pos, sc in zip(position, scale, strict=True):
        assert pos.get("time") == sc.get("time")
        frame = Fraction(pos.get("time").rstrip("s")) * 25 - first
        assert frame.denominator == 1  # on a frame
        x, y = (float(v) for v in pos.get("value").split())
        key = TransformKey(frame=int(frame), x=x, y=y, scale=float(sc.get("value").split()[0]))
        cx, cy, h = window_from_transform(
            key, source_width=1920, source_height=1080, frame_height=1920
        )
        wx, wy, ww, wh = path.at(int(frame) / 25)
        assert cx == pytest.approx(wx + ww / 2, abs=1.0)
        assert cy == pytest.approx(wy + wh / 2, abs=1.0)
        assert h == pytest.approx(wh, abs=1.0)
    # the window reaches both speakers: once left of the frame's centre, once right
    xs = [float(k.get("value").split()[0]) for k in position]
    assert min(xs) < -10 and max(xs) > 10


def test_a_cut_in_the_crop_path_jumps_on_its_frame():
    crop = {
        "sourceWidth": 1920,
        "sourceHeight": 1080,
        "aspect": "9:16",
        "duration": 6.0,
        "keyframes": [
            {"t": 0.0, "x": 100, "y": 0, "w": 608, "h": 1080, "ease": "cut"},
            {"t": 2.0, "x": 300, "y": 0, "w": 608, "h": 1080, "ease": "linear"},
            {"t": 3.0, "x": 1200, "y": 0, "w": 608, "h": 1080, "ease": "cut"},
        ],
        "shots": [
            {"start": 0.0, "end": 3.0, "layout": "fill"},
            {"start": 3.0, "end": 4.5, "layout": "fill", "zoom": 2.0},
            {"start": 4.5, "end": 5.0, "layout": "split", "panels": [
                {"x": 10, "y": 0, "w": 960, "h": 540}, {"x": 950, "y": 0, "w": 960, "h": 540}]},
            {"start": 5.0, "end": 6.0, "layout": "fit"},
        ],
    }  # fmt: skip
    keys = {
        k.frame: k for k in transform_keyframes(crop, frame_width=1080, frame_height=1920, fps=25)
    }
    # the linear move from frame 50 to the cut at frame 75 holds until frame 74
    assert keys[74].x == pytest.approx(-1.7778 * (300 + 304 - 960) / 1920 * 100, abs=0.01)
    assert keys[75].scale == pytest.approx(1920 / 540)  # zoomed 2x: half the window
    assert window_from_transform(
        keys[75], source_width=1920, source_height=1080, frame_height=1920
    )[0] == pytest.approx(1200 + 304, abs=1)
    # split: the top panel fills the frame; fit: the whole source, centred
    split = keys[113]  # the first frame at or after 4.5 s
    assert window_from_transform(
        split, source_width=1920, source_height=1080, frame_height=1920
    ) == pytest.approx((490, 270, 540), abs=1)
    fit = keys[125]
    assert (fit.x, fit.y, fit.scale) == (0, 0, pytest.approx(1080 / 1920))
    assert max(keys) == 149  # the clip's last frame


def test_the_fcpxml_has_the_captions_and_the_otio_keeps_the_crop_path(two_speakers_crop):
    media = _media(TWO)
    chunks = caption_chunks(WORDS, start=3.0, end=15.0, max_words=3)
    cut = TimelineCut(
        name="Two",
        start=3.0,
        end=15.0,
        frame_width=1080,
        frame_height=1920,
        crop=two_speakers_crop,
        captions=chunks,
        metadata={"clipId": "clip_x"},
    )
    root = ET.fromstring(timeline_write(media, cut, "fcpxml").split("<!DOCTYPE fcpxml>")[-1])
    captions = root.findall(".//spine/clip/caption")
    assert [c.find("text/text-style").text for c in captions] == [c.text for c in chunks]
    for element, chunk in zip(captions, chunks, strict=True):
        assert element.get("lane") == "1" and element.get("role").startswith("iTT")
        assert Fraction(element.get("offset").rstrip("s")) == Fraction(
            75 + round(chunk.start * 25), 25
        )

    back = timeline_read(timeline_write(media, cut, "otio"), "otio", fps=25)
    for clip in back.find_clips():
        meta = plain(clip.metadata["clypai"])
        assert meta["cropPath"] == two_speakers_crop
        assert meta["clipId"] == "clip_x" and meta["frameSize"] == [1080, 1920]
        assert clip.media_reference.target_url == "media/two-speakers-dev.mp4"


def test_it_rejects_an_unknown_format():
    with pytest.raises(ValueError, match="aaf"):
        timeline_write(_media(TWO), TimelineCut("x", 0, 1, 1080, 1920), "aaf")


@pytest.fixture(scope="module")
def ntsc_source(tmp_path_factory) -> Path:
    """8 s of the GRID talking heads at 29.97 fps (30000/1001), made here with ffmpeg."""
    out = tmp_path_factory.mktemp("ntsc") / "grid-2997.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(MEDIA / "talking_head" / "grid_concat_11clips_33s.mp4"),
         "-t", "8", "-vf", "fps=30000/1001", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("fmt", TIMELINE_FORMATS)
def test_an_ntsc_source_and_frames_the_adapter_misread_come_back_exact(ntsc_source, fmt):
    """29.97 fps, and frames the FCPXML adapter as published reads one short (29 and 113
    of 25 fps, by float truncation): each parses back on its frame."""
    media = _media(ntsc_source)
    assert media.fps == pytest.approx(30000 / 1001)
    grid = _media(MEDIA / "talking_head" / "grid_concat_11clips_33s.mp4")
    cases = [(media, 1.1, 7.2), (grid, 29 / 25, 113 / 25), (grid, 57 / 25, 245 / 25)]
    for source, start, end in cases:
        cut = TimelineCut("Cut", start, end, 1080, 1920)
        back = timeline_read(timeline_write(source, cut, fmt), fmt, fps=source.fps)
        first, length = cut_frames(start, end, source.fps)
        for clip in back.find_clips():
            assert clip.source_range.start_time.value == first, (source.fps, start)
            assert clip.source_range.duration.value == length, (source.fps, start)
            assert clip.source_range.start_time.rate == pytest.approx(source.fps)


def test_an_edl_of_a_source_off_the_smpte_rates_is_refused_with_the_reason():
    media = TimelineMedia(url="media/x.mp4", fps=15.0, duration=60, width=640, height=360)
    with pytest.raises(StageError, match="SMPTE") as caught:
        timeline_write(media, TimelineCut("x", 1, 5, 1080, 1920), "edl")
    assert caught.value.permanent and caught.value.details["fps"] == 15.0
    # the other two formats take any rate
    for fmt in ("fcpxml", "otio"):
        back = timeline_read(
            timeline_write(media, TimelineCut("x", 1, 5, 1080, 1920), fmt), fmt, fps=15
        )
        assert [c.source_range.start_time.value for c in back.find_clips()] == [15, 15]
