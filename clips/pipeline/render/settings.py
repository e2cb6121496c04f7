"""What a render is asked for: output sizes, the export qualities, the platforms'
presets, the preview and full renders, and the containers the writer can encode.

`RenderSettings` is how `render_clip` encodes a clip. `output_size(aspect, short_side)`
is the frame of an aspect; `export_settings`, `preview_settings` and `full_settings` are
the settings of an export, a preview and a full render. `EXPORT_QUALITIES` and `PLATFORM_PRESETS` are the
documented tables that exports use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

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


# Full renders per aspect, and the preview: 480 pixels on the short side, x264 veryfast.
FULL_SIZES: dict[str, tuple[int, int]] = {
    "9:16": (1080, 1920),
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
    "16:9": (1920, 1080),
}
PREVIEW = {"shortSide": 480, "preset": "veryfast", "crf": 28, "audioBitrate": "96k"}
FULL = {"shortSide": 1080, "preset": "veryfast", "crf": 23, "audioBitrate": "160k"}

# Export quality: the frame's short side, x264's constant quality and preset (VP9's crf
# for webm), and the AAC/Opus bitrate. `maxBitrate` caps the video rate (a VBV ceiling
# for x264, constrained quality for VP9); a platform's own ceiling wins when lower.
#
# | quality | short side | 9:16 frame | x264 crf / preset | VP9 crf | audio | video ceiling |
# | ------- | ---------- | ---------- | ----------------- | ------- | ----- | ------------- |
# | low     | 480        | 480x854    | 28 / veryfast     | 40      | 96k   | 1.5 Mb/s      |
# | medium  | 720        | 720x1280   | 23 / veryfast     | 34      | 128k  | 4 Mb/s        |
# | high    | 1080       | 1080x1920  | 20 / fast         | 31      | 160k  | 8 Mb/s        |
# | ultra   | 1080       | 1080x1920  | 17 / slow         | 24      | 256k  | 16 Mb/s       |
EXPORT_QUALITIES: dict[str, dict[str, Any]] = {
    "low": {"shortSide": 480, "crf": 28, "preset": "veryfast", "vp9Crf": 40,
            "audioBitrate": "96k", "maxBitrate": "1500k"},
    "medium": {"shortSide": 720, "crf": 23, "preset": "veryfast", "vp9Crf": 34,
               "audioBitrate": "128k", "maxBitrate": "4M"},
    "high": {"shortSide": 1080, "crf": 20, "preset": "fast", "vp9Crf": 31,
             "audioBitrate": "160k", "maxBitrate": "8M"},
    "ultra": {"shortSide": 1080, "crf": 17, "preset": "slow", "vp9Crf": 24,
              "audioBitrate": "256k", "maxBitrate": "16M"},
}  # fmt: skip

# What each platform takes (its published upload guidance, as of 2025): the frame size
# for its usual aspect (other aspects keep the short side), the frame rate, the video
# bitrate ceiling, the longest clip it accepts (`maxSeconds`; an export refuses longer
# clips) and the loudness it normalises to (integrated LUFS and true peak, applied with
# ffmpeg's loudnorm so the platform does not turn the clip down or up).
#
# | platform  | frame     | fps | ceiling  | longest | loudness          |
# | --------- | --------- | --- | -------- | ------- | ----------------- |
# | youtube   | 1080x1920 | 30  | 12 Mb/s  | 180 s   | -14 LUFS, -1 dBTP |
# | tiktok    | 1080x1920 | 30  | 10 Mb/s  | 600 s   | -14 LUFS, -1 dBTP |
# | instagram | 1080x1920 | 30  | 8 Mb/s   | 180 s   | -14 LUFS, -1 dBTP |
# | twitter   | 720x1280  | 30  | 5 Mb/s   | 140 s   | -16 LUFS, -1 dBTP |
# | linkedin  | 1080x1350 | 30  | 10 Mb/s  | 600 s   | -16 LUFS, -1 dBTP |
PLATFORM_PRESETS: dict[str, dict[str, Any]] = {
    "youtube": {"aspect": "9:16", "size": (1080, 1920), "fps": 30, "maxBitrate": "12M",
                "maxSeconds": 180, "loudness": -14.0, "truePeak": -1.0},
    "tiktok": {"aspect": "9:16", "size": (1080, 1920), "fps": 30, "maxBitrate": "10M",
               "maxSeconds": 600, "loudness": -14.0, "truePeak": -1.0},
    "instagram": {"aspect": "9:16", "size": (1080, 1920), "fps": 30, "maxBitrate": "8M",
                  "maxSeconds": 180, "loudness": -14.0, "truePeak": -1.0},
    "twitter": {"aspect": "9:16", "size": (720, 1280), "fps": 30, "maxBitrate": "5M",
                "maxSeconds": 140, "loudness": -16.0, "truePeak": -1.0},
    "linkedin": {"aspect": "4:5", "size": (1080, 1350), "fps": 30, "maxBitrate": "10M",
                 "maxSeconds": 600, "loudness": -16.0, "truePeak": -1.0},
}  # fmt: skip

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


def export_settings(
    *, aspect: str, quality: str = "high", platform: str | None = None
) -> RenderSettings:
    """The render settings of an export: the quality's size and rates, lowered to the
    platform's frame size, frame rate and bitrate ceiling, with its loudness target and
    upload limit. Raises ValueError for an unknown quality or platform."""
    try:
        q = EXPORT_QUALITIES[quality]
    except KeyError:
        raise ValueError(f"unknown quality {quality!r}: {', '.join(EXPORT_QUALITIES)}") from None
    width, height = output_size(aspect, q["shortSide"])
    settings = RenderSettings(
        width=width,
        height=height,
        crf=q["crf"],
        vp9_crf=q["vp9Crf"],
        preset=q["preset"],
        audio_bitrate=q["audioBitrate"],
        max_bitrate=q["maxBitrate"],
    )
    if platform:
        try:
            p = PLATFORM_PRESETS[platform]
        except KeyError:
            raise ValueError(
                f"unknown platform {platform!r}: {', '.join(PLATFORM_PRESETS)}"
            ) from None
        width, height = output_size(aspect, min(min(p["size"]), q["shortSide"]))
        settings = replace(
            settings,
            width=width,
            height=height,
            fps=p["fps"],
            max_bitrate=min((settings.max_bitrate, p["maxBitrate"]), key=_bitrate_value),
            loudness=p["loudness"],
            true_peak=p["truePeak"],
            max_seconds=p["maxSeconds"],
        )
    return settings


def _bitrate_value(rate: str | int) -> float:
    text = str(rate).strip().lower()
    factor = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:], 1.0)
    return float(text[:-1] if text[-1:] in "kmg" else text) * factor


def preview_settings(aspect: str) -> RenderSettings:
    """The render settings of the fast small preview for `aspect`."""
    width, height = preview_size(aspect)
    return RenderSettings(
        width=width,
        height=height,
        preset=PREVIEW["preset"],
        crf=PREVIEW["crf"],
        audio_bitrate=PREVIEW["audioBitrate"],
    )


def full_settings(aspect: str) -> RenderSettings:
    """The render settings of the full render for `aspect`."""
    width, height = full_size(aspect)
    return RenderSettings(
        width=width,
        height=height,
        preset=FULL["preset"],
        crf=FULL["crf"],
        audio_bitrate=FULL["audioBitrate"],
    )


def preview_size(aspect: str) -> tuple[int, int]:
    """The preview's frame for `aspect` (480 pixels on the short side)."""
    return output_size(aspect, PREVIEW["shortSide"])


def full_size(aspect: str) -> tuple[int, int]:
    """The full render's frame for `aspect`: 1080x1920, 1080x1080, 1080x1350, 1920x1080."""
    return FULL_SIZES.get(aspect) or output_size(aspect, FULL["shortSide"])
