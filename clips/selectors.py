"""Reads for clips: the orders a list of them may take (the /v1/ viewsets scope the rows
to the caller's team)."""

from __future__ import annotations

from clypai.api.pagination import SortField

CLIP_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
    # Pending clips have no duration yet: they sort as -1, before every real one.
    "duration": SortField("duration", "duration", "float", null_as=-1.0),
}


def clip_transcript_context(clip, *, margin: float = 30.0) -> list[dict]:
    """The source's transcribed words from `margin` seconds before the clip to `margin`
    after it, each with `index` (its place among the clip's own words, or None outside
    the clip) and the clip's word (corrected) where it has one."""
    from .models import Analysis

    transcript = (
        Analysis.objects.filter(source=clip.source_id, kind=Analysis.Kind.TRANSCRIPT)
        .order_by("-created_at")
        .values_list("result", flat=True)
        .first()
    ) or {}
    start, end = clip.start_time or 0.0, clip.end_time or 0.0
    own = clip.words or []
    out = []
    for segment in transcript.get("segments", []):
        for word in segment.get("words", []):
            if word["end"] < start - margin or word["start"] > end + margin:
                continue
            out.append(
                {"word": word["word"], "start": word["start"], "end": word["end"], "index": None}
            )
    # The clip's own words (maybe corrected) stand in for the transcript's inside it.
    out = [w for w in out if not (w["start"] >= start - 0.05 and w["end"] <= end + 0.05)]
    out += [
        {"word": w["word"], "start": w["start"], "end": w["end"], "index": i}
        for i, w in enumerate(own)
    ]
    out.sort(key=lambda w: (w["start"], w["index"] is None))
    return out
