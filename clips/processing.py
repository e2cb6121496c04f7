"""Processing of a claimed clip and of an export: the media pipeline's entry points.

The pipeline stages (fetch, probe, transcribe, scenes, select, reframe, render,
export) arrive with their own issues; until a stage exists, processing stops at the
last one that does and says so plainly in the clip's error.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from .jobs import clip_fail
from .models import Clip, Export

logger = logging.getLogger(__name__)


def clip_process(*, clip: Clip) -> None:
    """Take a processing clip to completed or failed."""
    clip_fail(
        clip,
        message="Clip generation failed: this build has no media pipeline yet "
        "(ingest, transcription and rendering are not installed)",
        details={"stage": "ingest"},
    )


def export_process(*, export: Export) -> None:
    """Produce an export's file, or record why it could not be made."""
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.FAILED,
        error="this build has no export renderer yet",
        updated_at=timezone.now(),
    )
