"""What a render is asked for: `RenderSettings` (how `render_clip` and `join_bumpers`
encode a clip), the containers the writer can encode (`CONTAINERS`: the codecs of each),
and two helpers: `output_size` (the frame of an aspect) and `bitrate_value`.

Which settings an export, a preview or a full render gets is the app's business
(`clips.platforms`): the pipeline is handed a `RenderSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from clypai.lib import ffmpeg


@dataclass(frozen=True)
class RenderSettings:
    """How `render_clip` (and `join_bumpers`) encode a clip."""

    width: int  # the output frame, even, at least 16
    height: int
    fps: float | None = None  # None: the source's, at most 60
    crf: int | None = None  # x264's constant quality (None: 23)
    vp9_crf: int | None = None  # VP9's, for webm (None: 33)
    preset: str = "veryfast"  # x264's
    video_bitrate: str | None = None  # a target rate instead of constant quality
    max_bitrate: str | None = None  # a ceiling (x264's VBV; VP9's constrained quality)
    audio_bitrate: str = "160k"
    audio_fade: float = 0.05  # seconds of fade in and out
    loudness: float | None = None  # integrated LUFS to normalise to (None: as recorded)
    true_peak: float = -1.0  # dBTP, with `loudness`
    max_seconds: float | None = None  # a longer clip is refused (a platform's limit)
    container: str | None = None  # mp4, mov or webm (None: from the output's suffix)
    threads: int | None = None  # x264's threads (None: its choice)
    max_pixels: int | None = ffmpeg.DEFAULT_MAX_PIXELS  # input guard on the source's frames
    timeout: float = 3600.0  # seconds ffmpeg may run
    # The output's size cap, in bytes a second of the clip (`output_byte_cap`); None:
    # derived from the bitrate ceiling, else OUTPUT_BYTES_PER_SECOND.
    max_output_bytes_per_second: float | None = None


# An encode with no bitrate ceiling (constant quality) may write this much a second of
# clip: 40 Mb/s, four times what x264 makes of a busy 1080p scene at crf 17.
OUTPUT_BYTES_PER_SECOND = 5_000_000
# A ceiling's rate is doubled, and two seconds of it and 64 KiB added: x264's VBV may run
# a buffer (2 s at most here) over, and the container's headers and index cost a little.
OUTPUT_HEADROOM = 2.0
OUTPUT_SLACK_SECONDS = 2.0
OUTPUT_SLACK_BYTES = 64 * 1024


def output_byte_cap(settings: RenderSettings, duration: float, *, ceiling: bool = True) -> int:
    """The most bytes an encode of `duration` seconds with `settings` may write (its
    ffmpeg's `-fs`), so that a runaway encode stops instead of filling the disk:
    `settings.max_output_bytes_per_second` when set; else, when the encode applies a
    bitrate ceiling (`ceiling`), that ceiling (or target) and the audio's rate with
    OUTPUT_HEADROOM; else OUTPUT_BYTES_PER_SECOND; with a little slack for the container."""
    rate = settings.max_output_bytes_per_second
    video = settings.max_bitrate or settings.video_bitrate
    if rate is None and ceiling and video:
        bits = max(bitrate_value(video), bitrate_value(settings.video_bitrate or video))
        rate = OUTPUT_HEADROOM * (bits + bitrate_value(settings.audio_bitrate)) / 8
    if rate is None:
        rate = OUTPUT_BYTES_PER_SECOND
    return int(rate * (max(duration, 0.0) + OUTPUT_SLACK_SECONDS) + OUTPUT_SLACK_BYTES)


# What the writer encodes each container with.
CONTAINERS: dict[str, dict[str, str]] = {
    "mp4": {"codec": "libx264", "audio": "aac"},
    "mov": {"codec": "libx264", "audio": "aac"},
    "webm": {"codec": "libvpx-vp9", "audio": "libopus"},
}


def output_size(aspect: str | tuple[int, int], short_side: int) -> tuple[int, int]:
    """(width, height) of `aspect` with `short_side` pixels on the short side, both even:
    `output_size("9:16", 1080)` is (1080, 1920), `("9:16", 480)` (480, 854)."""
    from ..reframe import parse_aspect

    aw, ah = parse_aspect(aspect)
    if aw <= ah:
        width, height = short_side, short_side * ah / aw
    else:
        width, height = short_side * aw / ah, short_side
    return int(round(width / 2)) * 2, int(round(height / 2)) * 2


def bitrate_value(rate: str | int) -> float:
    """Bits a second of a bitrate such as "1500k", "8M" or 96000."""
    text = str(rate).strip().lower()
    factor = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:], 1.0)
    return float(text[:-1] if text[-1:] in "kmg" else text) * factor
