"""A clip as an editor's timeline: OpenTimelineIO (`.otio`), Final Cut Pro XML
(`.fcpxml`) or a CMX 3600 EDL (`.edl`), written by OpenTimelineIO and its adapters.

The timeline holds the clip's cut of the source: one video and one audio clip whose
source range is the clip's start and end in whole frames of the source's own frame rate
(`cut_frames`), on a timeline that starts at zero, so the clip's SRT (times from the
clip's start) lines up with it. What each format carries beyond the cut:

- `otio`: the crop path (and whatever else the caller passes) in the clip's
  `metadata["clypai"]`; the captions in the sidecar SRT.
- `fcpxml`: the crop path as the video clip's `adjust-transform`, keyframed position and
  scale over the source at its own pixel size (`adjust-conform type="none"`), on a
  sequence of the clip's frame size (say 1080x1920); the captions as `caption` elements
  on a lane above the video. The adapter writes neither (nor frame sizes): they are
  added to its XML here (`_fcpxml_finish`).
- `edl`: the cut only (CMX 3600 has no place for the rest); captions in the SRT.

Transform arithmetic (FCPXML): with the source at its own pixel size, a crop window of
height h fills the frame at scale S = frame height / h; its centre (cx, cy) lands on the
frame's centre when the position is (-S·(cx - W/2), S·(cy - H/2)) pixels (y up), which
FCPXML writes as a percentage of the frame's height. A `fit` shot shows the whole source
scaled to fit; a `split` shot follows its first (top) panel: an editor rebuilds a split
from two copies of the clip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .base import StageError

# The formats and the extension of each timeline file.
TIMELINE_FORMATS: dict[str, str] = {"otio": ".otio", "fcpxml": ".fcpxml", "edl": ".edl"}
_ADAPTERS = {"otio": "otio_json", "fcpxml": "fcpx_xml", "edl": "cmx_3600"}
# FCPXML's caption role for Final Cut Pro's iTT captions (English by default).
CAPTION_ROLE = "iTT?captionFormat=ITT.{language}"


@dataclass(frozen=True)
class TimelineMedia:
    """The source as the timeline names it: `url` (relative to the timeline's folder,
    e.g. "media/source.mp4"), its frame rate, length in seconds and display size."""

    url: str
    fps: float
    duration: float
    width: int
    height: int
    name: str = ""


@dataclass(frozen=True)
class TimelineCut:
    """The clip: its name, its range of the source in seconds, the frame size it is
    made at, its crop path (`CropPath.to_dict()`, times from the clip's start) and its
    caption chunks (`captions.CaptionChunk`, times from the clip's start)."""

    name: str
    start: float
    end: float
    frame_width: int
    frame_height: int
    crop: dict[str, Any] | None = None
    captions: Sequence[Any] = ()
    language: str = "en"
    metadata: dict[str, Any] = field(default_factory=dict)


def frame_rate(fps: float) -> Fraction:
    """The source's frame rate as a fraction (29.97003 -> 30000/1001)."""
    if not fps or fps <= 0:
        raise StageError("The source has no frame rate", {"stage": "timeline"}, permanent=True)
    return Fraction(fps).limit_denominator(1001)


def cut_frames(start: float, end: float, fps: float) -> tuple[int, int]:
    """The clip's first frame and its length in frames, at the source's frame rate."""
    rate = frame_rate(fps)
    first = round(Fraction(start) * rate)
    last = round(Fraction(end) * rate)
    return first, max(1, last - first)


def timeline_build(media: TimelineMedia, cut: TimelineCut):
    """The OpenTimelineIO timeline of the clip: a video track and an audio track, each
    holding the clip's cut of the source."""
    import opentimelineio as otio

    rate = float(frame_rate(media.fps))
    first, length = cut_frames(cut.start, cut.end, media.fps)
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    available = tr(rt(0, rate), rt(max(round(media.duration * rate), first + length), rate))
    metadata = {
        **cut.metadata,
        "sourceStart": cut.start,
        "sourceEnd": cut.end,
        "frameSize": [cut.frame_width, cut.frame_height],
    }
    if cut.crop:
        metadata.setdefault("cropPath", cut.crop)
    timeline = otio.schema.Timeline(name=cut.name)
    for kind, track_name in (
        (otio.schema.TrackKind.Video, "V1"),
        (otio.schema.TrackKind.Audio, "A1"),
    ):
        track = otio.schema.Track(name=track_name, kind=kind)
        clip = otio.schema.Clip(
            name=media.name or cut.name,
            media_reference=otio.schema.ExternalReference(
                target_url=media.url, available_range=available
            ),
            source_range=tr(rt(first, rate), rt(length, rate)),
        )
        clip.metadata["clypai"] = metadata
        track.append(clip)
        timeline.tracks.append(track)
    return timeline


def timeline_write(media: TimelineMedia, cut: TimelineCut, fmt: str) -> str:
    """The clip's timeline in `fmt` (otio, fcpxml or edl), as text."""
    import opentimelineio as otio

    if fmt not in TIMELINE_FORMATS:
        raise ValueError(f"unknown timeline format {fmt!r}: {', '.join(TIMELINE_FORMATS)}")
    timeline = timeline_build(media, cut)
    if fmt == "fcpxml":
        writer, _ = _fcpx_exact()
        return _fcpxml_finish(writer(timeline, media.fps).to_xml(), media, cut)
    try:
        return otio.adapters.write_to_string(timeline, _ADAPTERS[fmt])
    except ValueError as err:  # CMX 3600 timecode knows only the SMPTE rates
        if fmt != "edl":
            raise
        raise StageError(
            f"An EDL needs a SMPTE timecode rate (24, 25, 30, 50, 60 and their NTSC "
            f"variants); this source runs at {media.fps:g} fps: export fcpxml or otio",
            {"stage": "export", "format": fmt, "fps": media.fps, "reason": str(err)},
            permanent=True,
        ) from None


def timeline_read(text: str, fmt: str, *, fps: float):
    """Parse a timeline written by `timeline_write` back with OpenTimelineIO (what an
    editor's importer, and the tests, see)."""
    import opentimelineio as otio

    if fmt == "edl":
        return otio.adapters.read_from_string(text, "cmx_3600", rate=float(frame_rate(fps)))
    if fmt == "fcpxml":
        _, reader = _fcpx_exact()
        return reader(text).to_otio()
    return otio.adapters.read_from_string(text, _ADAPTERS[fmt])


def _seconds_text(seconds: Fraction) -> str:
    """Seconds as FCPXML writes them ("0s", "3s", "149/25s")."""
    if seconds == 0:
        return "0s"
    if seconds.denominator == 1:
        return f"{seconds.numerator}s"
    return f"{seconds.numerator}/{seconds.denominator}s"


_FCPX_CLASSES: tuple[type, type] | None = None


def _fcpx_exact() -> tuple[type, type]:
    """The FCPXML adapter's writer and reader, with exact time arithmetic.

    As published (1.0.0) the adapter multiplies floats and truncates: at 25 fps it reads
    "29/25s" as frame 28 (9,174 of the first 200,000 frames read one short), it reads
    29.97 fps as 29, and it cannot write a rate outside its table (29.97 fps as probed,
    15 fps). Its two module-level time helpers are replaced by exact ones (fractions,
    rounded to the nearest frame), and the writer and reader classes take the rate from
    the format's frameDuration as a fraction. The XML it writes is the same otherwise.
    """
    global _FCPX_CLASSES
    if _FCPX_CLASSES is not None:
        return _FCPX_CLASSES
    import opentimelineio as otio
    from otio_fcpx_xml_adapter import fcpx_xml

    def to_rational_time(rational_number, fps):
        rate = frame_rate(float(fps))
        frames = 0
        if rational_number not in ("0s", None):
            frames = round(Fraction(rational_number.rstrip("s")) * rate)
        return otio.opentime.RationalTime(frames, float(rate))

    def from_rational_time(rational_time):
        return _seconds_text(Fraction(rational_time.value) / frame_rate(rational_time.rate))

    fcpx_xml.to_rational_time = to_rational_time
    fcpx_xml.from_rational_time = from_rational_time

    class Writer(fcpx_xml.FcpxOtio):
        def __init__(self, timeline, fps: float):
            super().__init__(timeline)
            self._rate = frame_rate(fps)

        def _frame_rate_from_element(self, element, default_format_id):
            return float(self._rate)

        @staticmethod
        def _framerate_to_frame_duration(framerate):
            return _seconds_text(1 / frame_rate(float(framerate)))

        @staticmethod
        def _calculate_rational_number(duration, rate):
            return _seconds_text(Fraction(duration) / frame_rate(float(rate)))

    class Reader(fcpx_xml.FcpxXml):
        def _format_frame_rate(self, format_id):
            total, rate = self._format_frame_duration(format_id)
            return float(Fraction(int(rate), int(total)))

        def _number_of_frames(self, time_value, format_id):
            if time_value in ("0s", None):
                return 0
            total, rate = self._format_frame_duration(format_id)
            return round(Fraction(time_value.rstrip("s")) * Fraction(int(rate), int(total)))

    _FCPX_CLASSES = (Writer, Reader)
    return _FCPX_CLASSES


# --- the crop path as a transform ----------------------------------------------------


@dataclass(frozen=True)
class TransformKey:
    """The source's transform at `frame` (frames from the clip's start): position in
    percent of the frame's height (y up) and scale."""

    frame: int
    x: float
    y: float
    scale: float


def transform_keyframes(
    crop: dict[str, Any], *, frame_width: int, frame_height: int, fps: float
) -> list[TransformKey]:
    """The crop path as transform keyframes on frames of the clip: one at each keyframe
    of the path and each shot's start; a cut (a keyframe eased `cut`, a new shot) holds
    the window up to the frame before it, so it jumps on its frame as the render does."""
    from .reframe import CropPath

    path = CropPath.from_dict(crop)
    rate = frame_rate(fps)
    last = max(0, round(Fraction(path.duration) * rate) - 1)
    # A cut shows on the first frame at or after its time, as the render's frames do.
    cuts = {math.ceil(Fraction(s.start) * rate) for s in path.shots[1:]}
    cuts |= {math.ceil(Fraction(k.t) * rate) for k in path.keyframes[1:] if k.ease == "cut"}
    frames = {0, last} | {round(Fraction(k.t) * rate) for k in path.keyframes} | cuts
    frames |= {f - 1 for f in cuts if f > 0}
    keys = []
    for frame in sorted(f for f in frames if 0 <= f <= last):
        t = float(frame / rate)
        x, y, scale = _transform_at(path, t, frame_width, frame_height)
        keys.append(TransformKey(frame=frame, x=x, y=y, scale=scale))
    return keys


def _transform_at(
    path, t: float, frame_width: int, frame_height: int
) -> tuple[float, float, float]:
    width, height = path.source_width, path.source_height
    shot = path.shot_at(t) if path.shots else None
    if shot is not None and shot.layout == "fit":
        scale = min(frame_width / width, frame_height / height)
        cx, cy = width / 2, height / 2
    else:
        if shot is not None and shot.layout == "split" and shot.panels:
            panel = shot.panels[0]
            x, y, w, h = panel["x"], panel["y"], panel["w"], panel["h"]
        else:
            x, y, w, h = path.at(t)
        scale = frame_height / h
        cx, cy = x + w / 2, y + h / 2
    px = -scale * (cx - width / 2)
    py = scale * (cy - height / 2)
    return (
        round(px / frame_height * 100, 4) + 0.0,
        round(py / frame_height * 100, 4) + 0.0,
        round(scale, 6),
    )


def window_from_transform(
    key: TransformKey, *, source_width: int, source_height: int, frame_height: int
) -> tuple[float, float, float]:
    """The crop window's centre (cx, cy) and height a transform key shows: the inverse of
    `_transform_at`, for checking an FCPXML's keyframes against the crop path."""
    px = key.x * frame_height / 100
    py = key.y * frame_height / 100
    return (
        source_width / 2 - px / key.scale,
        source_height / 2 + py / key.scale,
        frame_height / key.scale,
    )


# --- FCPXML --------------------------------------------------------------------------


def _rational(frames: int, rate: Fraction) -> str:
    """`frames` at `rate` as FCPXML's rational seconds ("3/25s", "0s")."""
    return _seconds_text(Fraction(frames) / rate)


def _fcpxml_finish(text: str, media: TimelineMedia, cut: TimelineCut) -> str:
    """Add to the adapter's FCPXML what it does not write: frame sizes (the asset's, and
    the sequence's own format at the clip's frame size), the crop path as the video
    clip's keyframed transform, and the captions as `caption` elements."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text.split("<!DOCTYPE fcpxml>", 1)[-1].strip())
    rate = frame_rate(media.fps)
    frame_duration = _rational(1, rate)
    resources = root.find("resources")
    ids = [int(e.get("id", "r0")[1:]) for e in resources if e.get("id", "").startswith("r")]
    asset_format = resources.find("format")
    asset_format.attrib.update(
        frameDuration=frame_duration,
        width=str(media.width),
        height=str(media.height),
        name=asset_format.get("name") or "FFVideoFormatRateUndefined",
    )
    sequence_format = ET.Element(
        "format",
        id=f"r{max(ids) + 1}",
        name="FFVideoFormatRateUndefined",
        frameDuration=frame_duration,
        width=str(cut.frame_width),
        height=str(cut.frame_height),
    )
    resources.insert(1, sequence_format)
    sequence = root.find(".//project/sequence")
    sequence.set("format", sequence_format.get("id"))
    first, _ = cut_frames(cut.start, cut.end, media.fps)
    video = next(c for c in sequence.find("spine") if c.tag == "clip")

    intrinsic = []
    if cut.crop:
        intrinsic.append(ET.Element("adjust-conform", type="none"))
        keys = transform_keyframes(
            cut.crop, frame_width=cut.frame_width, frame_height=cut.frame_height, fps=media.fps
        )
        transform = ET.Element(
            "adjust-transform",
            position=f"{keys[0].x} {keys[0].y}",
            scale=f"{keys[0].scale} {keys[0].scale}",
        )
        # Keyframe times are the clip's own: its start in the source plus the frame.
        for name, value in (
            ("position", lambda k: f"{k.x} {k.y}"),
            ("scale", lambda k: f"{k.scale} {k.scale}"),
        ):
            param = ET.SubElement(transform, "param", name=name)
            animation = ET.SubElement(param, "keyframeAnimation")
            for key in keys:
                ET.SubElement(
                    animation,
                    "keyframe",
                    time=_rational(first + key.frame, rate),
                    value=value(key),
                    **({"curve": "linear"} if name == "scale" else {}),
                )
        intrinsic.append(transform)
    for index, element in enumerate(intrinsic):
        video.insert(index, element)

    for number, chunk in enumerate(cut.captions, start=1):
        begin = round(Fraction(chunk.start) * rate)
        length = max(1, round(Fraction(chunk.end) * rate) - begin)
        caption = ET.SubElement(
            video,
            "caption",
            name=chunk.text[:40],
            lane="1",
            offset=_rational(first + begin, rate),
            duration=_rational(length, rate),
            role=CAPTION_ROLE.format(language=cut.language or "en"),
        )
        style_id = f"ts{number}"
        body = ET.SubElement(caption, "text")
        ET.SubElement(body, "text-style", ref=style_id).text = chunk.text
        definition = ET.SubElement(caption, "text-style-def", id=style_id)
        ET.SubElement(definition, "text-style", font=".SF NS Text", fontSize="13")

    ET.indent(root, space="    ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n'
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )
