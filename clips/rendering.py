"""A clip's own files: its preview or full video, thumbnail, captions, with its brand.

`clip_video_make` renders a clip's preview (480 px on the short side, fast) or its full
video (1080 px) and stores it with the thumbnail and the SRT/VTT; `clip_encode` is the
render of one variant into a file, with the brand kit's captions style, watermark, intro
and outro, which exports use too. The crop path the renderer follows is computed once
and stored on the clip (`clip_crop_path`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.utils import timezone

from brandkits.models import DEFAULT_CAPTION_STYLE
from clypai.lib.errors import disk_full
from clypai.lib.files import partial_path
from clypai.lib.storage import local_path

from .analysis import SourceAnalysis, analysis_cached, source_audio_path, work_dir
from .models import Analysis, Clip
from .pipeline import StageError
from .platforms import full_settings, preview_settings

if TYPE_CHECKING:
    from .pipeline.render import RenderSettings

logger = logging.getLogger(__name__)


def _probe_limits():
    from .pipeline.probe import ProbeLimits

    return ProbeLimits(
        max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
        timeout_seconds=settings.CLYPAI_PROBE_TIMEOUT_SECONDS,
    )


def _brand_caption_style(clip: Clip) -> tuple[dict[str, Any], int]:
    """The caption style for the renderer from the clip's brand kit (or the defaults),
    and how many words a caption chunk holds."""
    kit = clip.brand_kit
    brand = kit.effective_caption_style if kit else dict(DEFAULT_CAPTION_STYLE)
    accent = kit.accent_color if kit else "#FFD60A"
    style: dict[str, Any] = {
        "size": brand.get("fontSize"),
        "color": brand.get("textColor"),
        "highlightColor": brand.get("highlightColor") or accent,
        "outlineColor": brand.get("outlineColor"),
        "outline": brand.get("outlineWidth"),
        "box": brand.get("box"),
        "boxColor": (brand.get("boxColor") or "#000000")[:7],
        "position": brand.get("position")
        if brand.get("position") in ("top", "middle", "bottom")
        else "bottom",
        "uppercase": brand.get("uppercase"),
    }
    style["font"] = _brand_font(kit, brand.get("fontFamily"))
    return style, int(brand.get("maxWordsPerChunk") or 4)


def _brand_font(kit, family: Any) -> str | None:
    """The font file for the kit's caption family: its own uploaded font when the family
    is that font's, else a known caption font's file; never the stored string itself
    (an old kit's family could name a server path, or hold a newline that would add
    lines to the ASS script). An unknown family gets the default font."""
    from .pipeline.captions import caption_font_file

    if kit is not None and kit.font_file and kit.font_family and family == kit.font_family:
        return str(_kit_font_path(kit))
    known = caption_font_file(family)
    if known is not None:
        return str(known)
    if family:
        logger.warning("brand kit %s: unknown caption font, the default is used", kit and kit.pk)
    return None


def _kit_font_path(kit) -> Path:
    """The kit's font in a folder of its own (libass is handed the whole folder, so it
    must hold no other team's fonts), named by the stored file so a new upload is
    fetched again."""
    import hashlib
    import shutil

    name = kit.font_file.name
    folder = work_dir("fonts", kit.pk, hashlib.sha256(name.encode()).hexdigest()[:16])
    target = folder / f"font{Path(name).suffix.lower()}"
    if not target.exists():
        source = local_path(name, cache_dir=work_dir("cache"))
        partial = partial_path(target)
        shutil.copyfile(source, partial)
        partial.replace(target)
    else:
        target.touch()
    return target


def _brand_watermark(clip: Clip) -> dict[str, Any] | None:
    kit = clip.brand_kit
    if not kit or not kit.logo:
        return None
    mark = kit.effective_watermark
    return {
        "path": str(local_path(kit.logo.name, cache_dir=work_dir("cache"))),
        "position": mark.get("position", "top-right"),
        "scale": float(mark.get("scale", 0.15)),
        "opacity": float(mark.get("opacity", 0.8)),
    }


def clip_crop_path(clip: Clip, path: Path, analysis: SourceAnalysis | None) -> dict[str, Any]:
    """The clip's crop path: stored with the clip once computed (an editor may reuse it),
    with its hand override (`clip.crop_path["override"]`, source seconds) laid over it."""
    from .pipeline.probe import probe
    from .pipeline.reframe import apply_override, crop_path

    stored = clip.crop_path or {}
    override = stored.get("override")
    wanted = {
        "aspect": clip.aspect_ratio,
        "reframing": clip.reframing,
        "layout": clip.layout,
        "start": clip.start_time,
        "end": clip.end_time,
        # 2: faces cut by the edge, people and content; 3: voices tied to faces
        "framing": 3,
        "override": override,
    }
    if stored.get("request") == wanted and stored.get("path"):
        return stored["path"]
    info = probe(path, limits=_probe_limits())
    faces = clip_faces(clip, path, info) if clip.reframing else None
    source = clip.source
    scenes = (
        analysis.scenes
        if analysis
        else (
            Analysis.objects.filter(source=source, kind=Analysis.Kind.SCENES)
            .values_list("result", flat=True)
            .first()
            or []
        )
    )
    audio = (
        analysis.audio
        if analysis
        else (
            Analysis.objects.filter(source=source, kind=Analysis.Kind.AUDIO)
            .values_list("result", flat=True)
            .first()
            or {}
        )
    )

    voices = clip_voices(clip, path, info, faces) if faces else None

    def make(layout: str):
        return crop_path(
            source_width=info.video.display_width,
            source_height=info.video.display_height,
            start=clip.start_time,
            end=clip.end_time,
            aspect=clip.aspect_ratio,
            shots=scenes,
            faces=faces,
            loudness=(audio or {}).get("loudness"),
            loudness_window=(audio or {}).get("window", 0.1),
            voices=voices,
            reframing=clip.reframing,
            layout=layout,
        )

    result = make(clip.layout or "auto")
    if override:
        layouts = {r.get("layout") for r in override.get("shots", [])} & {"fill", "split"}
        result = apply_override(
            result,
            override,
            clip_start=clip.start_time,
            faces=faces,
            by_layout={layout: make(layout) for layout in layouts},
        )
    stored = {"request": wanted, "path": result.to_dict()}
    if override:
        stored["override"] = override
    Clip.objects.filter(pk=clip.pk).update(crop_path=stored)
    clip.crop_path = stored
    return stored["path"]


def clip_faces(clip: Clip, path: Path, info=None) -> dict[str, Any]:
    """The faces (and people, content) of the clip's range, cached by source and range."""
    from .pipeline.faces import analysis_key, detect_faces

    return analysis_cached(
        clip.source,
        Analysis.Kind.FACES,
        analysis_key(clip.start_time, clip.end_time),
        lambda: detect_faces(
            path,
            start=clip.start_time,
            end=clip.end_time,
            probe=info,
            timeout=settings.CLYPAI_DECODE_TIMEOUT_SECONDS,
        ).to_dict(),
    )


VOICES_KEY = "voices:silero-vad+resemblyzer:v1"


def clip_voices(clip: Clip, path: Path, info, faces: dict[str, Any]) -> dict[str, Any] | None:
    """The speaker turns of the clip's whole source (silero-vad, Resemblyzer), computed
    once per source and cached beside its audio features; only where the clip has two or
    more faces whose mouths were measured (otherwise no one is to be chosen) and the
    source has sound. A failure leaves who-speaks to the mouths and the loudness."""
    from .pipeline.speakers import needs_voices

    if not needs_voices(faces) or info is None or not info.audio:
        return None
    from .pipeline.voices import detect_voices

    source = clip.source
    try:
        return analysis_cached(
            source,
            Analysis.Kind.AUDIO,
            VOICES_KEY,
            lambda: detect_voices(source_audio_path(source, path)).to_dict(),
        )
    except (StageError, ImportError) as exc:
        logger.warning("voices of source %s unavailable: %s", source.pk, exc)
        return None


def clip_captions(clip: Clip) -> list:
    """Caption chunks of the clip's (possibly corrected) words, times from its start."""
    from .pipeline.captions import caption_chunks

    _, max_words = _brand_caption_style(clip)
    return caption_chunks(
        clip.words or [], start=clip.start_time, end=clip.end_time, max_words=max_words
    )


def clip_write_captions(clip: Clip) -> None:
    """Store the clip's SRT (and a VTT beside it) from its words."""
    from .pipeline.captions import to_srt, to_vtt

    chunks = clip_captions(clip)
    srt = ContentFile(to_srt(chunks).encode("utf-8"), name=f"{clip.pk}.srt")
    if clip.captions:
        clip.captions.storage.delete(clip.captions.name)
    clip.captions.save(f"{clip.pk}.srt", srt, save=False)
    vtt_name = clip.captions.name[: -len(".srt")] + ".vtt"
    if default_storage.exists(vtt_name):
        default_storage.delete(vtt_name)
    default_storage.save(vtt_name, ContentFile(to_vtt(chunks).encode("utf-8")))
    Clip.objects.filter(pk=clip.pk).update(captions=clip.captions.name)


def clip_drop_captions(clip: Clip) -> None:
    """Remove the clip's SRT and VTT, if any: a clip made with enableCaptions false has
    none (its captionsUrl is null)."""
    if not clip.captions:
        return
    name = clip.captions.name
    for stale in (name, name[: -len(".srt")] + ".vtt" if name.endswith(".srt") else None):
        if stale and default_storage.exists(stale):
            default_storage.delete(stale)
    clip.captions = None
    Clip.objects.filter(pk=clip.pk).update(captions="")


def clip_caption_files(clip: Clip) -> None:
    """The clip's SRT and VTT as its config asks: written from its words when
    enableCaptions is on, none at all when it is off."""
    if clip.enable_captions:
        clip_write_captions(clip)
    else:
        clip_drop_captions(clip)


def _bumpers(clip: Clip) -> tuple[Path | None, Path | None]:
    """The brand kit's intro and outro files, local, when it has them."""
    kit = clip.brand_kit
    if kit is None:
        return None, None
    found = []
    for upload in (kit.intro_upload, kit.outro_upload):
        found.append(
            local_path(upload.file.name, cache_dir=work_dir("cache"))
            if upload is not None and upload.file
            else None
        )
    return found[0], found[1]


def clip_encode(
    clip: Clip,
    out: Path,
    *,
    render_settings: RenderSettings,
    burn: bool,
    analysis: SourceAnalysis | None = None,
    bumpers: bool = True,
    stills: list[float] | None = None,
):
    """Render the clip with these render settings into `out` (the work dir), with the
    brand kit's intro and outro around it when it has them and `bumpers` is on. `stills`:
    clip seconds whose frames the result keeps (render_clip's), for the thumbnail."""
    from .pipeline.captions import fonts_dir, write_ass
    from .pipeline.render import Captions, join_bumpers, render_clip

    render_settings = replace(
        render_settings,
        max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
        timeout=settings.CLYPAI_RENDER_TIMEOUT_SECONDS,
        max_output_bytes_per_second=settings.CLYPAI_MAX_OUTPUT_BYTES_PER_SECOND,
    )

    path = local_path(clip.source.file.name, cache_dir=work_dir("cache"))
    crop = clip_crop_path(clip, path, analysis)
    intro, outro = _bumpers(clip) if bumpers else (None, None)
    captions = None
    if burn and clip.words:
        style, _ = _brand_caption_style(clip)
        chunks = clip_captions(clip)
        if chunks:
            ass = write_ass(
                out.with_suffix(".ass"),
                chunks,
                width=render_settings.width,
                height=render_settings.height,
                style=style,
                platform=clip.platform or "default",
            )
            captions = Captions(ass, fonts_dir(style))
    main = out.with_name(f"{out.stem}.main{out.suffix}") if intro or outro else out
    try:
        result = render_clip(
            path,
            main,
            start=clip.start_time,
            end=clip.end_time,
            settings=render_settings,
            crop_path=crop,
            captions=captions,
            watermark=_brand_watermark(clip),
            stills=stills or (),
        )
        if main is out:
            return result

        joined = join_bumpers(main, out, intro=intro, outro=outro, settings=render_settings)
        return replace(joined, stills=result.stills)
    finally:
        if captions:
            Path(captions.ass).unlink(missing_ok=True)
        if main is not out:
            main.unlink(missing_ok=True)


def _storage_delete(storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:  # the first error is the one to report
        logger.warning("could not delete %s", name, exc_info=True)


def clip_video_make(
    clip: Clip,
    analysis: SourceAnalysis | None,
    *,
    kind: str,
    check: Callable[[], None] = lambda: None,
) -> None:
    """Render a clip's preview ("preview": 480 px on the short side, fast) or its full
    video ("full": 1080 px), with its thumbnail and captions, and store them on the clip.

    When the clip's config enables captions they are burned in and the SRT and VTT are
    written; when it does not, there are none of either. Rendering again replaces the
    earlier file. `check` runs once the render is made, before anything is stored: it
    raises (the run's heartbeat's `WorkTaken`) when the work is no longer the caller's,
    so nothing is stored by a run whose work another worker holds.
    """
    from .pipeline.render import thumbnail, thumbnail_from_stills

    if clip.start_time is None or clip.end_time is None:
        raise StageError("The clip has no range to render", {"stage": "render"})
    clip.refresh_from_db()
    work = work_dir("render", clip.pk)
    out = work / f"{kind}.mp4"
    render_settings = (
        preview_settings(clip.aspect_ratio)
        if kind == "preview"
        else full_settings(clip.aspect_ratio)
    )
    stills = None
    if not clip.thumbnail:  # candidates for the thumbnail, kept by the render's reader
        length = clip.end_time - clip.start_time
        stills = [length * f for f in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85)]
        stills += [hook["time"] + 0.5 for hook in (clip.metadata or {}).get("hooks", [])[:2]]
        stills = [t for t in stills if 0 <= t < length]
    stored: list = []  # files stored by this run, removed when it fails after all
    try:
        # Previews are for choosing: the brand kit's intro and outro join the full render.
        result = clip_encode(
            clip,
            out,
            render_settings=render_settings,
            burn=clip.enable_captions,
            analysis=analysis,
            bumpers=kind != "preview",
            stills=stills,
        )
        check()
        kept = getattr(result, "stills", None)
        field = clip.preview if kind == "preview" else clip.video
        if field:
            field.storage.delete(field.name)
        with open(out, "rb") as fh:
            field.save(f"{clip.pk}.mp4", File(fh), save=False)
        stored.append(field.name)
        update = {"preview" if kind == "preview" else "video": field.name}

        if not clip.thumbnail:
            jpg = work / "thumbnail.jpg"
            width = min(render_settings.width, 720)
            if kept:  # the render's own frames: nothing decoded twice
                thumbnail_from_stills(kept, jpg, width=width)
            else:
                from .pipeline.reframe import CropPath

                path = local_path(clip.source.file.name, cache_dir=work_dir("cache"))
                thumbnail(
                    path,
                    jpg,
                    times=[clip.start_time + t for t in stills or [0.0]],
                    crop=CropPath.from_dict(clip.crop_path["path"]) if clip.crop_path else None,
                    clip_start=clip.start_time,
                    width=width,
                    max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
                    timeout=settings.CLYPAI_THUMBNAIL_TIMEOUT_SECONDS,
                )
            with open(jpg, "rb") as fh:
                clip.thumbnail.save(f"{clip.pk}.jpg", File(fh), save=False)
            stored.append(clip.thumbnail.name)
            update["thumbnail"] = clip.thumbnail.name
        Clip.objects.filter(pk=clip.pk).update(**update, updated_at=timezone.now())
        stored.clear()  # the clip holds them now
        clip_caption_files(clip)
    except BaseException as exc:
        for name in stored:
            _storage_delete(clip.video.storage, name)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise disk_full("render") from exc  # storing it; tried again later
        raise
    finally:  # its output and thumbnail, whole or not
        for leftover in work.iterdir():
            leftover.unlink(missing_ok=True)
    logger.info(
        "clip %s: %s render %dx%d in %.1f s",
        clip.pk,
        kind,
        result.width,
        result.height,
        result.seconds,
    )
