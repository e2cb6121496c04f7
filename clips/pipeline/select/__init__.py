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

The package, by seam:
- `candidates`: words and sentences, sentence embeddings, topic boundaries, candidate
  windows and cut points;
- `scoring`: hooks and other lexical cues, the features of every window, their weights,
  the final spread of scores, near-duplicates and retellings;
- `titles`: titles (extractive, or the language model's) and the reason for each clip;
- `stage`: `select_clips` itself, `SelectedClip`, and `warm_up`.
"""

from .candidates import (
    Embedder,
    MiniLMEmbedder,
    Sentence,
    default_embedder,
    split_sentences,
    strong_boundaries,
    topic_depths,
    transcript_words,
)
from .scoring import WEIGHTS, WindowScore, hook_strength, opening_penalty, score_windows
from .stage import SelectedClip, select_clips, warm_up
from .titles import clean_title

__all__ = [
    "WEIGHTS",
    "Embedder",
    "MiniLMEmbedder",
    "SelectedClip",
    "Sentence",
    "WindowScore",
    "clean_title",
    "default_embedder",
    "hook_strength",
    "opening_penalty",
    "score_windows",
    "select_clips",
    "split_sentences",
    "strong_boundaries",
    "topic_depths",
    "transcript_words",
    "warm_up",
]
