"""Scoring the candidate windows of a transcript: each feature for every window at once,
normalised within the video and weighted into a composite.

- Lexical cues: `hook_strength` (a question, a number, direct address, a bold claim, a
  curiosity gap) and `opening_penalty` (a first line that leans on what came before).
- Features (`_raw_features`, over all windows at once by prefix sums): the criteria
  match, the hook, self-containedness, coherence, keyword density (YAKE), speech rate,
  sentiment intensity (VADER), energy and its variation (the audio's loudness).
- `WEIGHTS` and `_weights`: the composite; `_spread_scores`: final scores over 0-1 by rank.
- Retelling: `_retells` finds a window that says half of another's word triples again
  (a cold open, a recap, a looped stretch); `DUPLICATE_SIMILARITY` the same in meaning.
- `score_windows`: every candidate with its features, for tests and tuning;
  `_llm_rerank`: the optional language model's ranking of the finalists.

Plain functions; numpy, VADER and YAKE are imported inside them.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from clips.pipeline.base import StageError

from .candidates import (
    Embedder,
    Sentence,
    _candidate_pairs,
    _field,
    _unit_rows,
    default_embedder,
    split_sentences,
    strong_boundaries,
    topic_depths,
    transcript_words,
)

log = logging.getLogger(__name__)

# Feature weights of the composite score; they sum to 1. With a criteria the match takes
# CRITERIA_WEIGHT and the rest share what is left in the same proportions.
WEIGHTS: dict[str, float] = {
    "hook": 0.20,
    "self_contained": 0.18,
    "coherence": 0.14,
    "keyword_density": 0.12,
    "speech_rate": 0.10,
    "sentiment": 0.10,
    "energy": 0.09,
    "energy_variation": 0.07,
}
CRITERIA_WEIGHT = 0.55
LLM_WEIGHT = 0.4  # share of a finalist's score the optional LLM's ranking decides

HOOK_WINDOW_S = 5.0  # "the opening seconds"
HOOK_MIN_CONFIDENCE = 0.3
DUPLICATE_SIMILARITY = 0.95  # clips whose meaning is this close are near-duplicates
# A clip retells another when half the word triples of one are said again in the other:
# a cold open, a recap, a looped or re-uploaded stretch, cut elsewhere and misheard
# elsewhere. (Meaning alone missed those: on bench/pipeline.py's looped source the same
# story, cut twice, measured 0.93, under DUPLICATE_SIMILARITY.)
RETOLD_SHARE = 0.5

# -------------------------------------------------------------------------------------------
# Lexical cues (hooks, self-containedness, titles)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[?!%$]")
_SYMBOLS = {"?", "!", "%", "$"}
_QUESTION_OPENERS = {
    "why", "how", "what", "who", "when", "where", "which", "did", "do", "does", "is", "are",
    "can", "could", "would", "should", "have", "has", "will", "isn't", "aren't", "don't",
    "doesn't",
}  # fmt: skip
_NUMBER_WORDS = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "fifteen", "twenty", "thirty", "forty", "fifty", "hundred", "thousand",
    "million", "billion", "trillion", "percent", "half", "double", "triple", "first",
}  # fmt: skip
_BOLD_WORDS = {
    "best", "worst", "biggest", "most", "never", "always", "everyone", "everybody", "nobody",
    "nothing", "only", "truth", "secret", "mistake", "mistakes", "wrong", "myth", "stop",
    "must", "huge", "insane", "incredible", "crazy", "shocking", "actually", "guaranteed",
    "every", "key", "fixes", "beat", "beats", "easily", "ultimate", "massive", "really",
}  # fmt: skip
_NOT_SUPERLATIVE = {
    "interest", "honest", "modest", "request", "suggest", "harvest", "contest", "protest",
    "forest", "invest", "digest", "manifest", "latest", "test", "rest", "west",
    "guest", "chest", "quest", "nest", "pest", "vest", "arrest", "earnest",
}  # fmt: skip
_CURIOSITY = (
    "here's why", "here is why", "here's the", "here is the", "here's what", "here is what",
    "the reason", "the secret", "the truth", "what happened", "turns out", "nobody tells",
    "no one tells", "won't believe", "the one thing", "this is why", "what most people",
    "the problem is", "the key", "imagine", "let me tell you", "little known", "the trick",
    "what nobody", "the real reason", "comes down to", "the difference between", "why do",
    "why does", "what if", "did you know", "have you ever", "most people",
)  # fmt: skip
_LEANING_OPENERS = (
    ("and so", 0.6), ("and then", 0.55), ("that's why", 0.6), ("that is why", 0.6),
    ("which is why", 0.65), ("which means", 0.6), ("so that's", 0.55), ("as i said", 0.6),
    ("like i said", 0.6), ("as i mentioned", 0.6), ("going back to", 0.5),
    ("on the other hand", 0.5), ("in that case", 0.5), ("that means", 0.5),
    ("this means", 0.45), ("because", 0.5), ("which", 0.55), ("but", 0.45), ("and", 0.45),
    ("or", 0.45), ("so", 0.3), ("also", 0.35), ("then", 0.35), ("plus", 0.35),
    ("however", 0.4), ("therefore", 0.45), ("anyway", 0.35), ("besides", 0.35),
    ("otherwise", 0.45), ("still", 0.25), ("yet", 0.35), ("instead", 0.35),
)  # fmt: skip
_DANGLING = {"it", "it's", "its", "they", "they're", "them", "he", "she", "he's", "she's",
             "his", "her", "their", "those", "these"}  # fmt: skip
_DEMONSTRATIVE = {"this", "that", "that's", "this's"}
_VERBISH = {
    "is", "was", "will", "would", "can", "could", "means", "meant", "one", "happens",
    "happened", "makes", "made", "did", "does", "has", "had", "might", "should", "just",
    "really", "also", "gets", "got", "goes", "went", "kind", "sort", "part", "stuff", "thing",
    "way", "point", "idea", "again", "too", "isn't", "wasn't", "must",
}  # fmt: skip
_FILLER_OPENERS = {"um", "uh", "erm", "er", "ah", "hmm", "mm", "yeah", "okay", "ok", "oh",
                   "well", "right", "like", "now", "look", "listen"}  # fmt: skip


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


def _strip_fillers(tokens: list[str]) -> list[str]:
    k = 0
    while k < len(tokens) and tokens[k] in _FILLER_OPENERS:
        k += 1
    return tokens[k:]


def hook_strength(text: str) -> tuple[float, list[str]]:
    """How strongly a sentence grabs attention (0–1) and why: a question, a number, direct
    address, a bold claim, a curiosity gap."""
    tokens = _tokens(text)
    if not tokens:
        return 0.0, []
    words = _strip_fillers([t for t in tokens if t not in _SYMBOLS])
    low = " ".join(words)
    kinds: list[str] = []
    score = 0.0
    if text.rstrip().rstrip("\"'”’)").endswith("?") or (
        words and words[0] in _QUESTION_OPENERS and len(words) > 3
    ):
        score += 0.35
        kinds.append("question")
    if any(ch.isdigit() for ch in low) or any(t in _NUMBER_WORDS for t in words) or "%" in tokens:
        score += 0.15
        kinds.append("number")
    if any(t in ("you", "your", "you're", "you've", "you'll", "yourself") for t in words[:14]):
        score += 0.15
        kinds.append("direct address")
    bold = [
        t
        for t in words
        if t in _BOLD_WORDS or (len(t) >= 6 and t.endswith("est") and t not in _NOT_SUPERLATIVE)
    ]
    if bold:
        score += min(0.25, 0.15 + 0.05 * (len(bold) - 1))
        kinds.append("bold claim")
    padded = f" {low} "
    if any(f" {phrase} " in padded for phrase in _CURIOSITY):
        score += 0.3
        kinds.append("curiosity gap")
    if "!" in tokens:
        score += 0.1
        kinds.append("exclamation")
    return min(score, 1.0), kinds


def opening_penalty(text: str) -> float:
    """How much a sentence leans on what came before it, as a clip's first line (0–1)."""
    words = _strip_fillers([t for t in _tokens(text) if t not in _SYMBOLS])
    if not words:
        return 0.5
    padded = " ".join(words[:6]) + " "
    for phrase, weight in _LEANING_OPENERS:
        if padded.startswith(phrase + " "):
            # "and it ..." leans twice: look at what follows the connective
            after = words[len(phrase.split()) :]
            if after and (after[0] in _DANGLING or after[0] in _DEMONSTRATIVE):
                return min(1.0, weight + 0.2)
            return weight
    rest = words[1:]
    first = words[0]
    if first in _DANGLING:
        return 0.5
    if first in _DEMONSTRATIVE:
        follower = rest[0] if rest else ""
        return 0.5 if (first == "that's" or follower in _VERBISH or not follower) else 0.15
    if padded.startswith(("the other ", "the same ", "the latter ", "the former ", "another ")):
        return 0.3
    return 0.0


# -------------------------------------------------------------------------------------------
# Feature helpers


def _rank_normalise(values):
    """Average-rank percentile in [0, 1]; all-equal values give 0.5."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return values
    if n == 1 or np.ptp(values) < 1e-12:
        return np.full(n, 0.5)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(n)
    sorted_vals = values[order]
    # average ranks over ties
    _, first_idx, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first_idx + (counts - 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return ranks / (n - 1)


def _minmax(values):
    import numpy as np

    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    span = np.ptp(values)
    if span < 1e-12:
        return np.full(len(values), 0.5)
    return (values - values.min()) / span


def _window_max(per_sentence, starts, ends):
    """max(per_sentence[i..j]) for every (i, j) pair, by growing windows one step at a time."""
    import numpy as np

    lengths = ends - starts
    out = per_sentence[starts].astype(float)
    running = per_sentence.astype(float).copy()
    n = len(per_sentence)
    for d in range(1, int(lengths.max(initial=0)) + 1):
        shifted = np.full(n, -np.inf)
        shifted[: n - d] = per_sentence[d:]
        running = np.maximum(running, shifted)
        mask = lengths == d
        out[mask] = running[starts[mask]]
    return out


def _loudness_series(audio):
    import numpy as np

    window = float(_field(audio, "window") or 0.0)
    loud = _field(audio, "loudness")
    if window <= 0 or loud is None or len(loud) < 2:
        return None, 0.0
    series = np.array([-60.0 if v is None else v for v in loud], dtype=float)
    series = np.nan_to_num(series, nan=-60.0, neginf=-60.0, posinf=0.0)
    return np.clip(series, -60.0, 0.0), window


# -------------------------------------------------------------------------------------------
# Scoring every window


@dataclass
class _Context:
    sentences: list[Sentence]
    emb: Any
    criteria_sim: Any
    hook: Any
    hook_kinds: list[list[str]]
    vader: Any
    keyword_hits: Any


@dataclass
class _Scored:
    ctx: _Context
    ci: Any  # first sentence of each candidate window
    cj: Any  # last sentence of it (inclusive)
    raw: dict[str, Any]
    normalised: dict[str, Any]
    weights: dict[str, float]
    composite: Any
    bounds: tuple[float, float]


@dataclass
class WindowScore:
    """One candidate window and its features, before suppression (for tests and tuning)."""

    start: float
    end: float
    first: int  # sentence indices, inclusive
    last: int
    text: str
    raw: dict[str, float]
    normalised: dict[str, float]
    composite: float


def score_windows(
    transcript: dict,
    *,
    audio: Any = None,
    criteria: str = "",
    min_duration: float = 15,
    max_duration: float = 60,
    start: float | None = None,
    end: float | None = None,
    hook_detection: bool = True,
    embedder: Embedder | None = None,
) -> list[WindowScore]:
    """Every candidate window that `select_clips` weighs, with raw and normalised features
    and the composite, in time order. No side effects beyond loading the embedder."""
    scored = _score_windows(
        transcript, audio=audio, criteria=criteria, min_duration=min_duration,
        max_duration=max_duration, start=start, end=end, hook_detection=hook_detection,
        embedder=embedder,
    )  # fmt: skip
    if scored is None:
        return []
    out = []
    for c in range(len(scored.ci)):
        i, j = int(scored.ci[c]), int(scored.cj[c])
        out.append(
            WindowScore(
                start=scored.ctx.sentences[i].start,
                end=scored.ctx.sentences[j].end,
                first=i,
                last=j,
                text=_window_text(scored.ctx, i, j),
                raw={k: float(v[c]) for k, v in scored.raw.items()},
                normalised={k: float(v[c]) for k, v in scored.normalised.items()},
                composite=float(scored.composite[c]),
            )
        )
    return out


def _score_windows(
    transcript, *, audio, criteria, min_duration, max_duration, start, end, hook_detection,
    embedder,
) -> _Scored | None:  # fmt: skip
    import numpy as np

    if min_duration < 0 or max_duration <= 0 or min_duration > max_duration:
        raise StageError(
            "Clip length bounds are invalid.",
            {"min_duration": min_duration, "max_duration": max_duration},
        )
    if start is not None and end is not None and end <= start:
        raise StageError("The range to choose a clip from is empty.", {"start": start, "end": end})

    words = transcript_words(transcript or {})
    sentences = split_sentences(words, max_sentence_s=max(5.0, min(30.0, max_duration / 2)))
    range_lo = 0.0 if start is None else float(start)
    range_hi = math.inf if end is None else float(end)
    if start is not None or end is not None:
        inside = [s for s in sentences if s.start >= range_lo - 0.05 and s.end <= range_hi + 0.05]
        if not inside:
            # the range sits inside one long sentence: fall back to its own words
            ranged = [w for w in words if w[1] >= range_lo - 0.05 and w[2] <= range_hi + 0.05]
            inside = split_sentences(ranged, max_sentence_s=max(5.0, min(30.0, max_duration / 2)))
        sentences = inside
    if not sentences:
        return None
    for k, s in enumerate(sentences):
        s.index = k
    n = len(sentences)

    ctx = _analyse_sentences(sentences, criteria, embedder or default_embedder(), hook_detection)

    # -- candidates: windows [i, j] of whole sentences, inside one topic -----------------------
    depth = topic_depths(ctx.emb)
    strong = strong_boundaries(depth, sentences)
    s_start = np.array([s.start for s in sentences])
    s_end = np.array([s.end for s in sentences])
    if range_hi < math.inf or start is not None:
        span = min(range_hi, s_end[-1]) - max(range_lo, s_start[0])
        min_duration = min(min_duration, max(span, 0.0))
    pairs = _candidate_pairs(s_start, s_end, strong, min_duration, max_duration)
    if len(pairs[0]) == 0:
        pairs = _candidate_pairs(s_start, s_end, np.zeros_like(strong), min_duration, max_duration)
    if len(pairs[0]) == 0:
        pairs = _candidate_pairs(s_start, s_end, np.zeros_like(strong), 0.0, max_duration)
    if len(pairs[0]) == 0:  # every sentence alone is longer than max_duration
        pairs = (np.arange(n), np.arange(n))
    ci, cj = pairs

    raw = _raw_features(ctx, ci, cj, s_start, s_end, audio, hook_detection)
    normalised = {
        name: (_minmax(values) if name == "criteria" else _rank_normalise(values))
        for name, values in raw.items()
    }
    weights = _weights(normalised.keys(), bool(criteria.strip()))
    composite = sum(weights[name] * normalised[name] for name in weights)

    return _Scored(ctx, ci, cj, raw, normalised, weights, composite, (range_lo, range_hi))


def _analyse_sentences(sentences, criteria: str, embedder, hook_detection: bool) -> _Context:
    import numpy as np

    texts = [s.text for s in sentences]
    criteria = criteria.strip()
    vectors = embedder.encode(texts + [criteria] if criteria else texts)
    vectors = _unit_rows(vectors)
    emb = vectors[: len(texts)]
    criteria_sim = emb @ vectors[-1] if criteria else None

    hooks = [hook_strength(t) if hook_detection else (0.0, []) for t in texts]
    analyser = _vader()
    vader = np.array([analyser.polarity_scores(t)["compound"] for t in texts])

    # keywords of each stretch of the talk (YAKE), counted per sentence
    keyword_words = _keyword_sets(sentences)
    hits = np.array(
        [sum(1 for t in _tokens(s.text) if t in keyword_words[s.index]) for s in sentences],
        dtype=float,
    )
    return _Context(
        sentences=sentences,
        emb=emb,
        criteria_sim=criteria_sim,
        hook=np.array([h for h, _ in hooks]),
        hook_kinds=[k for _, k in hooks],
        vader=vader,
        keyword_hits=hits,
    )


_vader_analyser = None


def _vader():
    global _vader_analyser
    if _vader_analyser is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _vader_analyser = SentimentIntensityAnalyzer()
    return _vader_analyser


def _yake_phrases(text: str, top: int) -> list[str]:
    import yake

    if len(text.split()) < 3:
        return []
    extractor = yake.KeywordExtractor(lan="en", n=2, top=top, dedupLim=0.8)
    return [phrase for phrase, _score in extractor.extract_keywords(text)]


_STOPWORDS = {
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "is",
    "are", "was", "were", "be", "it", "this", "that", "you", "your", "i", "we", "they",
}  # fmt: skip


def _keyword_sets(sentences: list[Sentence], chunk_s: float = 90.0) -> list[set[str]]:
    """Key words of the stretch (~90 s) each sentence belongs to, by YAKE."""
    out: list[set[str]] = []
    chunk: list[Sentence] = []

    def flush():
        phrases = _yake_phrases(" ".join(s.text for s in chunk), top=12)
        keys = {t for p in phrases for t in _tokens(p) if t not in _STOPWORDS and len(t) > 2}
        out.extend(keys for _ in chunk)

    for s in sentences:
        if chunk and s.end - chunk[0].start > chunk_s:
            flush()
            chunk = []
        chunk.append(s)
    if chunk:
        flush()
    return out


def _raw_features(ctx: _Context, ci, cj, s_start, s_end, audio, hook_detection: bool):
    import numpy as np

    sentences = ctx.sentences
    n = len(sentences)
    count = (cj - ci + 1).astype(float)

    def prefix(values):
        return np.concatenate([[0.0], np.cumsum(values, dtype=float)])

    def window_sum(p):
        return p[cj + 1] - p[ci]

    raw: dict[str, Any] = {}
    if ctx.criteria_sim is not None:
        mean_sim = window_sum(prefix(ctx.criteria_sim)) / count
        raw["criteria"] = 0.4 * _window_max(ctx.criteria_sim, ci, cj) + 0.6 * mean_sim

    if hook_detection:
        # the opening sentence, or a strong one starting within the first seconds
        opening = ctx.hook.copy()
        for d in (1, 2):
            later = np.zeros(n)
            later[: n - d] = ctx.hook[d:]
            soon = np.zeros(n, dtype=bool)
            soon[: n - d] = s_start[d:] - s_start[: n - d] <= HOOK_WINDOW_S
            opening = np.maximum(opening, np.where(soon, (0.8**d) * later, 0.0))
        raw["hook"] = opening[ci]

    open_pen = np.array([opening_penalty(s.text) for s in sentences])
    natural_start = np.array([min(s.pause_before, 2.0) >= 0.7 for s in sentences], dtype=float)
    incomplete_end = np.array([0.0 if s.complete else 0.3 for s in sentences])
    question_end = np.array([0.2 if s.text.rstrip().endswith("?") else 0.0 for s in sentences])
    continues = np.zeros(n)  # the next sentence leans on this one: the thought goes on
    for k in range(n - 1):
        if open_pen[k + 1] >= 0.45:
            continues[k] = 0.2 if sentences[k].pause_after < 1.5 else 0.1
    natural_end = np.array([min(s.pause_after, 2.0) >= 0.7 for s in sentences], dtype=float)
    raw["self_contained"] = np.clip(
        1.0
        - open_pen[ci]
        - incomplete_end[cj]
        - question_end[cj]
        - continues[cj]
        + 0.1 * natural_start[ci]
        + 0.1 * natural_end[cj],
        0.0,
        1.2,
    )

    # mean similarity of the sentences to their centroid is |sum of unit vectors| / count
    emb_prefix = np.vstack([np.zeros((1, ctx.emb.shape[1])), np.cumsum(ctx.emb, axis=0)])
    raw["coherence"] = np.linalg.norm(emb_prefix[cj + 1] - emb_prefix[ci], axis=1) / count

    word_counts = np.array([s.word_count for s in sentences], dtype=float)
    words_in = window_sum(prefix(word_counts))
    raw["keyword_density"] = window_sum(prefix(ctx.keyword_hits)) / np.maximum(words_in, 1.0)

    speech_time = window_sum(prefix(np.maximum(s_end - s_start, 0.05)))
    raw["speech_rate"] = words_in / speech_time

    intensity = np.abs(ctx.vader)
    raw["sentiment"] = 0.5 * window_sum(prefix(intensity)) / count + 0.5 * _window_max(
        intensity, ci, cj
    )

    series, window = _loudness_series(audio)
    if series is not None:
        p1, p2 = prefix(series), prefix(series**2)
        a = np.clip((s_start[ci] / window).astype(int), 0, len(series) - 1)
        b = np.clip(np.ceil(s_end[cj] / window).astype(int), a + 1, len(series))
        m = b - a
        mean = (p1[b] - p1[a]) / m
        var = np.maximum((p2[b] - p2[a]) / m - mean**2, 0.0)
        raw["energy"] = mean
        raw["energy_variation"] = np.sqrt(var)
    return raw


def _weights(names, has_criteria: bool) -> dict[str, float]:
    present = {k: v for k, v in WEIGHTS.items() if k in names}
    total = sum(present.values()) or 1.0
    rest = (1.0 - CRITERIA_WEIGHT) if has_criteria and "criteria" in names else 1.0
    weights = {k: rest * v / total for k, v in present.items()}
    if has_criteria and "criteria" in names:
        weights = {"criteria": CRITERIA_WEIGHT, **weights}
    return weights


def _spread_scores(composite):
    """Scores in 0–1 spread over a video's distinct clips: mostly their rank, partly how far
    apart their composites are, so the best lands near 0.98 and the worst near 0.02. With
    only a few distinct clips a rank says little, so the composite itself weighs in."""
    import numpy as np

    composite = np.asarray(composite, dtype=float)
    if len(composite) == 1:
        return np.clip(composite, 0.0, 1.0)
    spread = 0.02 + 0.96 * (0.6 * _rank_normalise(composite) + 0.4 * _minmax(composite))
    trust = min(1.0, (len(composite) - 1) / 6)
    return np.clip(trust * spread + (1 - trust) * composite, 0.0, 1.0)


def _retells(first: set[tuple[str, ...]], second: set[tuple[str, ...]]) -> bool:
    """Whether one window says at least RETOLD_SHARE of the other's word triples again.
    Word triples, not sentences: a retelling is split into sentences differently."""
    smaller = min(len(first), len(second))
    return smaller >= 3 and len(first & second) >= RETOLD_SHARE * smaller


def _triples(text: str) -> set[tuple[str, ...]]:
    tokens = _tokens(text)
    return {tuple(tokens[k : k + 3]) for k in range(len(tokens) - 2)}


def _window_text(ctx: _Context, i: int, j: int) -> str:
    return " ".join(s.text for s in ctx.sentences[i : j + 1])


# -------------------------------------------------------------------------------------------
# Optional language model


def _llm_rerank(llm, texts: list[str], criteria: str) -> dict[int, float]:
    """{finalist index: 0–1 (1 = the model's favourite)}; empty when the model fails."""
    from clips.pipeline.llm import LLMError, parse_json_reply

    goal = (
        f" and how well they match this request: {criteria.strip()!r}" if criteria.strip() else ""
    )
    listing = "\n".join(f"[{k}] {t[:600]}" for k, t in enumerate(texts))
    prompt = (
        "Rank these candidate clips from a long video by how well they would work as short "
        f"social-media videos{goal}. Reply with JSON only: "
        '{"order": [clip numbers, best first]}.\n\n' + listing
    )
    try:
        reply = parse_json_reply(
            llm.complete(prompt, system="You rank video clips.", max_tokens=200)
        )
        order = reply.get("order") if isinstance(reply, dict) else reply
        ids = []
        for item in order or []:
            k = int(item)
            if 0 <= k < len(texts) and k not in ids:
                ids.append(k)
    except (LLMError, ValueError, TypeError, AttributeError) as exc:
        log.warning("LLM rerank skipped: %s", exc)
        return {}
    if not ids:
        return {}
    ids += [k for k in range(len(texts)) if k not in ids]
    return {k: 1.0 - pos / (len(ids) - 1) for pos, k in enumerate(ids)}
