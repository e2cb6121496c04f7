"""Titles and reasons of the selected clips.

`clean_title` makes a title of a spoken sentence (fillers and discourse markers out,
capitalised, cut at a word boundary); `_strongest_sentence` picks the window's sentence
to title it by; `_reason` says in words why a clip was chosen, from its score breakdown;
`_llm_titles` asks the optional language model for titles and keeps the usable ones.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING

from .candidates import Sentence
from .scoring import _Context, opening_penalty

if TYPE_CHECKING:
    from .stage import SelectedClip

log = logging.getLogger(__name__)

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
