"""The render's filter graphs: the layouts the reader composes, and what the writer's
ffmpeg draws over the frames.

- `_reader_graph`: a segment's layout at the reader's size: "fill" crops along the crop
  path (a moving `crop=x='expr'`), "fit" puts the whole frame over a blurred copy of
  itself, "split" stacks two crops;
- `_writer_filters`: the writer's `-vf`: the upscale to the output size, the `Captions`
  (an ASS file burned in by libass: each chunk laid out once per word, not drawn per
  frame in Python) and the `Watermark` (our own PNG of the logo, scaled, its opacity
  applied), in yuv420p.

Python decides the timeline and the crop path; ffmpeg's filters do the pixels.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..base import StageError
from ..reframe import CropPath
from .reader import _axis_expression, _Segment


@dataclass(frozen=True)
class Captions:
    """Captions to burn in: an ASS file (`clips.pipeline.captions.write_ass`) sized like
    the output, and the folder of its font (None: libass's default fonts)."""

    ass: str | os.PathLike[str]
    fonts_dir: str | os.PathLike[str] | None = None


@dataclass(frozen=True)
class Watermark:
    """A logo over the clip: `scale` is its width as a share of the frame's width."""

    path: str
    position: str = "top-right"  # top-left, top-right, bottom-left, bottom-right, center
    scale: float = 0.18
    opacity: float = 0.85
    margin: float = 0.04  # share of the frame's width

    @classmethod
    def of(
        cls, value: Watermark | dict[str, Any] | str | os.PathLike[str] | None
    ) -> Watermark | None:
        if value is None or isinstance(value, Watermark):
            return value
        if isinstance(value, dict):
            known = {
                k: value[k]
                for k in ("path", "position", "scale", "opacity", "margin")
                if k in value
            }
            return cls(**{**known, "path": str(known["path"])})
        return cls(path=str(value))


def zoomed_size(cw: int, ch: int, zoom: float) -> tuple[int, int]:
    """The window of a fill shot zoomed in by `zoom` (even sides)."""
    zw, zh = max(2, int(cw / zoom)), max(2, int(ch / zoom))
    return zw - zw % 2, zh - zh % 2


def _reader_graph(
    segment: _Segment, path: CropPath, work: tuple[int, int], fps: Fraction, offset: float
) -> str:
    ww, wh = work
    head = f"fps={fps.numerator}/{fps.denominator}"
    if segment.layout == "fit":
        small_w, small_h = max(2, ww // 8 * 2 // 2), max(2, wh // 8 * 2 // 2)
        return (
            f"{head},split[a][b];"
            f"[a]scale={small_w}:{small_h}:force_original_aspect_ratio=increase:flags=area,"
            f"crop={small_w}:{small_h},boxblur=8:2,scale={ww}:{wh}:flags=bilinear[bg];"
            f"[b]scale={ww}:{wh}:force_original_aspect_ratio=decrease:flags=bicubic[fg];"
            "[bg][fg]overlay=(W-w)/2:(H-h)/2,format=rgb24"
        )
    if segment.layout == "split" and len(segment.panels) >= 2:
        top, bottom = segment.panels[0], segment.panels[1]
        if wh >= ww:  # stacked
            a_size, b_size, stack = (ww, wh // 2), (ww, wh - wh // 2), "vstack"
        else:
            a_size, b_size, stack = (ww // 2, wh), (ww - ww // 2, wh), "hstack"
        return (
            f"{head},split[a][b];"
            f"[a]crop={top['w']}:{top['h']}:{top['x']}:{top['y']},"
            f"scale={a_size[0]}:{a_size[1]}:flags=bicubic[p0];"
            f"[b]crop={bottom['w']}:{bottom['h']}:{bottom['x']}:{bottom['y']},"
            f"scale={b_size[0]}:{b_size[1]}:flags=bicubic[p1];"
            f"[p0][p1]{stack},format=rgb24"
        )
    cw, ch = path.crop_size
    end = (segment.last - segment.first) / float(fps) + offset
    x_expr = _axis_expression(path.keyframes, "x", offset, end)
    y_expr = _axis_expression(path.keyframes, "y", offset, end)
    if segment.zoom > 1.0:  # a window shrunk about the crop path's centre (a hand override)
        zw, zh = zoomed_size(cw, ch, segment.zoom)
        x_expr, y_expr = f"{x_expr}+{(cw - zw) // 2}", f"{y_expr}+{(ch - zh) // 2}"
        cw, ch = zw, zh
    graph = f"{head},crop={cw}:{ch}:'{x_expr}':'{y_expr}'"
    if (cw, ch) != (ww, wh):
        # Scale in YUV, then convert: swscale's scaling path into RGB is slow, its
        # unscaled YUV->RGB fast (a 30 s 1080p preview reader: 6.4 -> 4.0 CPU s).
        graph += f",scale={ww}:{wh}:flags=area,format=yuv420p"
    return graph + ",format=rgb24"


def _writer_filters(
    work: tuple[int, int],
    size: tuple[int, int],
    workdir: Path,
    captions: Captions | None,
    watermark: Watermark | None,
) -> str:
    """The writer's `-vf`: the upscale, libass captions and the watermark, in yuv420p."""
    chain = []
    if work != size:
        chain.append(f"scale={size[0]}:{size[1]}:flags=bicubic")
    if captions is not None:
        script = workdir / "captions.ass"
        shutil.copyfile(captions.ass, script)
        option = f"ass=filename={script}"
        if captions.fonts_dir:
            fonts = workdir / "fonts"
            fonts.mkdir()
            for font in Path(captions.fonts_dir).iterdir():
                if font.suffix.lower() in (".ttf", ".otf", ".ttc") and font.is_file():
                    shutil.copyfile(font, fonts / _safe_name(font.name))
            option += f":fontsdir={fonts}"
        chain.append(option)
    if watermark is None:
        return ",".join(chain + ["format=yuv420p"])
    logo, (x, y) = _prepare_watermark(watermark, size, workdir / "watermark.png")
    body = ",".join(chain) if chain else "null"
    return f"movie={logo}[wm];[in]{body}[v];[v][wm]overlay={x}:{y}:format=auto,format=yuv420p[out]"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _prepare_watermark(
    watermark: Watermark, size: tuple[int, int], target: Path
) -> tuple[Path, tuple[int, int]]:
    """The logo scaled, its opacity applied, re-encoded as our own PNG (ffmpeg never opens
    the user's file); and where it goes."""
    from PIL import Image

    width, height = size
    try:
        with Image.open(watermark.path) as image:
            logo = image.convert("RGBA")
    except (OSError, ValueError) as exc:
        raise StageError(
            "Clip rendering failed: the watermark is not a readable image",
            {"error": str(exc)},
        ) from exc
    logo_w = max(2, round(width * min(max(watermark.scale, 0.01), 1.0)))
    logo_h = max(2, round(logo.height * logo_w / logo.width))
    logo = logo.resize((logo_w, logo_h), Image.LANCZOS)
    if watermark.opacity < 1.0:
        alpha = logo.getchannel("A").point(lambda a: round(a * max(0.0, watermark.opacity)))
        logo.putalpha(alpha)
    logo.save(target, format="PNG")
    margin = round(watermark.margin * width)
    spots = {
        "top-left": (margin, margin),
        "top-right": (width - logo_w - margin, margin),
        "bottom-left": (margin, height - logo_h - margin),
        "bottom-right": (width - logo_w - margin, height - logo_h - margin),
        "center": ((width - logo_w) // 2, (height - logo_h) // 2),
    }
    if watermark.position not in spots:
        raise ValueError(f"unknown watermark position {watermark.position!r}: {', '.join(spots)}")
    return target, spots[watermark.position]
