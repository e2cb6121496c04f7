"""Long benchmark sources, built at run time from the real recordings in ../shared/media.

Nothing is downloaded and nothing is copied into the project: a builder writes into a
folder the caller gives (a temporary one) and returns what it knows about the result.

`build_talking_head(dst, seconds)` makes an H.264 + AAC MP4 of `seconds`:
- picture: the GRID concatenation (a face in every frame, a hard cut every 3.0 s)
  looped, optionally scaled to `height` (padded to 16:9), 25 fps;
- sound: real speech over most of its length: the GRID sentences, JFK, the five
  LibriVox clips and the two-person telephone call, one "round" of all of them in a
  shuffled order (fixed seed) after another, 0.4 s of silence between pieces, as many
  whole pieces as fit; the few seconds left at the end are silence. So the reference
  text of the whole track is known exactly (`BuiltSource.reference`).

The picture and the sound are not in sync (GRID's faces do not say JFK's words); for
analysis benchmarks (transcription, scenes, loudness) that does not matter.
"""

from __future__ import annotations

import random
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
GRID_CONCAT = MEDIA / "talking_head" / "grid_concat_11clips_33s.mp4"
GRID_TRUTH = MEDIA / "talking_head" / "grid_concat_11clips_33s.groundtruth.json"
GRID_CUT_EVERY = 3.0
RATE = 48000
GAP_SECONDS = 0.4


@dataclass(frozen=True)
class Piece:
    name: str
    path: Path
    text: str


@dataclass
class BuiltSource:
    path: Path
    duration: float  # seconds
    reference: str  # what is said, in order
    pieces: list[str] = field(default_factory=list)  # piece names, in order
    speech_seconds: float = 0.0  # pieces' length (their own leading/trailing quiet included)
    cuts: list[float] = field(default_factory=list)  # hard cuts of the picture, seconds
    build_seconds: float = 0.0


def speech_pieces(media: Path = MEDIA) -> list[Piece]:
    """The real recordings with a known text, one piece each."""
    import json

    pieces = []
    truth = json.loads(GRID_TRUTH.read_text())
    grid_text = " ".join(segment["transcript"] for segment in truth["segments"])
    pieces.append(Piece("grid-concat", GRID_CONCAT, grid_text))
    jfk = media / "speech" / "jfk"
    pieces.append(Piece("jfk", jfk / "jfk.flac", (jfk / "jfk.txt").read_text().strip()))
    librivox = media / "speech" / "librivox_sense_and_sensibility"
    for wav in sorted(librivox.glob("*.wav")):
        text = wav.with_suffix(".txt").read_text().strip()
        pieces.append(Piece(f"librivox-{wav.stem.rsplit('-', 1)[-1]}", wav, text))
    pyannote = media / "speech" / "pyannote_sample"
    lines = []
    for line in (pyannote / "sample.stm").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            lines.append((float(parts[3]), parts[5]))
    text = " ".join(words for _start, words in sorted(lines))
    pieces.append(Piece("pyannote-call", pyannote / "sample.wav", text))
    return pieces


def decode_mono(path: Path, rate: int = RATE) -> bytes:
    """A file's first audio stream as mono s16le PCM at `rate`."""
    completed = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-f",
            "s16le",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    return completed.stdout


def build_speech_track(
    dst_wav: Path, seconds: float, *, seed: int = 0, rate: int = RATE
) -> tuple[str, list[str], float]:
    """Write `seconds` of real speech to `dst_wav` (mono s16 WAV).

    Returns (reference text, piece names in order, seconds of pieces).
    """
    pieces = speech_pieces()
    pcm = {piece.name: decode_mono(piece.path, rate) for piece in pieces}
    gap = b"\0\0" * int(GAP_SECONDS * rate)
    total = int(seconds * rate) * 2
    shuffler = random.Random(seed)
    written = 0
    texts: list[str] = []
    names: list[str] = []
    speech_bytes = 0
    with wave.open(str(dst_wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        while True:
            order = list(pieces)
            shuffler.shuffle(order)
            placed = False
            for piece in order:
                data = pcm[piece.name]
                if written + len(data) + len(gap) > total:
                    continue  # a shorter piece of this round may still fit
                out.writeframes(data + gap)
                written += len(data) + len(gap)
                speech_bytes += len(data)
                texts.append(piece.text)
                names.append(piece.name)
                placed = True
            if not placed:
                break
        out.writeframes(b"\0" * (total - written))
    return " ".join(texts), names, speech_bytes / 2 / rate


def build_talking_head(
    dst: Path,
    seconds: float,
    *,
    height: int = 720,
    preset: str = "veryfast",
    seed: int = 0,
) -> BuiltSource:
    """Build the looped GRID picture with real speech under it; see the module docstring.

    `height` 0 keeps GRID's own 360x288; otherwise the picture is scaled to `height`
    and padded to 16:9 (what most sources are).
    """
    import time

    started = time.perf_counter()
    dst = Path(dst)
    wav = dst.with_suffix(".speech.wav")
    reference, names, speech_seconds = build_speech_track(wav, seconds, seed=seed)
    if height:
        width = int(round(height * 16 / 9 / 2)) * 2
        vf = (
            f"scale=-2:{height}:flags=bicubic,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,"
            "fps=25,format=yuv420p"
        )
    else:
        vf = "fps=25,format=yuv420p"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-stream_loop",
            "-1",
            "-i",
            str(GRID_CONCAT),
            "-i",
            str(wav),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-t",
            f"{seconds:.3f}",
            "-vf",
            vf,
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            "23",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-ar",
            str(RATE),
            "-movflags",
            "+faststart",
            str(dst),
        ],
        check=True,
    )
    wav.unlink()
    steps = int(seconds / GRID_CUT_EVERY + 1e-9)
    cuts = [
        round(k * GRID_CUT_EVERY, 3)
        for k in range(1, steps + 1)
        if k * GRID_CUT_EVERY < seconds - 1e-6
    ]
    return BuiltSource(
        path=dst,
        duration=seconds,
        reference=reference,
        pieces=names,
        speech_seconds=round(speech_seconds, 3),
        cuts=cuts,
        build_seconds=round(time.perf_counter() - started, 2),
    )


def replayed_transcript(transcript: dict, times: int, period: float) -> dict:
    """A transcript (faster-whisper's dict shape) said `times` times over, each time
    `period` seconds after the one before: a long talk for selection, or a looped or
    re-uploaded stretch."""
    segments = [
        {
            **s,
            "start": s["start"] + k * period,
            "end": s["end"] + k * period,
            "words": [
                {**w, "start": w["start"] + k * period, "end": w["end"] + k * period}
                for w in s.get("words") or []
            ],
        }
        for k in range(times)
        for s in transcript["segments"]
    ]
    return {**transcript, "segments": segments, "text": "".join(s["text"] for s in segments)}
