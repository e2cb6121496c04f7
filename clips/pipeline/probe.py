"""Probe a source and refuse early what the pipeline cannot or must not work on.

`probe(path, limits=...)` reads the file's container and streams with ffprobe (opened
with `clypai.lib.ffmpeg.safe_input_args`, so playlists and concat lists are refused by
their detected format, not their name) and returns a `ProbeResult`. It raises a
permanent `StageError` (`processing_failed`) whose `details` say what was found, what
is supported and the limit, for: a file ffprobe cannot read, a container that is not on
the whitelist, no video stream, a video codec this machine's ffmpeg cannot decode, and
a duration, width, height or pixel count over the limits. No side effects.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from clypai.lib import ffmpeg

from .base import StageError

# A short, stable sample of what we decode, for error details; the full list is long.
_COMMON_VIDEO_CODECS = (
    "h264",
    "hevc",
    "vp8",
    "vp9",
    "av1",
    "mpeg4",
    "mpeg2video",
    "mpeg1video",
    "prores",
    "mjpeg",
    "theora",
    "wmv3",
    "vc1",
    "dnxhd",
)


@dataclass(frozen=True)
class ProbeLimits:
    """What a source may be: at most this long, this large a frame (either orientation)."""

    max_duration_seconds: float = 4 * 3600.0
    max_width: int = 7680
    max_height: int = 4320
    max_pixels: int = 7680 * 4320
    timeout_seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: Any) -> ProbeLimits:
        """The limits named by CLYPAI_MAX_SOURCE_* and CLYPAI_FFMPEG_MAX_PIXELS."""
        return cls(
            max_duration_seconds=settings.CLYPAI_MAX_SOURCE_SECONDS,
            max_width=settings.CLYPAI_MAX_SOURCE_WIDTH,
            max_height=settings.CLYPAI_MAX_SOURCE_HEIGHT,
            max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
        )


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int  # as stored
    height: int
    display_width: int  # as shown: after rotation (and sample aspect ratio)
    display_height: int
    fps: float
    rotation: int  # degrees counter-clockwise, libavutil's display-matrix convention
    pix_fmt: str | None
    bit_rate: int | None
    frames: int | None


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    channels: int
    sample_rate: int
    bit_rate: int | None


@dataclass(frozen=True)
class ProbeResult:
    container: str  # ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float
    size: int
    bit_rate: int | None
    video: VideoInfo
    audio: AudioInfo | None
    raw: dict[str, Any]  # ffprobe's JSON (format and streams)


def probe(path: str | os.PathLike[str], *, limits: ProbeLimits | None = None) -> ProbeResult:
    """Read `path` with ffprobe and check it against `limits`; see the module docstring."""
    limits = limits or ProbeLimits()
    try:
        raw, warnings = ffmpeg.ffprobe(
            path, max_pixels=limits.max_pixels, timeout=limits.timeout_seconds
        )
    except StageError as err:
        if not err.permanent:
            raise
        _refuse_unreadable(err)

    fmt = raw.get("format") or {}
    streams = raw.get("streams") or []
    video_stream = _first(streams, "video")
    if video_stream is None:
        raise StageError(
            "Clip generation failed: no video stream",
            {
                "found": {
                    "container": fmt.get("format_name"),
                    "streams": [s.get("codec_type") for s in streams],
                },
                "supported": "a file with at least one video stream",
            },
        )

    codec = video_stream.get("codec_name") or "unknown"
    decodable = ffmpeg.decodable_codecs("video")
    if codec not in decodable:
        raise StageError(
            "Clip generation failed: Unsupported video codec",
            {
                "codec": codec,
                "supportedCodecs": [c for c in _COMMON_VIDEO_CODECS if c in decodable],
                "supportedCodecCount": len(decodable),
            },
        )

    # Some containers leave the size to the decoder, which -max_pixels stopped; and a
    # container may say 16x16 of frames that each claim 30000x30000: the larger counts.
    video = _size_from_warnings(_video_info(video_stream), warnings)
    _check_size(video, limits)
    audio_stream = _first(streams, "audio")
    audio = _audio_info(audio_stream) if audio_stream is not None else None

    duration = _number(fmt.get("duration")) or _number(video_stream.get("duration"))
    if not duration:
        # Streamed recordings (a browser's MediaRecorder WebM) carry no duration: count it.
        duration = _demuxed_duration(path, limits)
    if duration is None or duration <= 0:
        raise StageError(
            "Clip generation failed: the video has no duration",
            {"found": {"duration": fmt.get("duration")}, "supported": "a positive duration"},
        )
    if duration > limits.max_duration_seconds:
        raise StageError(
            f"Clip generation failed: the video is too long ({duration:.0f} s, "
            f"at most {limits.max_duration_seconds:.0f} s)",
            {
                "found": {"duration": round(duration, 3)},
                "limit": {"maxDurationSeconds": limits.max_duration_seconds},
            },
        )

    size = _integer(fmt.get("size"))
    if size is None:
        size = os.path.getsize(path)
    return ProbeResult(
        container=fmt.get("format_name") or "unknown",
        duration=round(duration, 6),
        size=size,
        bit_rate=_integer(fmt.get("bit_rate")),
        video=video,
        audio=audio,
        raw={"format": fmt, "streams": streams},
    )


def _refuse_unreadable(err: StageError) -> None:
    stderr = err.details.get("stderr") or []
    detected = ffmpeg.refused_format(stderr)
    if detected:
        raise StageError(
            f"Clip generation failed: unsupported file format ({detected})",
            {
                "found": {"format": detected},
                "supported": {"formats": list(ffmpeg.SAFE_INPUT_FORMATS)},
            },
        ) from err
    raise StageError(
        "Clip generation failed: the file is not a readable video",
        {
            "found": {"error": stderr[-1] if stderr else "ffprobe failed"},
            "supported": {"formats": list(ffmpeg.SAFE_INPUT_FORMATS)},
        },
    ) from err


def _first(streams: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The default stream of a kind, else its first; cover art is not a video."""
    candidates = [
        s
        for s in streams
        if s.get("codec_type") == kind and not (s.get("disposition") or {}).get("attached_pic")
    ]
    for stream in candidates:
        if (stream.get("disposition") or {}).get("default"):
            return stream
    return candidates[0] if candidates else None


def _video_info(stream: dict[str, Any]) -> VideoInfo:
    width = _integer(stream.get("width")) or 0
    height = _integer(stream.get("height")) or 0
    rotation = _rotation(stream)
    display_width, display_height = width, height
    sar = _ratio(stream.get("sample_aspect_ratio"))
    if sar and sar != 1 and width:
        display_width = int(round(width * sar / 2)) * 2
    if rotation % 180 == 90:
        display_width, display_height = display_height, display_width
    return VideoInfo(
        codec=stream.get("codec_name") or "unknown",
        width=width,
        height=height,
        display_width=display_width,
        display_height=display_height,
        fps=_fps(stream),
        rotation=rotation,
        pix_fmt=stream.get("pix_fmt"),
        bit_rate=_integer(stream.get("bit_rate")),
        frames=_integer(stream.get("nb_frames")),
    )


# The decoder's own refusal of a frame over -max_pixels, or of one past what ffmpeg would
# allocate at all (a header claiming 30000x30000): either way the size the file claims.
_OVER_MAX_PIXELS = re.compile(
    r"Picture size (\d+)x(\d+) (?:exceeds specified max pixel count|is invalid)"
)


def _size_from_warnings(video: VideoInfo, warnings: list[str]) -> VideoInfo:
    for line in warnings:
        match = _OVER_MAX_PIXELS.search(line)
        if match:
            width, height = int(match.group(1)), int(match.group(2))
            if width * height <= video.width * video.height:
                continue
            return replace(
                video, width=width, height=height, display_width=width, display_height=height
            )
    return video


def _audio_info(stream: dict[str, Any]) -> AudioInfo:
    return AudioInfo(
        codec=stream.get("codec_name") or "unknown",
        channels=_integer(stream.get("channels")) or 0,
        sample_rate=_integer(stream.get("sample_rate")) or 0,
        bit_rate=_integer(stream.get("bit_rate")),
    )


def _check_size(video: VideoInfo, limits: ProbeLimits) -> None:
    found = {"width": video.width, "height": video.height, "codec": video.codec}
    if not video.width or not video.height:
        raise StageError(
            "Clip generation failed: the video has no frame size",
            {"found": found, "supported": "a video stream with a width and height"},
        )
    # Limits describe a frame in either orientation: a 2160x3840 phone video fits 3840x2160.
    long_side, short_side = max(video.width, video.height), min(video.width, video.height)
    limit_long, limit_short = (
        max(limits.max_width, limits.max_height),
        min(limits.max_width, limits.max_height),
    )
    pixels = video.width * video.height
    if long_side > limit_long or short_side > limit_short or pixels > limits.max_pixels:
        raise StageError(
            f"Clip generation failed: the video is too large ({video.width}x{video.height})",
            {
                "found": found,
                "limit": {
                    "maxWidth": limits.max_width,
                    "maxHeight": limits.max_height,
                    "maxPixels": limits.max_pixels,
                },
            },
        )


def _rotation(stream: dict[str, Any]) -> int:
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            return int(round(float(side_data["rotation"]))) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag is not None:
        # The old tag is clockwise; the display matrix (what we report) is counter-clockwise.
        try:
            return (-int(round(float(tag)))) % 360
        except ValueError:
            return 0
    return 0


def _fps(stream: dict[str, Any]) -> float:
    for key in ("avg_frame_rate", "r_frame_rate"):
        value = _ratio(stream.get(key))
        if value and 0 < value < 1000:
            return round(float(value), 6)
    return 0.0


def _ratio(value: Any) -> Fraction | None:
    if not value or not isinstance(value, str):
        return None
    match = re.fullmatch(r"(\d+)[/:](\d+)", value)
    if not match or int(match.group(2)) == 0:
        return None
    return Fraction(int(match.group(1)), int(match.group(2)))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _demuxed_duration(path: str | os.PathLike[str], limits: ProbeLimits) -> float | None:
    """The end time of the video stream, read packet by packet (no decoding)."""
    completed = ffmpeg.run(
        [
            "-nostdin",
            "-v",
            "error",
            *ffmpeg.safe_input_args(limits.max_pixels),
            "-i",
            ffmpeg.input_url(path),
            "-map",
            "0:v:0",
            # counted only to just past the limit: a longer file is refused all the same
            "-t",
            f"{limits.max_duration_seconds + 1:.0f}",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
            "-progress",
            "pipe:1",
            "-nostats",
        ],
        timeout=limits.timeout_seconds,
        error="Clip generation failed: the file is not a readable video",
    )
    found = re.findall(rb"out_time_us=(\d+)", completed.stdout)
    return int(found[-1]) / 1e6 if found else None
