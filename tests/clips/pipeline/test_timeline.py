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


# --- split shots and a brand kit's intro and outro ------------------------------------

SPLIT_CROP = {
    "sourceWidth": 1920,
    "sourceHeight": 1080,
    "aspect": "9:16",
    "duration": 6.0,
    "keyframes": [{"t": 0.0, "x": 656, "y": 0, "w": 608, "h": 1080, "ease": "cut"}],
    "shots": [
        {"start": 0.0, "end": 2.13, "layout": "fill"},
        {"start": 2.13, "end": 4.5, "layout": "split", "panels": [
            {"x": 250, "y": 40, "w": 620, "h": 550}, {"x": 1100, "y": 300, "w": 520, "h": 462}]},
        {"start": 4.5, "end": 6.0, "layout": "fill"},
    ],
}  # fmt: skip


def fcpxml_root(text: str) -> ET.Element:
    return ET.fromstring(text.split("<!DOCTYPE fcpxml>")[-1])


def placed(element: ET.Element, *, source: tuple[int, int], frame: tuple[int, int]):
    """Where an FCPXML lane clip puts its picture, by FCPXML's rules and nothing of ours:
    the source at its own pixel size (conform none), trimmed by `trim-rect` (percent of
    the frame's height per edge), scaled about the source's centre, its centre moved by
    `position` (percent of the frame's height, y up) from the frame's centre. Returns the
    trimmed window (source pixels) and the box it fills (frame pixels, y down)."""
    (sw, sh), (fw, fh) = source, frame
    unit = fh / 100
    assert element.find("adjust-conform").get("type") == "none"
    trim = element.find("adjust-crop/trim-rect")
    left, top, right, bottom = (
        float(trim.get(k)) * unit for k in ("left", "top", "right", "bottom")
    )
    transform = element.find("adjust-transform")
    px, py = (float(v) * unit for v in transform.get("position").split())
    sx, sy = (float(v) for v in transform.get("scale").split())
    window = (left, top, sw - left - right, sh - top - bottom)

    def to_frame(x, y):
        return fw / 2 + px + sx * (x - sw / 2), fh / 2 - py + sy * (y - sh / 2)

    x0, y0 = to_frame(window[0], window[1])
    x1, y1 = to_frame(window[0] + window[2], window[1] + window[3])
    return window, (x0, y0, x1 - x0, y1 - y0)


def test_a_split_shot_is_two_panels_on_lanes_timed_to_the_frame_and_placed_as_rendered():
    media = _media(TWO)  # 1920x1080, 25 fps
    chunks = caption_chunks(WORDS, start=3.0, end=9.0)
    cut = TimelineCut("Split", 3.0, 9.0, 1080, 1920, crop=SPLIT_CROP, captions=chunks)
    text = timeline_write(media, cut, "fcpxml")

    # the render's frames of the split shot: round(2.13 * 25) = 53 to round(4.5 * 25) = 112
    first, frames = 53, 112 - 53
    back = timeline_read(text, "fcpxml", fps=25)
    lanes = {track.name: track for track in back.tracks}
    for lane in ("1", "2"):
        items = list(lanes[lane])
        assert [type(i).__name__ for i in items] == ["Gap", "Clip"]
        assert items[0].duration().value == first  # from the cut's start, on the timeline
        panel = items[1]
        assert panel.source_range.start_time.value == 75 + first  # the source's frame
        assert panel.source_range.duration.value == frames
        assert panel.media_reference.target_url == "media/two-speakers-dev.mp4"
    assert back.duration().value == 150  # the cut, no longer for its lanes

    root = fcpxml_root(text)
    cut_clip = root.find(".//spine/clip")
    boxes = [(0, 0, 1080, 960), (0, 960, 1080, 960)]  # the render's vstack: top, bottom
    for lane, panel, box in zip(("1", "2"), SPLIT_CROP["shots"][1]["panels"], boxes, strict=True):
        (element,) = [c for c in cut_clip.findall("clip") if c.get("lane") == lane]
        assert element.find("video").get("ref") == root.find(".//asset").get("id")
        assert Fraction(element.get("offset").rstrip("s")) == Fraction(75 + first, 25)
        assert Fraction(element.get("duration").rstrip("s")) == Fraction(frames, 25)
        window, landed = placed(element, source=(1920, 1080), frame=(1080, 1920))
        assert window == pytest.approx((panel["x"], panel["y"], panel["w"], panel["h"]), abs=0.05)
        assert landed == pytest.approx(box, abs=0.05)
    # the captions' lane is above the panels'
    captions = cut_clip.findall("caption")
    assert len(captions) == len(chunks) > 0 and {c.get("lane") for c in captions} == {"3"}

    # OTIO: both panels in the metadata, no lanes
    otio_back = timeline_read(timeline_write(media, cut, "otio"), "otio", fps=25)
    assert [t.name for t in otio_back.tracks] == ["V1", "A1"]
    meta = plain(otio_back.find_clips()[0].metadata["clypai"])
    assert [(p["panel"], p["startFrame"], p["frames"]) for p in meta["splitPanels"]] == [
        ("top", first, frames), ("bottom", first, frames)]  # fmt: skip
    assert [p["window"] for p in meta["splitPanels"]] == SPLIT_CROP["shots"][1]["panels"]
    assert [p["box"] for p in meta["splitPanels"]] == [
        dict(zip("xywh", b, strict=True)) for b in boxes
    ]
    # EDL: the cut only
    edl = timeline_read(timeline_write(media, cut, "edl"), "edl", fps=25)
    assert [c.source_range.duration.value for c in edl.find_clips()] == [150]


def test_a_landscape_split_puts_its_panels_side_by_side():
    crop = {**SPLIT_CROP, "aspect": "16:9", "keyframes": [
        {"t": 0.0, "x": 0, "y": 0, "w": 1920, "h": 1080, "ease": "cut"}]}  # fmt: skip
    media = _media(TWO)
    root = fcpxml_root(
        timeline_write(media, TimelineCut("S", 3.0, 9.0, 1280, 720, crop=crop), "fcpxml")
    )
    lanes = {c.get("lane"): c for c in root.iter("clip") if c.get("lane") in ("1", "2")}
    assert placed(lanes["1"], source=(1920, 1080), frame=(1280, 720))[1] == pytest.approx(
        (0, 0, 640, 720), abs=0.05
    )
    assert placed(lanes["2"], source=(1920, 1080), frame=(1280, 720))[1] == pytest.approx(
        (640, 0, 640, 720), abs=0.05
    )


@pytest.mark.parametrize("fmt", TIMELINE_FORMATS)
def test_an_intro_and_an_outro_frame_the_cut_on_the_timeline(fmt, two_speakers_crop):
    """A 30 fps intro of 1.3 s with sound (33 frames at 25 fps, as the render's fps
    filter rounds 32.5), a silent outro of 1.52 s at 25 fps (38 frames)."""
    media = _media(TWO)
    intro = TimelineMedia("media/intro-a.mp4", 30.0, 1.3, 320, 240, "intro-a.mp4")
    outro = TimelineMedia("media/outro-b.mp4", 25.0, 1.52, 240, 320, "outro-b.mp4", audio=False)
    chunks = caption_chunks(WORDS, start=3.0, end=15.0, max_words=3)
    cut = TimelineCut(
        "Kit", 3.0, 15.0, 1080, 1920, crop=two_speakers_crop, captions=chunks, intro=intro,
        outro=outro,
    )  # fmt: skip
    text = timeline_write(media, cut, fmt)
    back = timeline_read(text, fmt, fps=25)

    assert back.duration() == otio_time(33 + 300 + 38)
    video = [t for t in back.tracks if t.kind == "Video"][0]
    assert [(c.source_range.start_time.value, c.source_range.duration.value) for c in video] == [
        (0, 33), (75, 300), (0, 38)]  # fmt: skip
    if fmt != "edl":
        assert [c.media_reference.target_url for c in video] == [
            "media/intro-a.mp4", "media/two-speakers-dev.mp4", "media/outro-b.mp4"]  # fmt: skip
    if fmt == "otio":
        meta = plain(video[1].metadata["clypai"])
        assert (meta["timelineStart"], meta["timelineStartFrame"]) == (1.32, 33)
        assert meta["cropPath"] == two_speakers_crop  # clip seconds, as the API's
        audio = [t for t in back.tracks if t.kind == "Audio"][0]
        assert [type(c).__name__ for c in audio] == ["Clip", "Clip", "Gap"]  # a silent outro
    if fmt == "fcpxml":
        root = fcpxml_root(text)
        formats = {f.get("id"): f for f in root.iter("format")}
        assets = {a.get("src"): a for a in root.iter("asset")}
        assert formats[assets["media/intro-a.mp4"].get("format")].attrib | {"id": ""} == {
            "id": "", "name": "FFVideoFormatRateUndefined", "frameDuration": "1/30s",
            "width": "320", "height": "240"}  # fmt: skip
        assert assets["media/outro-b.mp4"].get("hasAudio") == "0"
        spine = root.find(".//spine")
        cut_clip = spine[1]
        assert cut_clip.find("video").get("ref") == assets["media/two-speakers-dev.mp4"].get("id")

        def on_timeline(local: str) -> Fraction:  # a time of the cut clip's, in frames
            own = Fraction(local.rstrip("s")) - Fraction(cut_clip.get("start").rstrip("s"))
            return (Fraction(cut_clip.get("offset").rstrip("s")) + own) * 25

        assert on_timeline(cut_clip.get("start")) == 33
        keys = transform_keyframes(two_speakers_crop, frame_width=1080, frame_height=1920, fps=25)
        times = [k.get("time") for k in cut_clip.find("adjust-transform/param/keyframeAnimation")]
        assert [on_timeline(t) for t in times] == [33 + k.frame for k in keys]
        captions = cut_clip.findall("caption")
        assert [on_timeline(c.get("offset")) for c in captions] == [
            33 + round(c.start * 25) for c in chunks
        ]


def otio_time(frames: int, rate: float = 25):
    import opentimelineio as otio

    return otio.opentime.RationalTime(frames, rate)
