"""An export of a clip: its file at a format, quality and platform preset, captions
burned in or not, made by the renderer and stored; the clip becomes `exported`.

A timeline export (otio, fcpxml, edl) is a zip for an editor (`timeline_package`): the
timeline, the clip's SRT, a README.txt, and the source under `media/` (where the timeline
looks for it), or, for a source over CLYPAI_EXPORT_MEDIA_MAX_BYTES, a signed link to it
in the README, made fresh at each download of the zip (`package_renewed`). The brand
kit's intro and outro, when it has them, are on the timeline around the cut and always
packed under `media/` (a brand kit's short uploads, not the source).
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.base import File
from django.db import close_old_connections
from django.utils import timezone

from clypai import metrics
from clypai.lib.storage import local_path, signed_url

from . import states
from .analysis import work_dir
from .models import Clip, Export
from .pipeline import StageError
from .pipeline.render import length_check
from .platforms import EXPORT_TIMELINES, export_settings
from .rendering import _bumpers, _probe_limits, clip_captions, clip_crop_path, clip_encode

logger = logging.getLogger(__name__)


def export_process(*, export_id: str) -> None:
    """Produce an export's file (format, quality, platform preset, captions burned or not),
    or record why it could not be made (its render minutes given back only when it was
    refused before encoding). The clip becomes `exported`. The export's worker
    beats its heartbeat meanwhile: the sweep queues again one whose worker died, and a
    run whose export was given to another worker stores nothing."""
    export = states.export_claim(export_id)
    if export is None:
        return
    clip = Clip.objects.select_related("source", "brand_kit").get(pk=export.clip_id)
    work = work_dir("export", export.pk)
    timeline = export.format in EXPORT_TIMELINES
    out = work / f"{export.pk}.{'zip' if timeline else export.format}"
    with states.export_heartbeat(export) as beat, metrics.stage_clock() as clock:
        clock.enter("export")
        try:
            # Refusals before any encoding give the export's render minutes back.
            render_settings = export_settings(
                aspect=clip.aspect_ratio, quality=export.quality, platform=export.platform or None
            )
            length_check(clip.start_time, clip.end_time, render_settings.max_seconds)
        except (StageError, ValueError) as err:
            states.export_fail(
                export,
                error=getattr(err, "message", None) or str(err),
                details=getattr(err, "details", None),
                before_work=True,
            )
            out.unlink(missing_ok=True)
            close_old_connections()
            return
        try:
            if timeline:
                export.source_linked = timeline_package(
                    clip, export, out, frame=(render_settings.width, render_settings.height)
                )
            else:
                clip_encode(
                    clip,
                    out,
                    render_settings=replace(render_settings, container=export.format),
                    burn=export.burn_captions,
                )
            beat.check()
            with open(out, "rb") as fh:
                export.file.save(out.name, File(fh), save=False)
            size = out.stat().st_size
        except states.WorkTaken:
            logger.warning("export %s was taken from this run; it stops here", export.pk)
            return
        except (StageError, ValueError) as err:
            metrics.failure(stage="export", code=getattr(err, "code", "invalid_request"))
            states.export_fail(
                export,
                error=getattr(err, "message", None) or str(err),
                details=getattr(err, "details", None),
            )
            return
        except Exception as exc:
            if states.database_outage(exc):  # not the work's fault: the sweep recovers it
                raise
            metrics.failure(stage="export", code="internal_error")
            logger.exception("export %s failed unexpectedly", export.pk)
            states.export_fail(export, error=f"internal error ({type(exc).__name__})")
            return
        finally:
            out.unlink(missing_ok=True)
            close_old_connections()
        if states.export_complete(export, size=size):
            states.clip_exported(clip.pk)


# Timeline packages -------------------------------------------------------------------

README = "README.txt"


def media_name(clip: Clip) -> str:
    """The source's file name in a package (`media/<name>`): the uploaded file's name or
    the URL's last part, made safe, with the stored file's extension."""
    suffix = PurePosixPath(clip.source.file.name).suffix
    owner = clip.job if clip.job_id and not (clip.upload_id or clip.source_url) else clip
    given = owner.upload.filename if owner.upload_id else owner.source_url.split("?")[0]
    stem = PurePosixPath(given.rstrip("/")).stem if given else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")[:80] or "source"
    return f"{stem}{suffix}"


def _package_names(clip: Clip, fmt: str) -> dict[str, str]:
    from .pipeline.timeline import TIMELINE_FORMATS

    return {
        "timeline": f"{clip.pk}{TIMELINE_FORMATS[fmt]}",
        "srt": f"{clip.pk}.srt",
        "media": f"media/{media_name(clip)}",
    }


BUMPER_ROLES = ("intro", "outro")


def bumper_names(clip: Clip) -> dict[str, str]:
    """The brand kit's intro and outro in a package, by role: `media/intro-<name>` and
    `media/outro-<name>` (the upload's file name, made safe); none without a brand kit
    or without them."""
    kit = clip.brand_kit
    if kit is None:
        return {}
    names = {}
    for role, upload in zip(BUMPER_ROLES, (kit.intro_upload, kit.outro_upload), strict=True):
        if upload is None or not upload.file:
            continue
        given = PurePosixPath(upload.filename or upload.file.name)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", given.stem).strip(".-")[:80] or role
        name = f"media/{role}-{stem}{PurePosixPath(upload.file.name).suffix}"
        if name == f"media/{media_name(clip)}":  # a source of the same name keeps its own
            name = f"media/{role}-{stem}-{role}{PurePosixPath(upload.file.name).suffix}"
        names[role] = name
    return names


def _bumper_media(path: Path, url: str):
    """An intro or outro as the timeline names it: its picture's length (what the render
    joins), frame rate, display size and whether it has sound."""
    from .pipeline.probe import probe
    from .pipeline.timeline import TimelineMedia

    info = probe(path, limits=_probe_limits())
    video = info.video
    seconds = video.frames / video.fps if video.frames and video.fps else info.duration
    return TimelineMedia(
        url=url,
        fps=video.fps,
        duration=seconds,
        width=video.display_width,
        height=video.display_height,
        name=PurePosixPath(url).name,
        audio=info.audio is not None,
    )


def timeline_package(clip: Clip, export: Export, out: Path, *, frame: tuple[int, int]) -> bool:
    """Write the zip of a timeline export to `out`: the clip's timeline in the export's
    format (its cut of the source to the frame, the effective crop path, the captions),
    its SRT, a README.txt, and the source in `media/` when it is at most
    CLYPAI_EXPORT_MEDIA_MAX_BYTES. True when the source is linked instead of packed."""
    from .pipeline.captions import to_srt
    from .pipeline.probe import probe
    from .pipeline.timeline import (
        TimelineCut,
        TimelineMedia,
        cut_offset,
        frame_rate,
        timeline_write,
    )

    if clip.start_time is None or clip.end_time is None:
        raise StageError("The clip has no range to export", {"stage": "export"})
    path = local_path(clip.source.file.name, cache_dir=work_dir("cache"))
    info = probe(path, limits=_probe_limits())
    names = _package_names(clip, export.format)
    # The effective crop path (the hand override laid over it), as GET /v1/clips shows it.
    crop = clip_crop_path(clip, path, None)
    chunks = clip_captions(clip) if clip.enable_captions and clip.words else []
    bumper_files = dict(zip(BUMPER_ROLES, _bumpers(clip), strict=True))
    bumpers = {
        role: (bumper_files[role], _bumper_media(bumper_files[role], name))
        for role, name in bumper_names(clip).items()
        if bumper_files[role] is not None
    }
    media = TimelineMedia(
        url=names["media"],
        fps=info.video.fps,
        duration=info.duration,
        width=info.video.display_width,
        height=info.video.display_height,
        name=PurePosixPath(names["media"]).name,
    )
    cut = TimelineCut(
        name=clip.name or clip.pk,
        start=clip.start_time,
        end=clip.end_time,
        frame_width=frame[0],
        frame_height=frame[1],
        crop=crop,
        captions=chunks,
        language=clip.language or "en",
        metadata={
            "clipId": clip.pk,
            "aspectRatio": clip.aspect_ratio,
            "captions": names["srt"] if chunks else None,
        },
        intro=bumpers["intro"][1] if "intro" in bumpers else None,
        outro=bumpers["outro"][1] if "outro" in bumpers else None,
    )
    text = timeline_write(media, cut, export.format)
    linked = clip.source.size_bytes > settings.CLYPAI_EXPORT_MEDIA_MAX_BYTES
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(names["timeline"], text, compress_type=zipfile.ZIP_DEFLATED)
        if chunks:
            srt = to_srt(_shifted(chunks, cut_offset(cut, media.fps) / frame_rate(media.fps)))
            zf.writestr(names["srt"], srt, compress_type=zipfile.ZIP_DEFLATED)
        for path_on_disk, bumper in bumpers.values():
            zf.write(path_on_disk, bumper.url, compress_type=zipfile.ZIP_STORED)
        link = expires = None
        if linked:
            link, expires = _source_link(clip)
        zf.writestr(
            README,
            package_readme(
                clip,
                export.format,
                link=link,
                expires=expires,
                bumpers={role: bumper.url for role, (_, bumper) in bumpers.items()},
            ),
            compress_type=zipfile.ZIP_DEFLATED,
        )
        if not linked:  # video does not deflate: stored as it is
            zf.write(path, names["media"], compress_type=zipfile.ZIP_STORED)
    return linked


def _shifted(chunks, seconds):
    """Caption chunks later by `seconds` (the intro's length): the SRT beside a timeline
    is timed as the timeline is."""
    if not seconds:
        return chunks
    later = float(seconds)
    return [
        replace(
            c,
            start=c.start + later,
            end=c.end + later,
            words=[replace(w, start=w.start + later, end=w.end + later) for w in c.words],
        )
        for c in chunks
    ]


def _source_link(clip: Clip, request=None) -> tuple[str, datetime]:
    ttl = settings.CLYPAI_SIGNED_URL_TTL_SECONDS
    expires = timezone.now() + timedelta(seconds=ttl)
    link = signed_url(
        clip.source.file.name,
        ttl_seconds=ttl,
        download_name=media_name(clip),
        request=request,
    )
    return link, expires


def package_readme(
    clip: Clip,
    fmt: str,
    *,
    link: str | None = None,
    expires: datetime | None = None,
    bumpers: dict[str, str] | None = None,
) -> str:
    """The package's README.txt: what each file is, how to open the timeline, and, when
    the source is linked, the link and until when it works. `bumpers`: the intro's and
    outro's names in the package, by role."""
    names = _package_names(clip, fmt)
    editors = {
        "fcpxml": "Final Cut Pro (File > Import > XML), DaVinci Resolve (File > Import > "
        "Timeline) or Premiere Pro (File > Import)",
        "otio": "any OpenTimelineIO tool (DaVinci Resolve, Kdenlive, otioview), or "
        "convert it with otioconvert",
        "edl": "any editor that imports a CMX 3600 EDL (Premiere Pro, DaVinci Resolve, "
        "Avid, Final Cut Pro through a converter)",
    }[fmt]
    crop = {
        "fcpxml": "The crop path (the clip's reframing, with any hand override) is the video "
        "clip's Transform, keyframed (position and scale) on a "
        f"{clip.aspect_ratio} timeline; a split shot is two more clips of the source on "
        "lanes 1 and 2, each cropped to its panel and placed on its half of the frame; "
        "the captions are a caption lane (iTT role).",
        "otio": "The crop path (the clip's reframing, with any hand override) is in the "
        'clip\'s metadata under "clypai" > "cropPath" (source pixels, clip seconds), and '
        'a split shot\'s two panels under "clypai" > "splitPanels".',
        "edl": "An EDL holds the cut only: reframe in the editor (the crop path is in the "
        "API: GET /v1/clips/{id}, cropPath).",
    }[fmt]
    lines = [
        f"ClypAI clip {clip.pk}: {clip.name or ''}".rstrip(": "),
        "",
        f"{names['timeline']}  the clip's timeline: its cut of the source, "
        f"{clip.start_time:.3f} s to {clip.end_time:.3f} s, to the frame.",
        f"    Open it in {editors}.",
        f"    {crop}",
    ]
    bumpers = bumpers or {}
    if bumpers:
        lines.append(
            f"    The brand kit's {' and '.join(bumpers)} {'are' if len(bumpers) > 1 else 'is'} "
            "on the timeline around the cut, as the render joins them."
        )
    if clip.enable_captions and clip.words:
        timed = "the timeline's start" if "intro" in bumpers else "the clip's start"
        lines.append(f"{names['srt']}  the captions, timed from {timed}.")
    for role, name in bumpers.items():
        lines.append(f"{name}  the brand kit's {role}, where the timeline looks for it.")
    if link:
        lines += [
            "",
            f"{names['media']}  is NOT in this zip (the source is larger than the package "
            "limit). Download it here and save it under that name, in a folder `media` "
            "beside the timeline, before opening the timeline:",
            f"    {link}",
            f"    This link works until {expires.strftime('%Y-%m-%dT%H:%M:%SZ')} "
            f"({_lifetime(settings.CLYPAI_SIGNED_URL_TTL_SECONDS)} from when this zip "
            "was downloaded). Download the export again (GET /v1/exports/{id}, then its "
            "exportUrl) for a fresh one.",
        ]
    else:
        lines.append(
            f"{names['media']}  the source video, where the timeline looks for it (keep "
            "the folder layout; if your editor asks, relink to this file)."
        )
    return "\n".join(lines) + "\n"


def _lifetime(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{max(1, seconds // 60)} minutes"


def package_renewed(export: Export, request=None) -> bytes:
    """A linked-source package as stored, with its README.txt made anew: a fresh signed
    link to the source, valid for CLYPAI_SIGNED_URL_TTL_SECONDS from now."""
    clip = Clip.objects.select_related("source", "upload").get(pk=export.clip_id)
    link, expires = _source_link(clip, request)
    buffer = io.BytesIO()
    with export.file.open("rb") as fh, zipfile.ZipFile(fh) as old:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new:
            for item in old.infolist():
                if item.filename != README:
                    new.writestr(item, old.read(item))
            bumpers = {
                role: name
                for name in old.namelist()
                for role in BUMPER_ROLES
                if name.startswith(f"media/{role}-")
            }
            new.writestr(
                README,
                package_readme(clip, export.format, link=link, expires=expires, bumpers=bumpers),
            )
    return buffer.getvalue()
