"""The selection stage: `select_clips`, the best non-overlapping clips of a source.

All candidate windows are scored (`scoring`); greedy non-maximum suppression keeps the
video's distinct windows, best first; near-duplicates in meaning and retellings go to the
back of the queue at half their score; the optional language model reranks the finalists;
each chosen window is cut (`candidates`), given its hooks, highlights, sentiment and
topics, and titled with a reason (`titles`). `warm_up` loads the models ahead of time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .candidates import Embedder, _cut_points, default_embedder
from .scoring import (
    DUPLICATE_SIMILARITY,
    HOOK_MIN_CONFIDENCE,
    LLM_WEIGHT,
    _Context,
    _llm_rerank,
    _loudness_series,
    _retells,
    _score_windows,
    _spread_scores,
    _tokens,
    _triples,
    _vader,
    _window_text,
    _yake_phrases,
)
from .titles import _format_time, _llm_titles, _reason, _strongest_sentence, clean_title

if TYPE_CHECKING:
    from clips.pipeline.llm import LanguageModel


@dataclass
class SelectedClip:
    """One selected clip. Times in seconds of the source; hooks and highlights are relative
    to the clip's start."""

    start: float
    end: float
    duration: float
    score: float
    title: str
    score_breakdown: dict[str, float]
    reason: str
    hooks: list[dict[str, Any]] = field(default_factory=list)
    highlights: list[float] = field(default_factory=list)
    sentiment: str = "neutral"
    topics: list[str] = field(default_factory=list)
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def warm_up() -> None:
    """Load now what selection loads on first use (torch and the MiniLM model, VADER,
    YAKE: about 5 s cold), so that a caller can do it beside other work, such as the
    transcription that selection waits for. Side effects: those imports and loads."""
    embedder = default_embedder()
    with embedder._lock:
        embedder._load()
    _vader()
    import yake  # noqa: F401 - imported for its import time only


def select_clips(
    transcript: dict,
    *,
    shots=(),
    audio: Any = None,
    criteria: str = "",
    count: int = 3,
    min_duration: float = 15,
    max_duration: float = 60,
    start: float | None = None,
    end: float | None = None,
    hook_detection: bool = True,
    embedder: Embedder | None = None,
    llm: LanguageModel | None = None,
) -> list[SelectedClip]:
    """The `count` best non-overlapping clips of a source, best first.

    Inputs: the transcript (`segments` with `words`, faster-whisper's shape), shots
    (`[{"start", "end"}]`), audio features (`window`, `loudness` in dBFS per window,
    `silences` as `[start, end]`; optional), a free-text `criteria` (its match then
    dominates the score), the clip length bounds, an optional `[start, end]` range to
    choose within, whether to compute hooks (when off they are neither reported nor
    scored), a sentence `embedder` (defaults to a cached MiniLM) and an optional `llm`
    (see clips.pipeline.llm) that titles the clips and reranks the finalists.
    Output: `SelectedClip`s whose edges lie on sentence starts/ends (moved at most 0.5 s
    into a silence or onto a shot cut), with hook and highlight times relative to the
    clip's start. An empty list when there is no speech to choose from. Side effects: loads the embedding model on first use; calls the LLM if given.
    Raises StageError for impossible bounds.
    """
    import numpy as np

    if count <= 0:
        return []
    scored = _score_windows(
        transcript, audio=audio, criteria=criteria, min_duration=min_duration,
        max_duration=max_duration, start=start, end=end, hook_detection=hook_detection,
        embedder=embedder,
    )  # fmt: skip
    if scored is None:
        return []
    ctx, ci, cj, raw, normalised, weights, composite = (
        scored.ctx, scored.ci, scored.cj, scored.raw, scored.normalised, scored.weights,
        scored.composite,
    )  # fmt: skip
    n = len(ctx.sentences)
    range_lo, range_hi = scored.bounds

    # -- non-maximum suppression over all candidates: the video's distinct clips -----------
    order = np.argsort(-composite, kind="mergesort")
    taken = np.zeros(n, dtype=bool)
    distinct: list[int] = []
    for c in order:
        i, j = ci[c], cj[c]
        if not taken[i : j + 1].any():
            taken[i : j + 1] = True
            distinct.append(int(c))
    final = _spread_scores(composite[distinct])

    # near-duplicates in meaning (a repeated story) and retellings go to the back of the
    # queue
    picked: list[int] = []
    deferred: list[int] = []
    centroids = {}
    triples = {}
    for pos, c in enumerate(distinct):
        centroid = ctx.emb[ci[c] : cj[c] + 1].sum(axis=0)
        centroids[pos] = centroid / max(np.linalg.norm(centroid), 1e-9)
        triples[pos] = _triples(_window_text(ctx, ci[c], cj[c]))
        if any(
            float(centroids[pos] @ centroids[p]) >= DUPLICATE_SIMILARITY
            or _retells(triples[pos], triples[p])
            for p in picked
        ):
            deferred.append(pos)
        else:
            picked.append(pos)
    queue = picked + deferred
    for pos in deferred:  # worth less: the same story is already on offer
        final[pos] *= 0.5

    finalists = queue[: max(count, min(len(queue), 2 * count, 10))] if llm else queue[:count]
    scores = {pos: float(final[pos]) for pos in finalists}
    llm_rank: dict[int, float] = {}
    if llm is not None and len(finalists) > 1:
        llm_rank = _llm_rerank(
            llm, [_window_text(ctx, ci[distinct[p]], cj[distinct[p]]) for p in finalists], criteria
        )
        if llm_rank:
            llm_rank = {finalists[k]: v for k, v in llm_rank.items()}
            for pos in finalists:
                scores[pos] = (1 - LLM_WEIGHT) * scores[pos] + LLM_WEIGHT * llm_rank.get(pos, 0.0)
            finalists.sort(key=lambda p: -scores[p])
    chosen = sorted(finalists[:count], key=lambda p: -scores[p])

    clips = []
    for pos in chosen:
        c = distinct[pos]
        breakdown = {name: round(float(normalised[name][c]), 3) for name in weights}
        if pos in llm_rank:
            breakdown["llm_rank"] = round(llm_rank[pos], 3)
        clips.append(
            _build_clip(
                ctx, int(ci[c]), int(cj[c]), scores[pos], breakdown, raw, c, weights,
                criteria, shots, audio, hook_detection, (range_lo, range_hi),
            )
        )  # fmt: skip
    if llm is not None and clips:
        _llm_titles(llm, clips, criteria)
    return clips


def _build_clip(
    ctx: _Context, i, j, score, breakdown, raw, c, weights, criteria, shots, audio,
    hook_detection, bounds,
) -> SelectedClip:  # fmt: skip
    import numpy as np

    first, last = ctx.sentences[i], ctx.sentences[j]
    cut_start, cut_end = _cut_points(first, last, shots, audio, bounds)
    window = ctx.sentences[i : j + 1]
    text = " ".join(s.text for s in window)

    hooks = []
    if hook_detection:
        for k in range(i, j + 1):
            if ctx.hook[k] >= HOOK_MIN_CONFIDENCE:
                s = ctx.sentences[k]
                hooks.append(
                    {
                        "time": round(max(s.start - cut_start, 0.0), 2),
                        "text": s.text,
                        "confidence": round(float(ctx.hook[k]), 3),
                    }
                )
        hooks = sorted(hooks, key=lambda h: -h["confidence"])[:3]
        hooks.sort(key=lambda h: h["time"])

    # highlights: the sentences that stand out in feeling, key terms and loudness
    series, win = _loudness_series(audio)
    salience = []
    for k in range(i, j + 1):
        s = ctx.sentences[k]
        value = 0.5 * abs(float(ctx.vader[k])) + 0.5 * min(
            1.0, ctx.keyword_hits[k] / max(s.word_count, 1) * 3
        )
        if series is not None:
            a = min(int(s.start / win), len(series) - 1)
            b = max(a + 1, min(int(math.ceil(s.end / win)), len(series)))
            value += 0.3 * (float(series[a:b].mean()) + 60.0) / 60.0
        salience.append((value, k))
    top = sorted(salience, reverse=True)[: min(3, max(1, len(salience) // 3))]
    highlights = sorted(round(max(ctx.sentences[k].start - cut_start, 0.0), 2) for _, k in top)

    weights_words = np.array([s.word_count for s in window], dtype=float)
    mean_compound = float(np.average(ctx.vader[i : j + 1], weights=weights_words))
    sentiment = (
        "positive" if mean_compound >= 0.2 else "negative" if mean_compound <= -0.2 else "neutral"
    )

    topics = []
    seen: set[str] = set()
    for phrase in _yake_phrases(text, top=8):
        words = set(_tokens(phrase))
        if words and not words <= seen:
            topics.append(phrase.lower())
            seen |= words
        if len(topics) >= 4:
            break

    title = clean_title(_strongest_sentence(ctx, i, j).text) or f"Clip at {_format_time(cut_start)}"
    criteria_raw = float(raw["criteria"][c]) if "criteria" in raw else None
    opening_kinds = ctx.hook_kinds[i] if hook_detection else []
    return SelectedClip(
        start=round(cut_start, 3),
        end=round(cut_end, 3),
        duration=round(cut_end - cut_start, 3),
        score=round(float(min(max(score, 0.0), 1.0)), 3),
        title=title,
        score_breakdown=breakdown,
        reason=_reason(breakdown, weights, criteria, criteria_raw, opening_kinds),
        hooks=hooks,
        highlights=highlights,
        sentiment=sentiment,
        topics=topics,
        text=text,
    )
