"""A clip's thumbnail: the sharpest frame that shows a face.

`thumbnail(source, out_jpg, times=...)` decodes each candidate time small (one
`clips.pipeline.frames.FrameReader` frame each), picks the sharpest candidate (variance of
the Laplacian, inside the crop) that shows a face, else the sharpest, and writes it as a
JPEG in the crop's window; `thumbnail_from_stills` does the same with frames a render kept
(`render_clip(stills=)`), decoding nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clypai.lib import ffmpeg
from clypai.lib.files import partial_path

from ..base import StageError
from ..frames import FrameReader
from ..reframe import CropPath

if TYPE_CHECKING:
    import numpy as np

    from ..probe import ProbeResult


def thumbnail(
    source_path: str | os.PathLike[str],
    out_jpg: str | os.PathLike[str],
    *,
    times: Sequence[float],
    crop: CropPath | tuple[int, int, int, int] | None = None,
    clip_start: float = 0.0,
    width: int | None = None,
    detector: str = "mediapipe",
    probe: ProbeResult | None = None,
    max_pixels: int | None = ffmpeg.DEFAULT_MAX_PIXELS,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Write a JPEG of the best of the candidate `times` (source seconds): the sharpest
    frame (variance of the Laplacian, inside the crop) among those showing a face, else
    the sharpest. `crop`: a CropPath (times relative to `clip_start`) or a fixed (x, y, w,
    h) window; None: the whole frame. `width`: the JPEG's width (default the crop's, at
    most 1080). Returns {"time", "sharpness", "face", "path"}."""
    import cv2
    import numpy as np

    from ..faces import analysis_size, shared_detector

    if not times:
        raise ValueError("no candidate times")
    if probe is None:
        from ..probe import ProbeLimits
        from ..probe import probe as probe_file

        probe = probe_file(
            source_path, limits=ProbeLimits(max_pixels=max_pixels or ffmpeg.DEFAULT_MAX_PIXELS)
        )
    source_w, source_h = probe.video.display_width, probe.video.display_height
    small_w, small_h = analysis_size(source_w, source_h)
    sx, sy = source_w / small_w, source_h / small_h

    def window(t: float) -> tuple[int, int, int, int]:
        if crop is None:
            return 0, 0, source_w, source_h
        if isinstance(crop, CropPath):
            return crop.at(t - clip_start)
        return tuple(int(v) for v in crop)  # type: ignore[return-value]

    engine = shared_detector(detector)
    best: tuple[float, float, bool] | None = None
    for t in times:
        t = min(max(0.0, float(t)), max(0.0, probe.duration - 0.05))
        rgb = FrameReader(
            source_path,
            size=(small_w, small_h),
            vf=f"scale={small_w}:{small_h}:flags=area,format=rgb24",
            start=t,
            frames=1,
            max_pixels=max_pixels,
            timeout=timeout,
            error="Thumbnail failed: could not decode a frame",
        ).grab()
        if rgb is None:
            continue
        x, y, w, h = window(t)
        x0, y0 = int(x / sx), int(y / sy)
        x1, y1 = max(x0 + 2, int((x + w) / sx)), max(y0 + 2, int((y + h) / sy))
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
        sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
        region = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        face = bool(engine.detect(region, gray))
        key = (1 if face else 0, sharpness)
        if best is None or key > (1 if best[2] else 0, best[1]):
            best = (t, sharpness, face)
    if best is None:
        raise StageError(
            "Thumbnail failed: no candidate frame could be decoded", {"times": list(times)}
        )
    t, sharpness, face = best
    x, y, w, h = window(t)
    out_w = width or min(w, 1080)
    out_w -= out_w % 2
    out_h = max(2, round(h * out_w / w / 2) * 2)
    partial = partial_path(out_jpg)
    args = [
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-ss",
        f"{t:.4f}",
        *ffmpeg.safe_input_args(max_pixels),
        "-i",
        ffmpeg.input_url(source_path),
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-vf",
        f"crop={w}:{h}:{x}:{y},scale={out_w}:{out_h}:flags=bicubic",
        "-q:v",
        "3",
        "-f",
        "image2",
        str(partial),
    ]
    try:
        ffmpeg.run(args, timeout=timeout, error="Thumbnail failed: could not write the image")
        os.replace(partial, out_jpg)
    finally:
        partial.unlink(missing_ok=True)
    return {
        "time": round(t, 3),
        "sharpness": round(sharpness, 2),
        "face": face,
        "path": str(out_jpg),
    }


def thumbnail_from_stills(
    stills: Sequence[tuple[float, np.ndarray]],
    out_jpg: str | os.PathLike[str],
    *,
    width: int | None = None,
    detector: str = "mediapipe",
) -> dict[str, Any]:
    """Write a JPEG of the best of `stills` (clip seconds, RGB frame: what `render_clip`
    kept): the sharpest frame (variance of the Laplacian) among those showing a face, else
    the sharpest, `width` wide (default the frame's, at most 1080). The frames are the
    render's own, so this decodes nothing: `thumbnail` seeks and decodes once per
    candidate, about 4 s a clip on a 1080p source. Returns {"time", "sharpness", "face",
    "path"}."""
    import cv2
    from PIL import Image

    from ..faces import shared_detector

    if not stills:
        raise ValueError("no candidate frames")
    engine = shared_detector(detector)
    best: tuple[tuple[int, float], float, np.ndarray] | None = None
    for t, rgb in stills:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
        key = (1 if engine.detect(rgb, gray) else 0, sharpness)
        if best is None or key > best[0]:
            best = (key, t, rgb)
    assert best is not None
    (face, sharpness), t, rgb = best
    height, frame_w = rgb.shape[:2]
    out_w = width or min(frame_w, 1080)
    out_w -= out_w % 2
    out_h = max(2, round(height * out_w / frame_w / 2) * 2)
    image = Image.fromarray(rgb)
    if image.size != (out_w, out_h):
        image = image.resize((out_w, out_h), Image.BICUBIC)
    image.save(out_jpg, format="JPEG", quality=88)
    return {
        "time": round(t, 3),
        "sharpness": round(sharpness, 2),
        "face": bool(face),
        "path": str(out_jpg),
    }
