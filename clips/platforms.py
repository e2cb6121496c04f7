"""Where clips go: every fact ClypAI keeps about platforms, aspect ratios, export formats,
qualities and the preview and full renders, one table per concept, and the render
settings read from those tables.

Pure Python, without Django, so it is cheap to import. The API's enums are the tables'
names, in the order the API documents them (`ASPECT_RATIOS`, `PLATFORMS`,
`EXPORT_FORMATS`, `EXPORT_QUALITIES`): the /v1/ serializers (and so the OpenAPI
document) and the `clip` command take them from here.

Each platform has two lengths, named for what they are:
- `clip_seconds`: the longest clip selection offers for the platform by default (a
  request's maxDuration overrides it; see `default_clip_seconds`);
- `max_seconds`: the longest upload the platform accepts (an export refuses a longer clip).

The media pipeline never imports this module: it is handed a `RenderSettings`
(`export_settings`, `preview_settings`, `full_settings`). The export formats are the
containers the pipeline's writer can encode (`clips.pipeline.render.CONTAINERS`, with the
codecs of each) and the timelines it writes (`clips.pipeline.timeline.TIMELINE_FORMATS`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from clips.pipeline.render import CONTAINERS, RenderSettings, bitrate_value, output_size
from clips.pipeline.timeline import TIMELINE_FORMATS

# --- aspect ratios and the two renders ----------------------------------------------------

# The full render's frame per aspect ratio, in the API's order.
FULL_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (1920, 1080),
    "9:16": (1080, 1920),
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
}
ASPECT_RATIOS: tuple[str, ...] = tuple(FULL_SIZES)


@dataclass(frozen=True)
class RenderPreset:
    """A clip's own render: its short side, x264's preset and constant quality, and the
    AAC bitrate."""

    short_side: int
    preset: str
    crf: int
    audio_bitrate: str


# The preview is small and fast, for choosing; the full render is what gets posted.
PREVIEW = RenderPreset(short_side=480, preset="veryfast", crf=28, audio_bitrate="96k")
FULL = RenderPreset(short_side=1080, preset="veryfast", crf=23, audio_bitrate="160k")

# --- exports ------------------------------------------------------------------------------

# Videos (mp4, mov, webm), then timelines for an editor (otio, fcpxml, edl), each packed
# in a zip with the clip's SRT and the source (clips/exporting.py).
VIDEO_FORMATS: tuple[str, ...] = tuple(CONTAINERS)
EXPORT_TIMELINES: tuple[str, ...] = tuple(TIMELINE_FORMATS)
EXPORT_FORMATS: tuple[str, ...] = VIDEO_FORMATS + EXPORT_TIMELINES


@dataclass(frozen=True)
class Quality:
    """An export quality: the frame's short side, x264's constant quality and preset (VP9's
    crf for webm), the AAC/Opus bitrate, and the video ceiling (a VBV ceiling for x264,
    constrained quality for VP9; a platform's own ceiling wins when lower)."""

    short_side: int
    crf: int
    preset: str
    vp9_crf: int
    audio_bitrate: str
    max_bitrate: str


# | quality | short side | 9:16 frame | x264 crf / preset | VP9 crf | audio | video ceiling |
# | ------- | ---------- | ---------- | ----------------- | ------- | ----- | ------------- |
# | low     | 480        | 480x854    | 28 / veryfast     | 40      | 96k   | 1.5 Mb/s      |
# | medium  | 720        | 720x1280   | 23 / veryfast     | 34      | 128k  | 4 Mb/s        |
# | high    | 1080       | 1080x1920  | 20 / fast         | 31      | 160k  | 8 Mb/s        |
# | ultra   | 1080       | 1080x1920  | 17 / slow         | 24      | 256k  | 16 Mb/s       |
QUALITIES: dict[str, Quality] = {
    "low": Quality(short_side=480, crf=28, preset="veryfast", vp9_crf=40,
                   audio_bitrate="96k", max_bitrate="1500k"),
    "medium": Quality(short_side=720, crf=23, preset="veryfast", vp9_crf=34,
                      audio_bitrate="128k", max_bitrate="4M"),
    "high": Quality(short_side=1080, crf=20, preset="fast", vp9_crf=31,
                    audio_bitrate="160k", max_bitrate="8M"),
    "ultra": Quality(short_side=1080, crf=17, preset="slow", vp9_crf=24,
                     audio_bitrate="256k", max_bitrate="16M"),
}  # fmt: skip
EXPORT_QUALITIES: tuple[str, ...] = tuple(QUALITIES)

# --- platforms ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """What a platform takes (its published upload guidance, as of 2025): the frame size
    for its usual aspect (other aspects keep the short side), the frame rate, the video
    bitrate ceiling, the loudness it normalises to (integrated LUFS and true peak, applied
    with ffmpeg's loudnorm so the platform does not turn the clip down or up), and its two
    lengths: the clip selection offers by default and the longest upload it accepts."""

    aspect: str
    size: tuple[int, int]
    fps: int
    max_bitrate: str
    clip_seconds: float  # the longest clip selection offers by default
    max_seconds: float  # the longest upload the platform accepts
    loudness: float
    true_peak: float


# TikTok, Reels and Shorts clips stay under a minute; X, LinkedIn and YouTube run longer.
#
# | platform  | frame     | fps | ceiling  | clip  | longest | loudness          |
# | --------- | --------- | --- | -------- | ----- | ------- | ----------------- |
# | youtube   | 1080x1920 | 30  | 12 Mb/s  | 180 s | 180 s   | -14 LUFS, -1 dBTP |
# | tiktok    | 1080x1920 | 30  | 10 Mb/s  | 59 s  | 600 s   | -14 LUFS, -1 dBTP |
# | instagram | 1080x1920 | 30  | 8 Mb/s   | 59 s  | 180 s   | -14 LUFS, -1 dBTP |
# | twitter   | 720x1280  | 30  | 5 Mb/s   | 140 s | 140 s   | -16 LUFS, -1 dBTP |
# | linkedin  | 1080x1350 | 30  | 10 Mb/s  | 120 s | 600 s   | -16 LUFS, -1 dBTP |
PLATFORM_PRESETS: dict[str, Platform] = {
    "youtube": Platform(aspect="9:16", size=(1080, 1920), fps=30, max_bitrate="12M",
                        clip_seconds=180.0, max_seconds=180, loudness=-14.0, true_peak=-1.0),
    "tiktok": Platform(aspect="9:16", size=(1080, 1920), fps=30, max_bitrate="10M",
                       clip_seconds=59.0, max_seconds=600, loudness=-14.0, true_peak=-1.0),
    "instagram": Platform(aspect="9:16", size=(1080, 1920), fps=30, max_bitrate="8M",
                          clip_seconds=59.0, max_seconds=180, loudness=-14.0, true_peak=-1.0),
    "twitter": Platform(aspect="9:16", size=(720, 1280), fps=30, max_bitrate="5M",
                        clip_seconds=140.0, max_seconds=140, loudness=-16.0, true_peak=-1.0),
    "linkedin": Platform(aspect="4:5", size=(1080, 1350), fps=30, max_bitrate="10M",
                         clip_seconds=120.0, max_seconds=600, loudness=-16.0, true_peak=-1.0),
}  # fmt: skip
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_PRESETS)

# Clip lengths selection offers without a platform (and the shortest it offers).
DEFAULT_CLIP_SECONDS = 59.0
MIN_CLIP_SECONDS = 15.0
# The clip lengths a requested target (the Choppity API's target_duration) is clamped
# to: selection cuts on sentences, so shorter clips come out as fragments, and longer
# ones than /v1/'s maxDuration allows are not short-form clips.
TARGET_SECONDS = (5.0, 300.0)


def target_seconds(value: float | None) -> float | None:
    """A requested clip length (any positive number) clamped to TARGET_SECONDS."""
    if value is None:
        return None
    low, high = TARGET_SECONDS
    return min(max(float(value), low), high)


def default_clip_seconds(platform: str = "", aspect_ratio: str = "9:16") -> float:
    """The longest clip selection offers by default for `platform` ("" or unknown:
    DEFAULT_CLIP_SECONDS). A vertical YouTube clip is a Short: under a minute."""
    if platform == "youtube" and aspect_ratio in ("9:16", "4:5"):
        return DEFAULT_CLIP_SECONDS
    preset = PLATFORM_PRESETS.get(platform)
    return preset.clip_seconds if preset is not None else DEFAULT_CLIP_SECONDS


# --- render settings ----------------------------------------------------------------------


def export_settings(
    *, aspect: str, quality: str = "high", platform: str | None = None
) -> RenderSettings:
    """The render settings of an export: the quality's size and rates, lowered to the
    platform's frame size, frame rate and bitrate ceiling, with its loudness target and
    upload limit. Raises ValueError for an unknown quality or platform."""
    try:
        q = QUALITIES[quality]
    except KeyError:
        raise ValueError(f"unknown quality {quality!r}: {', '.join(QUALITIES)}") from None
    width, height = output_size(aspect, q.short_side)
    settings = RenderSettings(
        width=width,
        height=height,
        crf=q.crf,
        vp9_crf=q.vp9_crf,
        preset=q.preset,
        audio_bitrate=q.audio_bitrate,
        max_bitrate=q.max_bitrate,
    )
    if platform:
        try:
            p = PLATFORM_PRESETS[platform]
        except KeyError:
            raise ValueError(
                f"unknown platform {platform!r}: {', '.join(PLATFORM_PRESETS)}"
            ) from None
        width, height = output_size(aspect, min(min(p.size), q.short_side))
        settings = replace(
            settings,
            width=width,
            height=height,
            fps=p.fps,
            max_bitrate=min((q.max_bitrate, p.max_bitrate), key=bitrate_value),
            loudness=p.loudness,
            true_peak=p.true_peak,
            max_seconds=p.max_seconds,
        )
    return settings


def preview_settings(aspect: str) -> RenderSettings:
    """The render settings of the fast small preview for `aspect`."""
    return _render_settings(PREVIEW, preview_size(aspect))


def full_settings(aspect: str) -> RenderSettings:
    """The render settings of the full render for `aspect`."""
    return _render_settings(FULL, full_size(aspect))


def preview_size(aspect: str) -> tuple[int, int]:
    """The preview's frame for `aspect` (480 pixels on the short side)."""
    return output_size(aspect, PREVIEW.short_side)


def full_size(aspect: str) -> tuple[int, int]:
    """The full render's frame for `aspect`: 1080x1920, 1080x1080, 1080x1350, 1920x1080."""
    return FULL_SIZES.get(aspect) or output_size(aspect, FULL.short_side)


def _render_settings(preset: RenderPreset, size: tuple[int, int]) -> RenderSettings:
    return RenderSettings(
        width=size[0],
        height=size[1],
        preset=preset.preset,
        crf=preset.crf,
        audio_bitrate=preset.audio_bitrate,
    )
