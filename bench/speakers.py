"""Who-speaks benchmark: is the face of whoever speaks in the 9:16 window?

Builds the speaker composites at run time (bench/_speakers.py: the two dev videos of
../shared/media, and GRID speakers side by side whose listener mouths silently out of
step, in step, or in step in some turns only), then frames each one twice in the same
run, on the same faces and sound:

- old: mouth movement and its timing against the loudness, window by window
  (`crop_path(..., voices=None)`);
- new: voices (silero-vad, Resemblyzer embeddings clustered) tied to faces (MediaPipe's
  face mesh lip gap) over the whole source (`crop_path(..., voices=...)`), the old
  reading where no voice is tied.

Prints per composite the share of samples (every 0.1 s) whose window holds the face of
whoever speaks, old and new, their ratio, the voices found and each one's face, and the
seconds the lips pass (face mesh) and the voices took. With --json, one JSON object.

Usage: .venv/bin/python bench/speakers.py [--keep DIR] [--json] [--only NAME ...]
No Django settings are needed; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ASPECT = "9:16"


def measure(speakers, work: Path) -> dict:
    from bench._speakers import speaker_share
    from clips.pipeline.audio import audio_features, extract_audio
    from clips.pipeline.faces import detect_faces
    from clips.pipeline.reframe import crop_path
    from clips.pipeline.speakers import tie_voices
    from clips.pipeline.voices import detect_voices

    started = time.perf_counter()
    detect_faces(speakers.path, lips=False)
    faces_s = time.perf_counter() - started
    started = time.perf_counter()
    faces = detect_faces(speakers.path)
    lips_s = time.perf_counter() - started
    wav = extract_audio(speakers.path, work / f"{speakers.name}.wav")
    sound = audio_features(wav)
    started = time.perf_counter()
    voices = detect_voices(wav)
    voices_s = time.perf_counter() - started

    def share(**kwargs) -> tuple[float, object]:
        path = crop_path(
            source_width=speakers.width,
            source_height=speakers.height,
            start=0.0,
            end=speakers.length,
            aspect=ASPECT,
            faces=faces,
            loudness=sound.loudness,
            loudness_window=sound.window,
            **kwargs,
        )
        return speaker_share(path, speakers), path

    old, _ = share()
    new, path = share(voices=voices)
    tie = tie_voices(voices.turns, faces.tracks, start=0.0, end=speakers.length)
    sides = {}
    for track in faces.tracks:
        cx = track.points[len(track.points) // 2].center[0]
        sides[track.id] = min(
            speakers.truth["faces"], key=lambda s: abs(speakers.truth["faces"][s]["center_x"] - cx)
        )
    return {
        "composite": speakers.name,
        "old": round(old, 3),
        "new": round(new, 3),
        "ratio": round(new / old, 2) if old else None,
        "voices": voices.voices,
        "tied": {str(v): sides.get(t, t) for v, t in sorted(tie.ties().items())},
        "layouts": sorted({s.layout for s in path.shots}),
        "seconds": {
            "video": round(speakers.length, 1),
            "faces": round(faces_s, 1),
            "faces_with_lips": round(lips_s, 1),
            "voices": round(voices_s, 1),
        },
        "mouthing": speakers.truth.get("mouthing"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="write the composites here and keep them")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", nargs="*", help="composites to run (default: all)")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    from bench._speakers import COMPOSITES, composite

    names = args.only or list(COMPOSITES)
    with tempfile.TemporaryDirectory(prefix="bench-speakers-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = [measure(composite(name, work), work) for name in names]
    old = sum(r["old"] for r in rows) / len(rows)
    new = sum(r["new"] for r in rows) / len(rows)
    summary = {"old": round(old, 3), "new": round(new, 3), "ratio": round(new / old, 2)}
    if args.json:
        print(json.dumps({"composites": rows, "mean": summary}, indent=2))
        return 0
    print(f"{'composite':24} {'old':>6} {'new':>6} {'ratio':>6}  voices  tied  seconds")
    for r in rows:
        s = r["seconds"]
        print(
            f"{r['composite']:24} {r['old']:6.0%} {r['new']:6.0%} {r['ratio'] or 0:6.2f}  "
            f"{r['voices']:6}  {json.dumps(r['tied'])}  faces {s['faces']} / with lips "
            f"{s['faces_with_lips']}, voices {s['voices']} (of {s['video']} s)"
        )
    print(f"{'mean':24} {old:6.0%} {new:6.0%} {new / old:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
