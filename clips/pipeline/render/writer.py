"""The render itself: `render_clip` encodes a clip with moviepy's writer, and
`join_bumpers` puts a brand kit's intro and outro around a rendered clip.

`render_clip` runs the reader's frames (`reader`) through moviepy's writer, whose ffmpeg
applies the compositor's `-vf` (`compositor`: upscale, captions, watermark) and muxes the
audio: the clip's range cut on the same boundaries by ffmpeg (`_prepare_audio`), with
short fades, and loudnorm when a platform asks for a loudness, as 48 kHz PCM. The clip has
no mask, so moviepy pipes rgb24. `_result` reads the written file back with ffprobe.
Every encode is capped in size (ffmpeg's `-fs`, `settings.output_byte_cap`): one that
reaches its cap fails with a StageError and leaves no file.
Side effects: writes `out_path` (and temporary files that it removes).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clypai.lib import ffmpeg
from clypai.lib.errors import NO_SPACE, disk_full
from clypai.lib.files import partial_path

from ..base import StageError
from ..reframe import CropPath
from .compositor import Captions, Watermark, _reader_graph, _writer_filters
from .reader import _crop_path, _Frames, _number, _segments
from .settings import CONTAINERS, RenderSettings, bitrate_value, output_byte_cap

if TYPE_CHECKING:
    import numpy as np


_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")


@dataclass(frozen=True)
class RenderResult:
    path: Path
    duration: float  # seconds, as ffprobe reads the written file
    width: int
    height: int
    size_bytes: int
    seconds: float  # wall time of the render
    video_codec: str = ""
    audio_codec: str | None = None
    # The reader's frames at the `stills` asked (clip seconds, frame), for a thumbnail.
    stills: list[tuple[float, np.ndarray]] = field(default_factory=list, repr=False)


def length_check(start: float, end: float, max_seconds: float | None) -> None:
    """Raise StageError when the clip [`start`, `end`] is longer than `max_seconds` (the
    platform's longest upload; None: no limit): checked before anything is decoded."""
    if max_seconds is not None and end - start > max_seconds + 1e-6:
        raise StageError(
            f"The clip is {end - start:.1f} s long; this export allows at most {max_seconds:g} s",
            {"found": {"duration": round(end - start, 3)}, "limit": {"maxSeconds": max_seconds}},
        )


def render_clip(
    source_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    start: float,
    end: float,
    settings: RenderSettings,
    crop_path: CropPath | dict[str, Any] | None = None,
    captions: Captions | None = None,
    watermark: Watermark | dict[str, Any] | str | None = None,
    stills: Sequence[float] = (),
) -> RenderResult:
    """Render the clip [`start`, `end`] (source seconds) of `source_path` to `out_path`.

    `settings`: the frame size, rate control, loudness, container and limits
    (`RenderSettings`). `crop_path`: the clip's crop path (None: a centred crop of the
    output's aspect). `captions`: an ASS file (`captions.write_ass`) sized like the
    output, with the folder of its font. `watermark`: a Watermark (or dict, or a PNG path).
    `stills`: clip seconds whose frames (as the reader gives them: cropped, laid out, no
    captions) come back in `RenderResult.stills`, for `thumbnail_from_stills`.
    Raises StageError when ffmpeg fails or its output reaches its size cap
    (`output_byte_cap`), ValueError for bad arguments.
    """
    width, height = settings.width, settings.height
    max_pixels, timeout = settings.max_pixels, settings.timeout
    video_bitrate, max_bitrate = settings.video_bitrate, settings.max_bitrate
    max_seconds = settings.max_seconds
    began = time.monotonic()
    out = Path(out_path)
    kind = (settings.container or out.suffix.lstrip(".") or "mp4").lower()
    if kind not in CONTAINERS:
        raise ValueError(f"unknown container {kind!r}: {', '.join(CONTAINERS)}")
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"the output size must be even and at least 16: {width}x{height}")
    if end <= start:
        raise ValueError(f"empty clip: start {start} >= end {end}")
    length_check(start, end, max_seconds)
    from ..probe import ProbeLimits
    from ..probe import probe as probe_file

    probe = probe_file(
        source_path, limits=ProbeLimits(max_pixels=max_pixels or ffmpeg.DEFAULT_MAX_PIXELS)
    )
    source_w, source_h = probe.video.display_width, probe.video.display_height
    end = min(end, probe.duration)
    if end <= start:
        raise ValueError(f"the clip starts after the source ends ({probe.duration:.2f} s)")
    rate = _output_fps(settings.fps, probe.video.fps)
    frames = max(1, round((end - start) * rate))
    duration = frames / float(rate)

    path = _crop_path(crop_path, source_w, source_h, width, height, start, end)
    cw, ch = path.crop_size
    # Crop first; the reader scales down to the output, never up (the writer's ffmpeg does).
    if ch > height or cw > width:
        work = (width, height)
    else:
        work = (cw, ch)
    segments = _segments(path, frames, rate)

    partial = partial_path(out)
    workdir = Path(tempfile.mkdtemp(prefix="clypai-render-"))
    if not _SAFE_PATH.match(str(workdir)):
        shutil.rmtree(workdir, ignore_errors=True)
        raise StageError(
            "The render's temporary folder has characters ffmpeg's filters cannot take",
            {"folder": str(workdir)},
            permanent=False,
        )
    try:
        audio = _prepare_audio(
            source_path,
            workdir / "audio.wav",
            start=start,
            duration=duration,
            has_audio=probe.audio is not None,
            fade=settings.audio_fade,
            loudness=settings.loudness,
            true_peak=settings.true_peak,
            max_pixels=max_pixels,
            timeout=timeout,
        )
        vf = _writer_filters(work, (width, height), workdir, captions, Watermark.of(watermark))
        codec = CONTAINERS[kind]["codec"]
        params = ["-vf", vf]
        if kind == "webm":
            q = settings.vp9_crf if settings.vp9_crf is not None else 33
            params += ["-crf", str(q), "-b:v", video_bitrate or max_bitrate or "0"]
            params += ["-row-mt", "1", "-deadline", "good", "-cpu-used", "5"]
            params += ["-b:a", settings.audio_bitrate]
        else:
            if video_bitrate is None:
                params += ["-crf", str(settings.crf if settings.crf is not None else 23)]
            if max_bitrate:
                params += ["-maxrate", max_bitrate, "-bufsize", _double(max_bitrate)]
            params += ["-b:a", settings.audio_bitrate, "-movflags", "+faststart"]
            if video_bitrate is not None:
                params += ["-b:v", video_bitrate]
        params += ["-ar", "48000"]
        cap = output_byte_cap(settings, duration)
        params += ["-fs", str(cap)]

        from moviepy import VideoClip

        reader = _Frames(
            source_path,
            segments,
            clip_start=start,
            fps=rate,
            work=work,
            graph=lambda segment, offset: _reader_graph(segment, path, work, rate, offset),
            max_pixels=max_pixels,
            timeout=timeout,
            stills=stills,
        )
        with reader:
            # Half a frame over, so that moviepy's int(duration * fps) counts every frame.
            clip = VideoClip(frame_function=reader, duration=(frames + 0.5) / float(rate))
            clip.write_videofile(
                str(partial),
                fps=float(rate),
                codec=codec,
                audio=str(audio),
                audio_codec=CONTAINERS[kind]["audio"],
                preset=settings.preset,
                threads=settings.threads,
                ffmpeg_params=params,
                logger=None,
            )
        _cap_check(partial, cap, duration)
        os.replace(partial, out)
    except OSError as exc:
        # ffmpeg stopped at its cap; moviepy, still writing frames, met a closed pipe
        _cap_check(partial, cap, duration, cause=exc)
        if exc.errno == errno.ENOSPC or NO_SPACE in str(exc):  # moviepy quotes ffmpeg's error
            raise disk_full("render") from exc
        raise StageError(
            "Clip rendering failed: the encoder stopped",
            {"error": str(exc)},
            permanent=False,
        ) from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        partial.unlink(missing_ok=True)
    result = _result(out, time.monotonic() - began)
    kept = [(index / float(rate), frame) for index, frame in sorted(reader.stills.items())]
    return replace(result, stills=kept)


def _cap_check(path: Path, cap: int, duration: float, cause: Exception | None = None) -> None:
    """Raise StageError when the encode writing `path` reached its size cap: ffmpeg's
    `-fs` ends the output there as if it were done, so a cut file (at least `cap` bytes)
    is the only sign. The caller removes the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size < cap:
        return
    error = StageError(
        f"Clip rendering failed: the encoder's output passed its size limit ({cap} bytes "
        f"for {duration:.1f} s)",
        {"limit": {"bytes": cap, "duration": round(duration, 3)}, "found": {"bytes": size}},
    )
    if cause is not None:
        raise error from cause
    raise error


def _output_fps(fps: float | None, source_fps: float) -> Fraction:
    if fps:
        return Fraction(fps).limit_denominator(1001)
    source = Fraction(source_fps if source_fps > 0 else 30).limit_denominator(1001)
    return min(source, Fraction(60))


def _double(rate: str) -> str:
    return str(int(bitrate_value(rate) * 2))


def _prepare_audio(
    source: str | os.PathLike[str],
    target: Path,
    *,
    start: float,
    duration: float,
    has_audio: bool,
    fade: float,
    loudness: float | None,
    true_peak: float,
    max_pixels: int | None,
    timeout: float,
) -> Path:
    """The clip's audio as 48 kHz stereo PCM: cut on the video's boundaries, faded in and
    out, normalised when `loudness` is given; silence for a source without audio."""
    samples = round(duration * 48000)
    filters = []
    if loudness is not None:
        filters.append(f"loudnorm=I={loudness:g}:TP={true_peak:g}:LRA=11")
    # Sample-exact: `-t` alone cuts on the decoder's frames (56 ms over, measured).
    filters += ["aresample=48000", f"atrim=end_sample={samples}", f"apad=whole_len={samples}"]
    fade = min(max(fade, 0.0), duration / 3)
    if fade > 0:
        filters.append(f"afade=t=in:st=0:d={fade:.3f}")
        filters.append(f"afade=t=out:st={max(0.0, duration - fade):.4f}:d={fade:.3f}")
    if has_audio:
        inputs = [
            "-ss",
            f"{start:.4f}",
            *ffmpeg.safe_input_args(max_pixels),
            "-i",
            ffmpeg.input_url(source),
        ]
        mapping = ["-map", "0:a:0"]
    else:
        inputs = ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
        mapping = []
    args = [
        "-nostdin",
        "-v",
        "error",
        "-y",
        *inputs,
        *mapping,
        "-t",
        f"{duration:.4f}",
        "-vn",
        "-sn",
        "-dn",
        "-af",
        ",".join(filters),
        "-ac",
        "2",
        "-ar",
        "48000",
        "-c:a",
        "pcm_s16le",
        str(target),
    ]
    ffmpeg.run(args, timeout=timeout, error="Clip rendering failed: could not cut the audio")
    return target


def _result(path: Path, seconds: float) -> RenderResult:
    data = ffmpeg.ffprobe_json(path, error="Clip rendering failed: the output is not readable")
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), {})
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = float((data.get("format") or {}).get("duration") or 0.0)
    return RenderResult(
        path=path,
        duration=round(duration, 4),
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        size_bytes=path.stat().st_size,
        seconds=round(seconds, 3),
        video_codec=video.get("codec_name", ""),
        audio_codec=audio.get("codec_name") if audio else None,
    )


def join_bumpers(
    main: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    intro: str | os.PathLike[str] | None = None,
    outro: str | os.PathLike[str] | None = None,
    settings: RenderSettings,
) -> RenderResult:
    """A brand kit's intro and/or outro around a rendered clip, in one encode.

    Each bumper is fitted into the clip's frame (`settings`' size, scaled down, padded,
    never cropped), brought to its frame rate (`settings.fps`, else the clip's), and given
    silence where it has no sound; encoded with `settings`' container, x264 preset and
    constant quality (23 for x264 and 34 for VP9 when unset) and audio bitrate. Bumpers
    are a user's uploads: they open under the same input guards as sources.
    Raises StageError when ffmpeg fails or its output reaches its size cap.
    """
    from ..probe import ProbeLimits
    from ..probe import probe as probe_file

    width, height = settings.width, settings.height
    max_pixels = settings.max_pixels
    began = time.monotonic()
    out = Path(out_path)
    kind = (settings.container or out.suffix.lstrip(".") or "mp4").lower()
    if kind not in CONTAINERS:
        raise ValueError(f"unknown container {kind!r}: {', '.join(CONTAINERS)}")
    parts = [p for p in (intro, main, outro) if p is not None]
    limits = ProbeLimits(max_pixels=max_pixels or ffmpeg.DEFAULT_MAX_PIXELS)
    infos = [probe_file(part, limits=limits) for part in parts]
    fps = settings.fps or infos[0 if intro is None else 1].video.fps  # the clip's
    args: list[str] = ["-nostdin", "-y", "-loglevel", "error"]
    for part, info in zip(parts, infos, strict=True):
        # a bumper is a user's upload: read no further than its header says
        bound = ffmpeg.decode_bound(info.duration)
        args += ["-t", f"{bound:.3f}", *ffmpeg.safe_input_args(max_pixels)]
        args += ["-i", ffmpeg.input_url(part)]
    graph, labels, silent = [], [], len(parts)
    for k, info in enumerate(infos):
        graph.append(
            f"[{k}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={_number(fps)},"
            f"format=yuv420p[v{k}]"
        )
        if info.audio is not None:
            graph.append(f"[{k}:a:0]aresample=48000,aformat=channel_layouts=stereo[a{k}]")
        else:  # silence as long as the picture
            args += [
                "-f",
                "lavfi",
                "-t",
                f"{info.duration:.3f}",
                "-i",
                "anullsrc=r=48000:cl=stereo",
            ]
            graph.append(f"[{silent}:a]anull[a{k}]")
            silent += 1
        labels.append(f"[v{k}][a{k}]")
    graph.append(f"{''.join(labels)}concat=n={len(parts)}:v=1:a=1[v][a]")
    codec = CONTAINERS[kind]
    video = (
        [
            "-c:v",
            "libvpx-vp9",
            "-crf",
            str(settings.vp9_crf or 34),
            "-b:v",
            "0",
            "-row-mt",
            "1",
            "-deadline",
            "good",
            "-cpu-used",
            "5",
        ]
        if codec["codec"] == "libvpx-vp9"
        else ["-c:v", "libx264", "-preset", settings.preset, "-crf", str(settings.crf or 23)]
    )
    args += [
        "-filter_complex",
        ";".join(graph),
        "-map",
        "[v]",
        "-map",
        "[a]",
        *video,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        codec["audio"],
        "-b:a",
        settings.audio_bitrate,
    ]
    if kind in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    # The join applies no bitrate ceiling: capped by the rate of constant quality.
    total = sum(info.duration for info in infos)
    cap = output_byte_cap(settings, total, ceiling=False)
    partial = partial_path(out)
    args += ["-fs", str(cap), str(partial)]
    try:
        ffmpeg.run(
            args, timeout=settings.timeout, error="Could not join the brand kit's intro/outro"
        )
        _cap_check(partial, cap, total)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return _result(out, time.monotonic() - began)
