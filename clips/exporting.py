"""An export of a clip: its file at a format, quality and platform preset, captions
burned in or not, made by the renderer and stored; the clip becomes `exported`."""

from __future__ import annotations

import logging
from dataclasses import replace

from django.core.files.base import File
from django.db import close_old_connections

from clypai import metrics

from . import states
from .analysis import work_dir
from .models import Clip
from .pipeline import StageError
from .pipeline.render import length_check
from .platforms import export_settings
from .rendering import clip_encode

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
    out = work / f"{export.pk}.{export.format}"
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
            metrics.failure(stage="export", code="internal_error")
            logger.exception("export %s failed unexpectedly", export.pk)
            states.export_fail(export, error=f"internal error ({type(exc).__name__})")
            return
        finally:
            out.unlink(missing_ok=True)
            close_old_connections()
        if states.export_complete(export, size=size):
            states.clip_exported(clip.pk)
