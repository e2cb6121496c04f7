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


def clip_shot_faces(*, clip) -> list[list[dict]]:
    """The faces found in each shot of the clip's stored crop path, from the faces
    analysis of its range (never computed here): per shot, [{id, x, y, w, h, partial}]
    with each face track's median box in source pixels. Empty lists where the clip has
    no crop path or no analysis (reframing off)."""
    import statistics

    from .models import Analysis
    from .pipeline.faces import analysis_key

    path = (clip.crop_path or {}).get("path")
    if not path or clip.source_id is None or clip.start_time is None:
        return []
    result = (
        Analysis.objects.filter(
            source_id=clip.source_id,
            kind=Analysis.Kind.FACES,
            key=analysis_key(clip.start_time, clip.end_time),
        )
        .values_list("result", flat=True)
        .first()
    )
    tracks = (result or {}).get("tracks", [])
    fields = (result or {}).get("pointFields", [])
    out = []
    for shot in path["shots"]:
        begin, end = clip.start_time + shot["start"], clip.start_time + shot["end"]
        found = []
        for track in tracks:
            points = [dict(zip(fields, row, strict=False)) for row in track["points"]]
            inside = [p for p in points if begin <= p["t"] < end]
            if not inside:
                continue
            found.append(
                {
                    "id": track["id"],
                    **{k: int(statistics.median(p[k] for p in inside)) for k in "xywh"},
                    "partial": sum(bool(p.get("partial")) for p in inside) > len(inside) / 2,
                }
            )
        out.append(found)
    return out


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


def team_work_in_flight(*, team_id: str) -> int:
    """How much of a team's work is queued or running: its own clips (a job's clips count
    as their job), its jobs, exports and full renders."""
    from .models import Clip, Export, Job

    return (
        Clip.objects.filter(
            team_id=team_id,
            job__isnull=True,
            status__in=(Clip.Status.PENDING, Clip.Status.PROCESSING),
        ).count()
        + Job.objects.filter(
            team_id=team_id, status__in=(Job.Status.QUEUED, Job.Status.PROCESSING)
        ).count()
        + Export.objects.filter(
            clip__team_id=team_id,
            status__in=(Export.Status.QUEUED, Export.Status.PROCESSING),
        ).count()
        + Clip.objects.filter(
            team_id=team_id, full_render_status__in=("queued", "processing")
        ).count()
    )
