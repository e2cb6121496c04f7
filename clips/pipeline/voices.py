"""Who speaks when, from the sound alone: voice activity and speaker turns of a source.

`detect_voices(wav)` reads a mono 16 kHz WAV (`clips.pipeline.audio.extract_audio`) and
returns a `VoiceAnalysis`:

- `speech`: the spans where silero-vad hears speech (its speech probability, per 32 ms
  frame, over `speech`; the model ships inside the `silero-vad` wheel and its ONNX file
  runs on onnxruntime);
- `turns`: speech spans, each labelled with a voice (`voice`, 0, 1, ...): speech is cut
  at its pauses and at most every `piece` seconds, each piece is embedded by
  Resemblyzer's voice encoder (its weights ship inside the `resemblyzer` wheel) and the
  pieces are clustered (agglomerative, average linkage on cosine distance, cut at
  `threshold`: as many voices as the distances say, none asked for).

Nothing is downloaded. No side effects. Raises StageError when the WAV cannot be read.
Which face each voice belongs to is decided in `clips.pipeline.speakers`.
"""

from __future__ import annotations

import logging
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import StageError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
VAD_FRAME = 512  # samples per silero-vad frame at 16 kHz: 32 ms
# Cosine distance at which two pieces' voices are told apart. Measured on the speaker
# composites (bench/_speakers.py) and the two-person telephone sample of ../shared/media:
# at 0.25 every GRID voice is its own (the one speaker heard twice found twice) and the
# telephone's two people come out as two main voices; at 0.3 two men of the composites
# merge and the telephone call is one voice.
THRESHOLD = 0.25


@dataclass
class VoiceTurn:
    start: float
    end: float
    voice: int

    def to_list(self) -> list[Any]:
        return [self.start, self.end, self.voice]


@dataclass
class VoiceAnalysis:
    """Voice activity and speaker turns of a source; JSON-serialisable."""

    duration: float
    speech: list[tuple[float, float]] = field(default_factory=list)  # seconds
    turns: list[VoiceTurn] = field(default_factory=list)
    voices: int = 0
    model: str = "silero-vad+resemblyzer"

    def voice_at(self, t: float) -> int | None:
        for turn in self.turns:
            if turn.start <= t < turn.end:
                return turn.voice
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "duration": self.duration,
            "speech": [list(span) for span in self.speech],
            "voices": self.voices,
            "turns": [t.to_list() for t in self.turns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoiceAnalysis:
        return cls(
            duration=float(data["duration"]),
            speech=[(float(a), float(b)) for a, b in data.get("speech", [])],
            turns=[VoiceTurn(float(a), float(b), int(v)) for a, b, v in data.get("turns", [])],
            voices=int(data.get("voices", 0)),
            model=data.get("model", "silero-vad+resemblyzer"),
        )


_shared = threading.local()


def _models() -> tuple[Any, Any]:
    """This thread's silero-vad and voice encoder, loaded once from their wheels."""
    if getattr(_shared, "models", None) is None:
        import warnings

        import silero_vad

        with warnings.catch_warnings():  # its scipy.ndimage.morphology import is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            from resemblyzer import VoiceEncoder

        _shared.models = (silero_vad.load_silero_vad(onnx=True), VoiceEncoder("cpu", verbose=False))
    return _shared.models


CHUNK_SECONDS = 30.0  # read and run through the VAD a chunk at a time


def read_wav(path: str | Path, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """[start, end] seconds (all of it by default) of a mono 16-bit WAV at 16 kHz, as
    float32 samples in [-1, 1). Only that span is read."""
    import numpy as np

    try:
        with wave.open(str(path), "rb") as wav:
            _check(wav)
            first = min(wav.getnframes(), max(0, round(start * SAMPLE_RATE)))
            last = wav.getnframes() if end is None else round(end * SAMPLE_RATE)
            wav.setpos(first)
            data = wav.readframes(max(0, min(last, wav.getnframes()) - first))
    except (OSError, EOFError, wave.Error) as exc:
        raise StageError(
            "Clip generation failed: could not read the audio", {"error": str(exc)}
        ) from exc
    return np.frombuffer(data, np.int16).astype(np.float32) / 32768.0


def _check(wav: wave.Wave_read) -> None:
    if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
        raise StageError(
            "Clip generation failed: the audio is not mono 16-bit",
            {"channels": wav.getnchannels(), "sampleWidth": wav.getsampwidth()},
        )
    if wav.getframerate() != SAMPLE_RATE:
        raise StageError(
            "Clip generation failed: the audio is not at 16 kHz",
            {"sampleRate": wav.getframerate()},
        )


def _duration(path: str | Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            _check(wav)
            return wav.getnframes() / SAMPLE_RATE
    except (OSError, EOFError, wave.Error) as exc:
        raise StageError(
            "Clip generation failed: could not read the audio", {"error": str(exc)}
        ) from exc


def detect_voices(
    wav: str | Path,
    *,
    threshold: float = THRESHOLD,
    speech: float = 0.5,
    min_pause: float = 0.25,
    min_speech: float = 0.25,
    piece: float = 2.0,
) -> VoiceAnalysis:
    """Voice activity and speaker turns of the WAV at `wav` (see the module docstring).

    `speech`: the probability above which a frame is speech; `min_pause`: a pause this
    long ends a stretch of speech; shorter stretches than `min_speech` are dropped;
    `piece`: the longest span embedded as one (a long stretch is cut into equal pieces
    of at most this, so that a voice change without a pause still shows).

    The WAV is read a chunk at a time (the VAD) and a piece at a time (the embeddings):
    an hour of sound never sits in memory at once."""
    import numpy as np

    length = _duration(wav)
    vad, encoder = _models()
    vad.reset_states()
    chunks = []
    step = int(CHUNK_SECONDS * SAMPLE_RATE) // VAD_FRAME * VAD_FRAME  # whole frames
    for first in range(0, round(length * SAMPLE_RATE), step):
        part = read_wav(wav, first / SAMPLE_RATE, (first + step) / SAMPLE_RATE)
        chunks.append(speech_activity(vad, part, reset=False))
    activity = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    frame = VAD_FRAME / SAMPLE_RATE
    duration = round(length, 3)
    spans = speech_spans(activity, frame, speech=speech, min_pause=min_pause, min_speech=min_speech)
    pieces = [p for a, b in spans for p in _cut(a, b, piece)]
    turns: list[VoiceTurn] = []
    voices = 0
    if pieces:
        embeddings = embed_pieces(encoder, wav, pieces)
        labels = cluster_voices(embeddings, threshold=threshold)
        turns = merge_turns(
            [VoiceTurn(a, b, int(v)) for (a, b), v in zip(pieces, labels, strict=True)]
        )
        voices = int(max(labels)) + 1
    return VoiceAnalysis(
        duration=duration,
        speech=spans,
        turns=turns,
        voices=voices,
    )


def speech_activity(vad: Any, samples: np.ndarray, *, reset: bool = True) -> np.ndarray:
    """silero-vad's speech probability per 512-sample frame (`reset`: forget the state
    of earlier calls; off for the next chunk of the same sound)."""
    import numpy as np
    import torch

    if reset:
        vad.reset_states()
    out = []
    with torch.no_grad():
        for i in range(0, len(samples) - VAD_FRAME + 1, VAD_FRAME):
            out.append(float(vad(torch.from_numpy(samples[i : i + VAD_FRAME]), SAMPLE_RATE)))
    return np.array(out, dtype=np.float32)


def speech_spans(
    activity: Any, frame: float, *, speech: float, min_pause: float, min_speech: float
) -> list[tuple[float, float]]:
    """(start, end) seconds of speech: frames over `speech`, joined across pauses shorter
    than `min_pause`, stretches shorter than `min_speech` dropped."""
    spans: list[list[float]] = []
    for i, p in enumerate(activity):
        if p < speech:
            continue
        t = i * frame
        if spans and t - spans[-1][1] < min_pause:
            spans[-1][1] = t + frame
        else:
            spans.append([t, t + frame])
    return [(round(a, 3), round(b, 3)) for a, b in spans if b - a >= min_speech]


def _cut(start: float, end: float, piece: float) -> list[tuple[float, float]]:
    count = max(1, int(-(-(end - start) // piece)))
    size = (end - start) / count
    return [(round(start + i * size, 3), round(start + (i + 1) * size, 3)) for i in range(count)]


def embed_pieces(encoder: Any, wav: str | Path, pieces: list[tuple[float, float]]) -> np.ndarray:
    """One L2-normed voice embedding per (start, end) piece (Resemblyzer's
    `embed_utterance`: the mean of its 1.6 s partials, the piece padded when shorter)."""
    import numpy as np

    out = []
    for start, end in pieces:
        out.append(encoder.embed_utterance(read_wav(wav, start, end), min_coverage=0.5))
    return np.array(out, dtype=np.float32)


def cluster_voices(embeddings: np.ndarray, *, threshold: float = THRESHOLD) -> list[int]:
    """A voice label per embedding: agglomerative clustering, average linkage on cosine
    distance, cut at `threshold`; labels numbered in order of first appearance."""
    if len(embeddings) == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average"
    ).fit_predict(embeddings)
    order: dict[int, int] = {}
    return [order.setdefault(int(v), len(order)) for v in raw]


def merge_turns(turns: list[VoiceTurn], gap: float = 0.5) -> list[VoiceTurn]:
    """Adjacent turns of the same voice, less than `gap` apart, joined into one."""
    out: list[VoiceTurn] = []
    for turn in sorted(turns, key=lambda t: t.start):
        if out and out[-1].voice == turn.voice and turn.start - out[-1].end < gap:
            out[-1] = VoiceTurn(out[-1].start, max(out[-1].end, turn.end), turn.voice)
        else:
            out.append(VoiceTurn(turn.start, turn.end, turn.voice))
    return out
