"""Voices tied to faces: whose mouth moves when each voice speaks, over the whole range.

`tie_voices(turns, tracks)` takes the speaker turns of the sound (`clips.pipeline.voices`:
silero-vad's speech, Resemblyzer's voice embeddings clustered) and the face tracks of
the same stretch of the source with their mouth opening (`FaceTrack.lips`: MediaPipe's
face mesh, inner-lip gap over face height, on every decoded frame where two or more
faces are in view), and returns a `VoiceTie`:

- for each face track, its mouth activity over time: the frame-to-frame change of its
  lip gap, averaged over `SMOOTH` seconds;
- for each (voice, face) pair, the correlation of that activity with "this voice is
  speaking now" (1 inside the voice's turns, 0 elsewhere), taken over every frame where
  the face is in view: all of the voice's turns at once, not window by window. A face
  that moves only when its voice speaks scores high; a listener who mouths along with
  one turn, or laughs, still sits still through the voice's other turns and scores low;
  a face that moves whenever anybody speaks scores alike with every voice;
- `face_for(voice, candidates)`: of the faces in view, the one tied to the voice: the
  best correlation when it is at least `MIN_CORRELATION` and beats the next by
  `MARGIN`; None otherwise (no speech, a voice with no face in view, or evidence too
  even to choose), where the crop path falls back on reading mouths against loudness
  window by window (`clips.pipeline.reframe`).

Pure functions on lists; no side effects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faces import FaceTrack
    from .voices import VoiceTurn

SMOOTH = 0.4  # seconds over which a face's lip movement is averaged
# A voice is tied to a face when the correlation is at least this, and beats the next
# face's by MARGIN. Set on bench/speakers.py's composites (see the README's figures).
MIN_CORRELATION = 0.15
MARGIN = 0.1
MIN_FRAMES = 10  # frames of a face inside a voice's turns for any evidence at all


@dataclass
class VoiceTie:
    """Evidence of which face each voice belongs to."""

    # (voice, track id) -> correlation of the face's mouth activity with the voice's turns
    evidence: dict[tuple[int, int], float] = field(default_factory=dict)
    turns: list[tuple[float, float, int]] = field(default_factory=list)

    def voice_at(self, start: float, end: float) -> int | None:
        """The voice that speaks most of [start, end], when speech covers a third of it."""
        spoken: dict[int, float] = {}
        for a, b, voice in self.turns:
            overlap = min(b, end) - max(a, start)
            if overlap > 0:
                spoken[voice] = spoken.get(voice, 0.0) + overlap
        if not spoken:
            return None
        voice, length = max(spoken.items(), key=lambda kv: kv[1])
        return voice if length >= (end - start) / 3 else None

    def face_for(self, voice: int | None, candidates: Sequence[int]) -> int | None:
        """Of the track ids `candidates` (the faces in view), the one tied to `voice`;
        None when the evidence does not single one out."""
        if voice is None or not candidates:
            return None
        scored = sorted(
            ((self.evidence[(voice, c)], c) for c in candidates if (voice, c) in self.evidence),
            reverse=True,
        )
        if not scored or scored[0][0] < MIN_CORRELATION:
            return None
        if len(scored) > 1 and scored[0][0] - scored[1][0] < MARGIN:
            return None
        if len(scored) < len(candidates) and len(candidates) > 1:
            # a face in view without evidence (no lips measured): nothing to compare with
            return None
        return scored[0][1]

    def ties(self) -> dict[int, int]:
        """Each voice's face among all tracks (for reports): voice -> track id."""
        out = {}
        voices = {v for v, _t in self.evidence}
        tracks = sorted({t for _v, t in self.evidence})
        for voice in voices:
            face = self.face_for(voice, [t for t in tracks if (voice, t) in self.evidence])
            if face is not None:
                out[voice] = face
        return out


def needs_voices(faces: Any) -> bool:
    """Whether a face analysis (a FaceAnalysis or its `to_dict()`) has two faces with
    measured mouths in view at the same time: only then is there someone to choose."""
    tracks = faces.get("tracks", []) if isinstance(faces, dict) else faces.tracks
    spans = []
    for track in tracks:
        lips = track.get("lips") if isinstance(track, dict) else track.lips
        if lips:
            spans.append((lips[0][0], lips[-1][0]))
    return any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(spans) for b0, b1 in spans[i + 1 :])


def mouth_activity(
    lips: Sequence[Sequence[Any]], smooth: float = SMOOTH
) -> list[tuple[float, float]]:
    """(t, activity) per frame of a face: the absolute change of its lip gap since the
    previous frame (frames whose mesh found no face, and the changes across them, are
    left out), averaged over `smooth` seconds centred on the frame."""
    import numpy as np

    changes: list[tuple[float, float]] = []
    for (t0, v0), (t1, v1) in zip(lips, lips[1:], strict=False):
        if v0 is None or v1 is None or t1 - t0 > 0.25:
            continue
        changes.append((float(t1), abs(float(v1) - float(v0))))
    if not changes:
        return []
    times = np.array([c[0] for c in changes])
    values = np.array([c[1] for c in changes])
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    lo = np.searchsorted(times, times - smooth / 2, side="left")
    hi = np.searchsorted(times, times + smooth / 2, side="right")
    mean = (cumulative[hi] - cumulative[lo]) / np.maximum(1, hi - lo)
    return list(zip(times.tolist(), mean.tolist(), strict=True))


def tie_voices(
    turns: Sequence[VoiceTurn | Sequence[Any]],
    tracks: Sequence[FaceTrack],
    *,
    start: float | None = None,
    end: float | None = None,
    smooth: float = SMOOTH,
) -> VoiceTie:
    """The evidence tying each voice of `turns` to the faces of `tracks` over [start,
    end] (all of it when None); see the module docstring."""
    import numpy as np

    spans = [_turn(t) for t in turns]
    lo = -math.inf if start is None else start
    hi = math.inf if end is None else end
    spans = [(max(a, lo), min(b, hi), v) for a, b, v in spans if b > lo and a < hi]
    tie = VoiceTie(turns=spans)
    voices = sorted({v for _a, _b, v in spans})
    if not voices:
        return tie
    for track in tracks:
        series = [(t, a) for t, a in mouth_activity(track.lips, smooth) if lo <= t < hi]
        if len(series) < MIN_FRAMES:
            continue
        times = np.array([s[0] for s in series])
        activity = np.array([s[1] for s in series])
        if activity.std() == 0:
            continue
        for voice in voices:
            speaking = np.zeros(len(times))
            for a, b, v in spans:
                if v == voice:
                    speaking[(times >= a) & (times < b)] = 1.0
            if speaking.sum() < MIN_FRAMES or speaking.std() == 0:
                continue
            value = float(np.corrcoef(activity, speaking)[0, 1])
            if not math.isnan(value):
                tie.evidence[(voice, track.id)] = round(value, 4)
    return tie


def _turn(turn: Any) -> tuple[float, float, int]:
    if isinstance(turn, (list, tuple)):
        return float(turn[0]), float(turn[1]), int(turn[2])
    return float(turn.start), float(turn.end), int(turn.voice)
