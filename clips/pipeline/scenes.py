"""Shot boundaries of a source, found by PySceneDetect on a small decode.

`detect_scenes(path)` has ffmpeg decode the video once (`clips.pipeline.frames`, the
raw-frame reader every stage shares), already scaled down to `analysis_width` pixels
(256 by default, PySceneDetect's own working width) and at most `max_fps` frames a
second, and pipes raw BGR frames into a PySceneDetect `SceneManager` through a
`VideoStream` of ours. Returns the shots as `Shot`s, in order, covering the whole video.
No side effects.

Why the downscaled decode, and why ffmpeg's: on a 1920x1080 H.264 source (two-speakers-
dev.mp4, 24 s, 601 frames) PySceneDetect's OpenCV backend at full resolution took 10.5 s
of CPU; its own auto-downscale (decode in full, then shrink to 256 wide) 2.4-2.5 s; its
PyAV backend with the same downscale 2.1-2.2 s; this module 2.0-2.3 s (ffprobe
included), medians on this 2-core machine. Wall time, in the least loaded run: 10.9 /
2.8 / 3.1 / 2.0 s; ffmpeg's frame threads decode while Python compares the frames. Those backends also open the
file with OpenCV's or PyAV's own FFmpeg, outside our input whitelist; this way every
decode of a user's file goes through `clypai.lib.ffmpeg`.

Why AdaptiveDetector by default: cuts between two similar talking-head shots (the GRID
concatenation: same backdrop, similar people) change a frame by as little as 11.7 on
ContentDetector's scale, where its default threshold is 27; it found 6 of the 10 cuts.
AdaptiveDetector compares a frame's change with its neighbours' (ratio >= 8 here, the
lowest GRID cut is 13.8) and asks for at least 8 of change: all 10 GRID cuts, the 3
hard cuts of Big Buck Bunny, and one extra inside its fading title.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from clypai.lib import ffmpeg

from .base import StageError
from .frames import FrameReader

if TYPE_CHECKING:
    from .probe import ProbeResult


@dataclass(frozen=True)
class Shot:
    start: float  # seconds
    end: float  # seconds, exclusive (the next shot's start)
    start_frame: int  # frame numbers at the source's frame rate
    end_frame: int  # exclusive


def detect_scenes(
    path: str | os.PathLike[str],
    *,
    probe: ProbeResult | None = None,
    detector: str = "adaptive",
    threshold: float | None = None,
    min_content_val: float = 8.0,
    min_shot_seconds: float = 0.6,
    analysis_width: int = 256,
    max_fps: float = 30.0,
    max_pixels: int | None = ffmpeg.DEFAULT_MAX_PIXELS,
    timeout: float = 3600.0,
    stop: threading.Event | None = None,
    threads: int | None = None,
) -> list[Shot]:
    """Shots of the video at `path`.

    `probe` (a ProbeResult of the same file) saves a second ffprobe. `detector` is
    "adaptive" (AdaptiveDetector: a frame's change against its neighbours', `threshold`
    default 8, and at least `min_content_val` of change) or "content" (ContentDetector,
    `threshold` default 27). Cuts closer than `min_shot_seconds` are merged. Sources
    faster than `max_fps` are analysed at `max_fps`. A video without a cut is one shot.
    `stop`, once set, ends the decode early and returns [] (for a caller running this in a
    thread, who no longer needs it). `threads`: the decoder's threads (None: ffmpeg's
    choice, one per core and one more). Raises StageError when ffmpeg cannot decode the file.
    """
    from scenedetect import SceneManager
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    if probe is None:
        from .probe import ProbeLimits
        from .probe import probe as probe_file

        probe = probe_file(
            path, limits=ProbeLimits(max_pixels=max_pixels or ffmpeg.DEFAULT_MAX_PIXELS)
        )
    video = probe.video
    source_fps = Fraction(video.fps).limit_denominator(1001) if video.fps > 0 else Fraction(25)
    fps = source_fps if source_fps <= max_fps else Fraction(max_fps).limit_denominator(1001)
    width, height = _analysis_size(video.display_width, video.display_height, analysis_width)
    min_frames = max(1, round(min_shot_seconds * float(fps)))

    if detector == "content":
        scene_detector = ContentDetector(
            threshold=27.0 if threshold is None else threshold, min_scene_len=min_frames
        )
    elif detector == "adaptive":
        scene_detector = AdaptiveDetector(
            adaptive_threshold=8.0 if threshold is None else threshold,
            min_content_val=min_content_val,
            min_scene_len=min_frames,
            window_width=2,
        )
    else:
        raise ValueError(f"unknown detector {detector!r}: content or adaptive")

    # Not -skip_loop_filter: it saved ~13% CPU, but the filter is in-loop, so frames
    # drift until the next keyframe, and the jump back reads as a change.
    # Bounded by the probed duration (a header can lie), in time and in frames.
    bound = ffmpeg.decode_bound(probe.duration)
    decode = FrameReader(
        path,
        size=(width, height),
        vf=f"fps={fps.numerator}/{fps.denominator},scale={width}:{height}:flags=area,format=bgr24",
        duration=bound,
        frames=math.ceil(bound * float(fps)) + 1,
        threads=threads,
        max_pixels=max_pixels,
        timeout=timeout,
        error="Clip generation failed: could not decode the video",
    )
    manager = SceneManager()
    manager.auto_downscale = False  # the frames arrive small already
    manager.add_detector(scene_detector)
    try:
        with decode.open() as pipe:
            frames = _frame_stream_class()(
                pipe, width=width, height=height, fps=fps, name=os.fspath(path), stop=stop
            )
            manager.detect_scenes(video=frames)
    except StageError:
        if stop is not None and stop.is_set():
            return []  # ffmpeg stopped on the pipe we closed early
        raise
    if stop is not None and stop.is_set():
        return []
    if frames.frame_number == 0:
        raise StageError(
            "Clip generation failed: the video has no decodable frames",
            {"found": {"codec": video.codec, "frames": 0}},
        )
    decoded = frames.frame_number / float(fps)
    if decoded >= bound - 1 / float(fps) - 0.25:
        raise ffmpeg.longer_than_header(probe.duration, decoded)
    scenes = manager.get_scene_list(start_in_scene=True)
    ratio = source_fps / fps
    shots = []
    for start, end in scenes:
        start_frame, end_frame = start.frame_num, end.frame_num
        shots.append(
            Shot(
                start=round(start_frame / float(fps), 6),
                end=round(end_frame / float(fps), 6),
                start_frame=round(start_frame * ratio),
                end_frame=round(end_frame * ratio),
            )
        )
    return shots


def _analysis_size(width: int, height: int, analysis_width: int) -> tuple[int, int]:
    """Even dimensions, at most `analysis_width` wide, keeping the display aspect."""
    width, height = max(2, width), max(2, height)
    target = min(analysis_width, width)
    target -= target % 2
    scaled = max(2, int(round(target * height / width / 2)) * 2)
    return max(2, target), scaled


@lru_cache(maxsize=1)
def _frame_stream_class() -> type:
    """A PySceneDetect VideoStream over raw frames piped from ffmpeg (built on first use)."""
    import numpy as np
    from scenedetect import FrameTimecode
    from scenedetect.video_stream import SeekError, VideoStream

    class PipedFrames(VideoStream):
        BACKEND_NAME = "clypai-ffmpeg-pipe"

        def __init__(
            self,
            pipe: Any,
            *,
            width: int,
            height: int,
            fps: Fraction,
            name: str,
            stop: threading.Event | None = None,
        ):
            self._pipe = pipe
            self._stop = stop
            self._size = (width, height)
            self._frame_bytes = width * height * 3
            self._fps = fps
            self._name = name
            self._frames = 0

        path = property(lambda self: self._name)
        name = property(lambda self: os.path.splitext(os.path.basename(self._name))[0])
        is_seekable = property(lambda self: False)
        frame_rate = property(lambda self: self._fps)
        duration = property(lambda self: None)
        frame_size = property(lambda self: self._size)
        aspect_ratio = property(lambda self: 1.0)
        frame_number = property(lambda self: self._frames)

        @property
        def position(self) -> Any:
            return FrameTimecode(max(0, self._frames - 1), fps=self._fps)

        @property
        def position_ms(self) -> float:
            return max(0, self._frames - 1) * 1000.0 / float(self._fps)

        def read(self, decode: bool = True) -> Any:
            if self._stop is not None and self._stop.is_set():
                return False
            data = self._pipe.read(self._frame_bytes)
            if len(data) < self._frame_bytes:
                return False
            self._frames += 1
            if not decode:
                return True
            width, height = self._size
            return np.frombuffer(data, np.uint8).reshape(height, width, 3)

        def reset(self) -> None:
            raise SeekError("a piped decode cannot be reset")

        def seek(self, target: Any) -> None:
            raise SeekError("a piped decode cannot seek")

    return PipedFrames
