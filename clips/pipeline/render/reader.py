"""The render's reader: the clip's frames, decoded by ffmpeg from the source's range.

The clip's output frames are split into segments (`_segments`: runs of shots with one
layout and the same panels); each segment is one `clips.pipeline.frames.FrameReader`
that decodes only its range (`-ss` before the input), through the filter graph the
compositor gives it, at the crop's size (never larger than the output), as raw RGB.
`_Frames` is moviepy's `frame_function` over those readers. `_axis_expression` compiles a
crop path's keyframes into ffmpeg's `crop=x='expr'` (a moving crop costs 1.15x ffmpeg
doing the same pan, DESIGN.md); `_crop_path` is the crop path a render follows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..frames import FrameReader
from ..reframe import CropPath, Keyframe

if TYPE_CHECKING:
    import numpy as np


@dataclass
class _Segment:
    first: int  # frame numbers of the output, [first, last)
    last: int
    layout: str
    start: float  # seconds from the clip's start
    panels: list[dict[str, int]]
    zoom: float = 1.0  # fill: the window is the crop path's, shrunk by this about its centre


def _crop_path(
    value: CropPath | dict[str, Any] | None,
    source_w: int,
    source_h: int,
    width: int,
    height: int,
    start: float,
    end: float,
) -> CropPath:
    from ..reframe import crop_path as make_path

    if value is None:
        return make_path(
            source_width=source_w,
            source_height=source_h,
            start=start,
            end=end,
            aspect=(width, height),
            reframing=False,
        )
    path = CropPath.from_dict(value) if isinstance(value, dict) else value
    if (path.source_width, path.source_height) != (source_w, source_h):
        raise ValueError(
            f"the crop path is for a {path.source_width}x{path.source_height} source, "
            f"this one is {source_w}x{source_h}"
        )
    return path


def _segments(path: CropPath, frames: int, fps: Fraction) -> list[_Segment]:
    """Runs of output frames that one reader can produce (same layout, same panels)."""
    segments: list[_Segment] = []
    for shot in path.shots:
        first = min(frames, round(shot.start * fps))
        last = min(frames, round(shot.end * fps))
        if last <= first:
            continue
        if (
            segments
            and segments[-1].layout == shot.layout
            and segments[-1].panels == shot.panels
            and segments[-1].zoom == shot.zoom
        ):
            segments[-1].last = last
            continue
        segments.append(
            _Segment(first, last, shot.layout, float(first / fps), shot.panels, shot.zoom)
        )
    if not segments:
        segments.append(_Segment(0, frames, "fill", 0.0, []))
    segments[0].first, segments[-1].last = 0, frames
    for before, after in zip(segments, segments[1:], strict=False):
        after.first = before.last
        after.start = float(after.first / fps)
    return segments


class _Frames:
    """moviepy's frame_function: frame `t` of the clip, read in order from one ffmpeg per
    segment (a request out of order reopens that segment's reader). `graph(segment,
    offset)` is the segment's filter graph for a reader whose t = 0 is clip second
    `offset` (the compositor's layouts)."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        segments: list[_Segment],
        *,
        clip_start: float,
        fps: Fraction,
        work: tuple[int, int],
        graph: Callable[[_Segment, float], str],
        max_pixels: int | None,
        timeout: float,
        stills: Sequence[float] = (),
    ):
        self.source = source
        self.segments = segments
        self.clip_start = clip_start
        self.fps = fps
        self.work = work
        self.graph = graph
        self.max_pixels = max_pixels
        self.timeout = timeout
        self.size = work[0] * work[1] * 3
        self._stack: ExitStack | None = None
        self._pipe: Any = None
        self._segment: _Segment | None = None
        self._next = 0  # the frame number the pipe gives next
        self._last: np.ndarray | None = None
        self._last_index = -1
        wanted = (int(t * fps + Fraction(1, 2)) for t in stills if t >= 0)
        self._wanted = {index for index in wanted if index < segments[-1].last}
        self.stills: dict[int, np.ndarray] = {}

    def __enter__(self) -> _Frames:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close(exc[1])

    def __call__(self, t: float) -> np.ndarray:
        import numpy as np

        total = self.segments[-1].last
        index = min(max(0, int(round(t * self.fps))), total - 1)
        if index == self._last_index and self._last is not None:
            return self._last
        segment = next(s for s in self.segments if s.first <= index < s.last)
        if segment is not self._segment or index < self._next:
            self._open(segment, index)
        while self._next <= index:
            data = self._pipe.read(self.size) if self._pipe is not None else b""
            if len(data) < self.size:
                # The source ended early (a rounded duration): hold the last frame.
                self._pipe = None
                if self._last is None:
                    self._last = np.zeros((self.work[1], self.work[0], 3), np.uint8)
                self._next = index + 1
                break
            self._last = np.frombuffer(data, np.uint8).reshape(self.work[1], self.work[0], 3)
            if self._next in self._wanted:
                self.stills[self._next] = self._last  # read-only over immutable bytes: no copy
            self._next += 1
        self._last_index = index
        return self._last

    def _open(self, segment: _Segment, index: int) -> None:
        self._close(None)
        first = index
        seconds = (segment.last - first) / float(self.fps)
        at = self.clip_start + first / float(self.fps)
        offset = first / float(self.fps)  # the clip time at the reader's t = 0
        decode = FrameReader(
            self.source,
            size=self.work,
            vf=self.graph(segment, offset),
            start=at,
            duration=seconds + 1.0,
            frames=segment.last - first,
            max_pixels=self.max_pixels,
            timeout=self.timeout,
            error="Clip rendering failed: could not decode the source",
        )
        self._stack = ExitStack()
        self._pipe = self._stack.enter_context(decode.open())
        self._segment = segment
        self._next = first

    def _close(self, error: BaseException | None) -> None:
        stack, self._stack = self._stack, None
        segment, self._segment = self._segment, None
        if stack is None:
            return
        finished = self._pipe is None or (segment is not None and self._next >= segment.last)
        self._pipe = None
        if error is None and finished:
            stack.close()  # ffmpeg has written its last frame: check how it ended
            return
        # Left early (an error, or a frame asked out of order): stop ffmpeg, not an error.
        reason = error if error is not None else _Abandoned()
        try:
            stack.__exit__(type(reason), reason, reason.__traceback__)
        except _Abandoned:
            pass


class _Abandoned(Exception):
    """A reader closed before its last frame."""


def _axis_expression(keyframes: Sequence[Keyframe], axis: str, offset: float, end: float) -> str:
    """ffmpeg expression of the window's `axis` over the reader's time `t` (clip time less
    `offset`): a flat sum of pieces `between(t,a,b)*(value)`, so it stays shallow however
    many keyframes there are. Pieces outside [offset, end] are left out."""
    values = [(k.t - offset, float(getattr(k, axis)), k.ease) for k in keyframes]
    horizon = end - offset
    pieces: list[tuple[float, float, str]] = []
    for (t0, v0, _e0), (t1, v1, ease) in zip(values, values[1:], strict=False):
        if t1 <= 0 or t0 >= horizon:
            continue
        if ease == "cut" or v1 == v0 or t1 <= t0:
            formula = _number(v0)
        else:
            u = f"((t-{_number(t0)})/{_number(t1 - t0)})"
            if ease == "inOut":
                u = f"({u}*{u}*(3-2*{u}))"
            formula = f"{_number(v0)}+{_number(v1 - v0)}*{u}"
        pieces.append((t0, t1, formula))
    current = _value_at(values, 0.0)
    last_t, last_v = values[-1][0], values[-1][1]
    if not pieces:
        return _number(current if last_t > 0 else last_v)
    terms = []
    first_t = pieces[0][0]
    if first_t > 0:
        terms.append(f"lt(t,{_number(first_t)})*{_number(values[0][1])}")
    for t0, t1, formula in pieces:
        terms.append(f"gte(t,{_number(t0)})*lt(t,{_number(t1)})*({formula})")
    terms.append(f"gte(t,{_number(last_t)})*{_number(last_v)}")
    return "+".join(terms)


def _value_at(values: list[tuple[float, float, str]], t: float) -> float:
    """The value of a (t, value, ease) series at `t`, holding outside it (for constants)."""
    before = values[0][1]
    for vt, value, _ease in values:
        if vt <= t:
            before = value
    return before


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
