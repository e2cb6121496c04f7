"""A clip as an editor's timeline: OpenTimelineIO (`.otio`), Final Cut Pro XML
(`.fcpxml`) or a CMX 3600 EDL (`.edl`), written by OpenTimelineIO and its adapters.

The timeline holds the clip's cut of the source: one video and one audio clip whose
source range is the clip's start and end in whole frames of the source's own frame rate
(`cut_frames`), on a timeline that starts at zero. When the clip's brand kit has an
intro or an outro (`TimelineCut.intro` / `.outro`), each is a clip of its own media
before or after the cut, as long as the render makes it (`bumper_frames`: its picture
at the timeline's rate), and the cut starts after the intro (`cut_offset`): the SRT the
caller writes beside the timeline is shifted by as much. What each format carries
beyond the cut:

- `otio`: the crop path (and whatever else the caller passes) in the cut's
  `metadata["clypai"]` (clip seconds; `timelineStart` says where the cut starts), and
  each split shot's two panels (`splitPanels`: the window of the source each shows and
  the part of the frame it fills); the captions in the sidecar SRT.
- `fcpxml`: the crop path as the video clip's `adjust-transform`, keyframed position and
  scale over the source at its own pixel size (`adjust-conform type="none"`), on a
  sequence of the clip's frame size (say 1080x1920); each split shot as the render
  composes it, two connected clips of the source over the shot's frames on lanes 1 and 2
  (top and bottom panel, or left and right for a landscape frame), each trimmed to its
  panel's window (`adjust-crop`) and placed on its half of the frame (`adjust-transform`);
  the captions as `caption` elements on a lane above those. The adapter writes none of
  that (nor frame sizes, nor the intro's and outro's own formats): it is added to its
  XML here (`_fcpxml_finish`). The intro and outro keep FCPXML's default conform (fit),
  as the render fits them into the frame.
- `edl`: the cut (and the intro and outro) only, as CMX 3600 has no place for the rest;
  captions in the SRT.

Transform arithmetic (FCPXML): with the source at its own pixel size, a crop window of
height h fills the frame at scale S = frame height / h; its centre (cx, cy) lands on the
frame's centre when the position is (-S·(cx - W/2), S·(cy - H/2)) pixels (y up), which
FCPXML writes as a percentage of the frame's height. A panel of a split shot scales by
(box width / window width, box height / window height) and its window's centre lands on
its box's centre; its trim (`trim-rect`) is the window's distance from each edge of the
source, in source pixels as a percentage of the frame's height, the unit of position. A
`fit` shot shows the whole source scaled to fit. Under a split shot's two panels the cut
itself follows the top panel (hidden by them).
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
    """A media file as the timeline names it (the source, or a brand kit's intro or
    outro): `url` (relative to the timeline's folder, e.g. "media/source.mp4"), its frame
    rate, length in seconds (an intro's or outro's: of its picture) and display size."""

    url: str
    fps: float
    duration: float
    width: int
    height: int
    name: str = ""
    audio: bool = True  # an intro or outro may have no sound (the render adds silence)


@dataclass(frozen=True)
class TimelineCut:
    """The clip: its name, its range of the source in seconds, the frame size it is
    made at, its crop path (`CropPath.to_dict()`, times from the clip's start), its
    caption chunks (`captions.CaptionChunk`, times from the clip's start) and its brand
    kit's intro and outro, if any."""

    name: str
    start: float
    end: float
    frame_width: int
    frame_height: int
    crop: dict[str, Any] | None = None
    captions: Sequence[Any] = ()
    language: str = "en"
    metadata: dict[str, Any] = field(default_factory=dict)
    intro: TimelineMedia | None = None  # the brand kit's, before the cut
    outro: TimelineMedia | None = None  # and after it


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


def bumper_frames(bumper: TimelineMedia, fps: float) -> int:
    """An intro's or outro's length in frames of the timeline's rate (`fps`, the
    source's): as the render brings its picture to the clip's rate (ffmpeg's fps filter,
    which rounds half a frame up)."""
    return max(1, math.floor(Fraction(bumper.duration) * frame_rate(fps) + Fraction(1, 2)))


def cut_offset(cut: TimelineCut, fps: float) -> int:
    """Where the cut starts on the timeline, in frames: after the intro, if any."""
    return bumper_frames(cut.intro, fps) if cut.intro else 0


@dataclass(frozen=True)
class PanelPlacement:
    """One panel of a split shot as the render composes it: over the clip's frames
    [first, first + frames), the source's `window` (x, y, w, h, source pixels) scaled to
    fill `box` (x, y, w, h, frame pixels from the top left): the top (0) or bottom (1)
    half of a portrait frame, the left or right half of a landscape one."""

    shot: int  # the shot's index in the crop path
    panel: int  # 0: top (or left), 1: bottom (or right)
    first: int
    frames: int
    window: tuple[int, int, int, int]
    box: tuple[float, float, float, float]

    def to_dict(self, fps: float) -> dict[str, Any]:
        rate = frame_rate(fps)
        return {
            "shot": self.shot,
            "panel": (("top", "bottom") if self.box[2] > self.box[3] else ("left", "right"))[
                self.panel
            ],
            "start": float(self.first / rate),
            "end": float((self.first + self.frames) / rate),
            "startFrame": self.first,
            "frames": self.frames,
            "window": dict(zip("xywh", self.window, strict=True)),
            "box": dict(zip("xywh", self.box, strict=True)),
        }


def split_panels(
    crop: dict[str, Any] | None, *, frames: int, fps: float, frame_width: int, frame_height: int
) -> list[PanelPlacement]:
    """The panels of the crop path's split shots, over the frames the render gives each
    shot (its own segments of the clip's `frames`), each placed as the render stacks it:
    one above the other when the frame is at least as tall as wide, else side by side."""
    if not crop:
        return []
    from .reframe import CropPath
    from .render.reader import _segments

    path = CropPath.from_dict(crop)
    if not any(s.layout == "split" and len(s.panels) >= 2 for s in path.shots):
        return []
    width, height = frame_width, frame_height
    if height >= width:
        boxes = [(0.0, 0.0, width, height / 2), (0.0, height / 2, width, height / 2)]
    else:
        boxes = [(0.0, 0.0, width / 2, height), (width / 2, 0.0, width / 2, height)]
    placed = []
    for segment in _segments(path, frames, frame_rate(fps)):
        if segment.layout != "split" or len(segment.panels) < 2:
            continue
        shot = next(i for i, s in enumerate(path.shots) if s.panels == segment.panels)
        for index, (window, box) in enumerate(zip(segment.panels[:2], boxes, strict=True)):
            placed.append(
                PanelPlacement(
                    shot=shot,
                    panel=index,
                    first=segment.first,
                    frames=segment.last - segment.first,
                    window=(window["x"], window["y"], window["w"], window["h"]),
                    box=tuple(float(v) for v in box),
                )
            )
    return placed


def timeline_build(media: TimelineMedia, cut: TimelineCut, *, panel_lanes: bool = False):
    """The OpenTimelineIO timeline of the clip: a video track and an audio track, each
    holding the intro (if any), the clip's cut of the source and the outro (if any).
    `panel_lanes`: two more video tracks holding each split shot's top and bottom panel
    over its frames (what FCPXML turns into lanes 1 and 2)."""
    import opentimelineio as otio

    rate = float(frame_rate(media.fps))
    first, length = cut_frames(cut.start, cut.end, media.fps)
    offset = cut_offset(cut, media.fps)
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    available = tr(rt(0, rate), rt(max(round(media.duration * rate), first + length), rate))
    panels = split_panels(
        cut.crop,
        frames=length,
        fps=media.fps,
        frame_width=cut.frame_width,
        frame_height=cut.frame_height,
    )
    metadata = {
        **cut.metadata,
        "sourceStart": cut.start,
        "sourceEnd": cut.end,
        "frameSize": [cut.frame_width, cut.frame_height],
        "timelineStart": float(offset / frame_rate(media.fps)),
        "timelineStartFrame": offset,
    }
    if cut.crop:
        metadata.setdefault("cropPath", cut.crop)
    if panels:
        metadata["splitPanels"] = [p.to_dict(media.fps) for p in panels]

    def source_clip(name: str, start: int, frames: int, meta: dict[str, Any]):
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(
                target_url=media.url, available_range=available
            ),
            source_range=tr(rt(start, rate), rt(frames, rate)),
        )
        clip.metadata["clypai"] = meta
        return clip

    def bumper_clip(bumper: TimelineMedia, role: str, audio: bool):
        frames = bumper_frames(bumper, media.fps)
        if audio and not bumper.audio:  # the render gives it silence
            return otio.schema.Gap(source_range=tr(rt(0, rate), rt(frames, rate)))
        own = float(frame_rate(bumper.fps))
        clip = otio.schema.Clip(
            name=bumper.name or role,
            media_reference=otio.schema.ExternalReference(
                target_url=bumper.url,
                available_range=tr(rt(0, own), rt(max(1, round(bumper.duration * own)), own)),
            ),
            source_range=tr(rt(0, rate), rt(frames, rate)),
        )
        clip.metadata["clypai"] = {"role": role, "frameSize": [bumper.width, bumper.height]}
        return clip

    timeline = otio.schema.Timeline(name=cut.name)
    for kind, track_name in (
        (otio.schema.TrackKind.Video, "V1"),
        (otio.schema.TrackKind.Audio, "A1"),
    ):
        track = otio.schema.Track(name=track_name, kind=kind)
        audio = kind == otio.schema.TrackKind.Audio
        if cut.intro:
            track.append(bumper_clip(cut.intro, "intro", audio))
        track.append(source_clip(media.name or cut.name, first, length, metadata))
        if cut.outro:
            track.append(bumper_clip(cut.outro, "outro", audio))
        timeline.tracks.append(track)
    if panel_lanes and panels:
        for index, track_name in ((0, "V2"), (1, "V3")):
            track = otio.schema.Track(name=track_name, kind=otio.schema.TrackKind.Video)
            at = 0
            for panel in (p for p in panels if p.panel == index):
                gap = offset + panel.first - at
                if gap > 0:
                    track.append(otio.schema.Gap(source_range=tr(rt(0, rate), rt(gap, rate))))
                meta = {"splitPanel": panel.to_dict(media.fps)}
                name = f"{media.name or cut.name} ({meta['splitPanel']['panel']} panel)"
                track.append(source_clip(name, first + panel.first, panel.frames, meta))
                at = offset + panel.first + panel.frames
            timeline.tracks.append(track)
    return timeline


def timeline_write(media: TimelineMedia, cut: TimelineCut, fmt: str) -> str:
    """The clip's timeline in `fmt` (otio, fcpxml or edl), as text."""
    import opentimelineio as otio

    if fmt not in TIMELINE_FORMATS:
        raise ValueError(f"unknown timeline format {fmt!r}: {', '.join(TIMELINE_FORMATS)}")
    timeline = timeline_build(media, cut, panel_lanes=fmt == "fcpxml")
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
        # Clips sit on the sequence's frame grid: an intro at 30 fps in a 25 fps sequence
        # is timed in the sequence's frames, as an editor places it (not in its own).
        def _format_id_for_clip(self, clip, default_format):
            return default_format

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
    """Add to the adapter's FCPXML what it does not write: frame sizes (the source's,
    the intro's and outro's own formats, and the sequence's at the clip's frame size),
    the crop path as the video clip's keyframed transform, each split shot's panels
    trimmed and placed on their lanes, and the captions as `caption` elements."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text.split("<!DOCTYPE fcpxml>", 1)[-1].strip())
    rate = frame_rate(media.fps)
    frame_duration = _rational(1, rate)
    resources = root.find("resources")
    ids = [int(e.get("id", "r0")[1:]) for e in resources if e.get("id", "").startswith("r")]
    next_id = iter(range(max(ids) + 1, max(ids) + 10))
    asset_format = resources.find("format")
    asset_format.attrib.update(
        frameDuration=frame_duration,
        width=str(media.width),
        height=str(media.height),
        name=asset_format.get("name") or "FFVideoFormatRateUndefined",
    )
    sequence_format = ET.Element(
        "format",
        id=f"r{next(next_id)}",
        name="FFVideoFormatRateUndefined",
        frameDuration=frame_duration,
        width=str(cut.frame_width),
        height=str(cut.frame_height),
    )
    resources.insert(1, sequence_format)
    # The adapter gives every asset the sequence's rate: an intro or outro gets its own.
    for bumper in (b for b in (cut.intro, cut.outro) if b is not None):
        asset = resources.find(f"asset[@src='{bumper.url}']")
        if asset is None or asset.get("format") != asset_format.get("id"):
            continue
        own = ET.Element(
            "format",
            id=f"r{next(next_id)}",
            name="FFVideoFormatRateUndefined",
            frameDuration=_rational(1, frame_rate(bumper.fps)),
            width=str(bumper.width),
            height=str(bumper.height),
        )
        resources.insert(list(resources).index(sequence_format) + 1, own)
        asset.set("format", own.get("id"))
        for asset_clip in root.findall(f"asset-clip[@ref='{asset.get('id')}']"):
            asset_clip.set("format", own.get("id"))
    # The adapter writes a browser clip per clip name (and some twice): one per asset.
    seen = set()
    for asset_clip in root.findall("asset-clip"):
        if asset_clip.get("ref") in seen:
            root.remove(asset_clip)
        seen.add(asset_clip.get("ref"))
    sequence = root.find(".//project/sequence")
    sequence.set("format", sequence_format.get("id"))
    first, length = cut_frames(cut.start, cut.end, media.fps)
    source_id = resources.find(f"asset[@src='{media.url}']").get("id")
    video = next(
        c
        for c in sequence.find("spine")
        if c.tag == "clip"
        and c.find("video") is not None
        and c.find("video").get("ref") == source_id
    )

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

    panels = split_panels(
        cut.crop,
        frames=length,
        fps=media.fps,
        frame_width=cut.frame_width,
        frame_height=cut.frame_height,
    )
    for panel in panels:
        _fcpxml_place_panel(root, panel, media=media, cut=cut, start=first + panel.first)

    caption_lane = "3" if panels else "1"  # above the panels' lanes
    for number, chunk in enumerate(cut.captions, start=1):
        begin = round(Fraction(chunk.start) * rate)
        length = max(1, round(Fraction(chunk.end) * rate) - begin)
        caption = ET.SubElement(
            video,
            "caption",
            name=chunk.text[:40],
            lane=caption_lane,
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


def panel_transform(
    panel: PanelPlacement,
    *,
    source_width: int,
    source_height: int,
    frame_width: int,
    frame_height: int,
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float, float, float]]:
    """A split panel's FCPXML transform and trim: position (percent of the frame's
    height, y up), scale (x, y) and trim-rect (left, top, right, bottom: the source
    pixels cut from each edge, as a percentage of the frame's height)."""
    wx, wy, ww, wh = panel.window
    bx, by, bw, bh = panel.box
    sx, sy = bw / ww, bh / wh
    # The window's centre onto the box's centre (y down here, up in FCPXML).
    px = bx + bw / 2 - frame_width / 2 - sx * (wx + ww / 2 - source_width / 2)
    py = frame_height / 2 - (by + bh / 2) + sy * (wy + wh / 2 - source_height / 2)
    unit = frame_height / 100
    trim = (wx, wy, source_width - wx - ww, source_height - wy - wh)
    return (
        (round(px / unit, 4) + 0.0, round(py / unit, 4) + 0.0),
        (round(sx, 6), round(sy, 6)),
        tuple(round(v / unit, 4) + 0.0 for v in trim),
    )


def _fcpxml_place_panel(
    root, panel: PanelPlacement, *, media: TimelineMedia, cut: TimelineCut, start: int
) -> None:
    """Trim and place the lane clip of one split panel (found by its lane and start)."""
    import xml.etree.ElementTree as ET

    rate = frame_rate(media.fps)
    lane = str(panel.panel + 1)
    element = next(
        c
        for c in root.iter("clip")
        if c.get("lane") == lane and c.get("start", "0s") == _rational(start, rate)
    )
    (px, py), (sx, sy), (left, top, right, bottom) = panel_transform(
        panel,
        source_width=media.width,
        source_height=media.height,
        frame_width=cut.frame_width,
        frame_height=cut.frame_height,
    )
    crop = ET.Element("adjust-crop", mode="trim")
    ET.SubElement(
        crop, "trim-rect", left=f"{left}", top=f"{top}", right=f"{right}", bottom=f"{bottom}"
    )
    transform = ET.Element("adjust-transform", position=f"{px} {py}", scale=f"{sx} {sy}")
    for index, child in enumerate((crop, ET.Element("adjust-conform", type="none"), transform)):
        element.insert(index, child)
