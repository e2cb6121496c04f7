"""Which part of an analysed source a clip is: its range, score, title and metadata.

`clip_select` fills a /v1/ clip (the best moment of its source, or the range the user
gave, scored); `select_for` runs the selection stage (`clips.pipeline.select`) for a
clip or a job; `clip_bounds` is how long a clip may be for its platform and request.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from .analysis import SourceAnalysis
from .models import Clip
from .pipeline import StageError
from .platforms import MIN_CLIP_SECONDS, default_clip_seconds

logger = logging.getLogger(__name__)


def clip_bounds(
    *,
    platform: str = "",
    aspect_ratio: str = "9:16",
    max_duration: float | None = None,
    target_duration: float | None = None,
) -> tuple[float, float]:
    """(min, max) clip length in seconds for a request.

    `target_duration` (the Choppity API) asks for about that length; `max_duration`
    (/v1/'s maxDuration) caps it; otherwise the platform's default clip length does (a
    vertical YouTube clip is a Short: under a minute; see clips.platforms).
    """
    limit = default_clip_seconds(platform, aspect_ratio)
    if target_duration:
        hi = target_duration * 1.2
        lo = target_duration * 0.7
        if max_duration:
            hi = min(hi, max_duration)
        return (min(lo, hi), hi)
    hi = max_duration or limit
    return (min(MIN_CLIP_SECONDS, hi), hi)


def clip_range_check(clip: Clip, duration: float | None) -> None:
    if clip.start_time is None or duration is None:
        return
    if clip.start_time >= duration:
        raise StageError(
            f"startTime {clip.start_time:g} s is past the end of the source ({duration:.2f} s)",
            {"startTime": clip.start_time, "sourceDuration": duration},
            code="invalid_request",
            field="startTime",
        )
    if clip.end_time > duration + 0.05:
        raise StageError(
            f"endTime {clip.end_time:g} s is past the end of the source ({duration:.2f} s)",
            {"endTime": clip.end_time, "sourceDuration": duration},
            code="invalid_request",
            field="endTime",
        )


def select_for(
    analysis: SourceAnalysis,
    *,
    count: int,
    criteria: str,
    min_duration: float,
    max_duration: float,
    start: float | None = None,
    end: float | None = None,
    hook_detection: bool = True,
):
    """The best clips of an analysed source (see clips.pipeline.select)."""
    from .pipeline.llm import llm_from_env
    from .pipeline.select import select_clips

    return select_clips(
        analysis.transcript,
        shots=analysis.scenes,
        audio=analysis.audio or None,
        criteria=criteria,
        count=count,
        min_duration=min_duration,
        max_duration=max_duration,
        start=start,
        end=end,
        hook_detection=hook_detection,
        llm=llm_from_env(),
    )


def clip_words_in(transcript: dict, start: float, end: float) -> list[dict]:
    """The transcript's words inside [start, end], times still on the source's clock."""
    words = []
    for segment in transcript.get("segments", []):
        for w in segment.get("words", []):
            if w["start"] >= start - 0.05 and w["end"] <= end + 0.05:
                words.append(
                    {
                        "word": w["word"],
                        "start": w["start"],
                        "end": w["end"],
                        "probability": w.get("probability"),
                    }
                )
    return words


def selection_metadata(selected, *, shift: float = 0.0, hook_detection: bool = True) -> dict:
    """/v1/'s metadata object for a selected clip; `shift` moves times to the clip's start."""
    data = {
        "hooks": [{**h, "time": round(max(h["time"] + shift, 0.0), 2)} for h in selected.hooks]
        if hook_detection
        else [],
        "highlights": [round(max(t + shift, 0.0), 2) for t in selected.highlights],
        "sentiment": selected.sentiment,
        "topics": selected.topics,
        "scoreBreakdown": selected.score_breakdown,
        "reason": selected.reason,
    }
    return data


def no_speech_range(
    analysis: SourceAnalysis, *, start: float | None, end: float | None, max_duration: float
) -> tuple[float, float]:
    """A source without speech still gets a clip: whole shots from the start of the range."""
    duration = float(analysis.probe.get("duration") or 0.0)
    lo = start if start is not None else 0.0
    hi = end if end is not None else min(duration, lo + max_duration)
    cuts = [s["end"] for s in analysis.scenes if lo < s["end"] <= hi]
    if end is None and cuts and cuts[-1] - lo >= min(MIN_CLIP_SECONDS, hi - lo):
        hi = cuts[-1]
    return round(lo, 3), round(hi, 3)


def clip_select(clip: Clip, analysis: SourceAnalysis) -> None:
    """Fill a /v1/ clip's range (the best segment unless startTime was given), score, name
    and metadata. A clip that already has its metadata (a rerun, a job's clip) is kept."""
    if clip.metadata is not None:
        return
    lo, hi = clip_bounds(
        platform=clip.platform, aspect_ratio=clip.aspect_ratio, max_duration=clip.max_duration
    )
    exact = clip.start_time is not None
    if exact:  # the user's range is the clip; selection scores it and finds its moments
        span = clip.end_time - clip.start_time
        lo, hi = max(0.0, span * 0.6), span
    found = select_for(
        analysis,
        count=1,
        criteria=clip.criteria,
        min_duration=lo,
        max_duration=hi,
        start=clip.start_time,
        end=clip.end_time,
        hook_detection=clip.hook_detection,
    )
    update: dict[str, Any] = {}
    if found:
        best = found[0]
        if exact:
            start, end = clip.start_time, clip.end_time
            shift = best.start - start
        else:
            start, end, shift = best.start, best.end, 0.0
        update.update(
            start_time=start,
            end_time=end,
            duration=round(end - start, 3),
            score=best.score,
            metadata=selection_metadata(best, shift=shift, hook_detection=clip.hook_detection),
        )
        if not clip.name:
            update["name"] = best.title
    else:
        start, end = (
            (clip.start_time, clip.end_time)
            if exact
            else no_speech_range(analysis, start=None, end=None, max_duration=hi)
        )
        update.update(
            start_time=start,
            end_time=end,
            duration=round(end - start, 3),
            score=None,
            metadata={
                "hooks": [],
                "highlights": [],
                "sentiment": "neutral",
                "topics": [],
                "scoreBreakdown": {},
                "reason": "No speech in this range: cut on shots",
            },
        )
        if not clip.name:
            update["name"] = f"Clip at {int(start // 60)}:{int(start % 60):02d}"
    update["words"] = clip_words_in(analysis.transcript, update["start_time"], update["end_time"])
    Clip.objects.filter(pk=clip.pk).update(**update, updated_at=timezone.now())
    for key, value in update.items():
        setattr(clip, key, value)
