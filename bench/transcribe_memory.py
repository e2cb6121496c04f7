"""Transcription memory: does it stay flat as sources get long?

Builds a speech track of real recordings (bench/_media.py: GRID, JFK, LibriVox and a
telephone call in shuffled rounds, so the reference text is known) of `--minutes`, then
transcribes it in a fresh process per run (as a worker would), once as the pipeline does
it (windows of clips.pipeline.transcribe.CHUNK_SECONDS, read from the WAV as needed) and
once in one piece (the reference: what the engine does with the whole file), and prints
for each: wall time, real-time factor, peak memory of the process (getrusage ru_maxrss),
the model's share of it (the peak after loading the model, before any audio), and the
word error rate against the known text. The ratio of the two peaks is the figure.

Usage: .venv/bin/python bench/transcribe_memory.py [--minutes 30] [--model tiny.en|base]
                                                   [--chunk-seconds 1200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clypai.settings")
import django
django.setup()
from clips.pipeline import transcribe as stage
stage.get_engine("faster-whisper", {model!r}, "cpu")
model_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
result = stage.transcribe({wav!r}, model={model!r}, chunk_seconds={chunk!r})
wall = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"wall": wall, "duration": result.duration, "peak_kib": peak,
                  "model_kib": model_peak, "text": result.text}}))
"""


def run(wav: Path, model: str, chunk: float) -> dict:
    code = CHILD.format(repo=str(REPO), wav=str(wav), model=model, chunk=chunk)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench._media import build_speech_track
    from clips.pipeline.transcribe import CHUNK_SECONDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tests"))
    from tests.clips.pipeline.test_transcribe import edit_distance, normalise

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        reference, _, _ = build_speech_track(wav, args.minutes * 60)
        figures = {
            "windowed": run(wav, args.model, args.chunk_seconds),
            "whole": run(wav, args.model, 1e9),
        }
    ref_words = normalise(reference)
    for figure in figures.values():
        figure["wer"] = edit_distance(ref_words, normalise(figure.pop("text"))) / len(ref_words)
        figure["rtf"] = figure["wall"] / figure["duration"]
    ratio = figures["windowed"]["peak_kib"] / figures["whole"]["peak_kib"]
    if args.json:
        print(json.dumps({"minutes": args.minutes, "model": args.model, **figures, "ratio": ratio}))
        return
    load = os.getloadavg()[0]
    print(f"{args.minutes:g} min of speech, faster-whisper {args.model}, load {load:.1f}")
    for name, f in figures.items():
        print(
            f"  {name:9s} wall {f['wall']:7.1f} s  RTF {f['rtf']:.3f}  "
            f"peak {f['peak_kib'] / 1024:7.0f} MiB (model loaded: {f['model_kib'] / 1024:.0f} MiB)"
            f"  WER {f['wer']:.3f}"
        )
    print(f"  peak memory, windowed / whole: {ratio:.2f}")


if __name__ == "__main__":
    main()
