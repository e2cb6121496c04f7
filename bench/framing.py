"""Framing benchmark: does the 9:16 crop hold the subject when there is no whole face?

Builds synthetic compositions at run time from the real recordings in ../shared/media
(bench/_compose.py: a GRID speaker cut out of their backdrop and set on a plain wall at
the frame's edges, half out of the frame, small, with the face hidden; no person and a
textured object elsewhere; content across the whole frame), then frames each one twice
in the same run:

- before: the code path as it was: face detection on the frame alone, and where no face
  is found, a centred crop (`detect_faces(..., edges=False, people=False,
  content=False)`: without those passes `crop_path` centres the window, as it used to);
- after: the edge pass (faces cut by the frame), people (pose, selfie segmentation) and
  content (texture, motion), with `fit` where no window holds the content.

A sample (every 0.2 s of each composition) counts as covered when the crop window holds
at least COVERED of the subject's box (the visible face, the hidden-face person's head
and shoulders, the object; for content across the frame, the fit layout's whole frame).
Prints, per composition and in all, the share covered before and after, why each shot
was framed as it was, and the detection time per second of video before and after.

Usage: .venv/bin/python bench/framing.py [--keep DIR] [--json]
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

COVERED = 0.8  # of the subject's box inside the window
ASPECT = "9:16"


def frame_case(comp, *, after: bool):
    """(crop path, detection seconds) of one composition, before or after."""
    from clips.pipeline.faces import detect_faces
    from clips.pipeline.reframe import crop_path

    started = time.perf_counter()
    faces = detect_faces(comp.path, edges=after, people=after, content=after)
    seconds = time.perf_counter() - started
    path = crop_path(
        source_width=comp.width,
        source_height=comp.height,
        start=0.0,
        end=faces.end,
        aspect=ASPECT,
        faces=faces,
    )
    return path, seconds


def covered_share(path, comp) -> float:
    from bench._compose import coverage

    times = [i * 0.2 for i in range(int(path.duration / 0.2))]
    hits = 0
    for t in times:
        shot = path.shot_at(t)
        window = (0, 0, comp.width, comp.height) if shot.layout == "fit" else path.at(t)
        hits += coverage(window, comp.subject) >= COVERED
    return hits / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="build the compositions in this folder and keep them")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")

    from bench._compose import CASES, compose

    rows = []
    with tempfile.TemporaryDirectory(prefix="clypai-framing-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        for case in CASES:
            comp = compose(case, folder)
            before, before_s = frame_case(comp, after=False)
            after, after_s = frame_case(comp, after=True)
            rows.append(
                {
                    "case": case.name,
                    "kind": case.kind,
                    "subject": comp.subject,
                    "before": covered_share(before, comp),
                    "after": covered_share(after, comp),
                    "whyBefore": [s.why for s in before.shots],
                    "whyAfter": [s.why for s in after.shots],
                    "windowAfter": after.at(0.0),
                    "layoutAfter": [s.layout for s in after.shots],
                    "secondsBefore": before_s / case.seconds,
                    "secondsAfter": after_s / case.seconds,
                }
            )
    total = {
        "before": sum(r["before"] for r in rows) / len(rows),
        "after": sum(r["after"] for r in rows) / len(rows),
        "detectionSecondsPerVideoSecondBefore": sum(r["secondsBefore"] for r in rows) / len(rows),
        "detectionSecondsPerVideoSecondAfter": sum(r["secondsAfter"] for r in rows) / len(rows),
    }
    if args.json:
        print(json.dumps({"cases": rows, "total": total}, indent=2))
        return
    print(f"{'composition':40} {'before':>7} {'after':>7}  why (after)       layout  window x")
    for r in rows:
        print(
            f"{r['case']:40} {r['before']:7.0%} {r['after']:7.0%}  "
            f"{','.join(r['whyAfter']):17} {','.join(r['layoutAfter']):7} {r['windowAfter'][0]}"
        )
    print(
        f"{'all samples':40} {total['before']:7.0%} {total['after']:7.0%}\n"
        f"detection time per second of video: {total['detectionSecondsPerVideoSecondBefore']:.2f} s"
        f" before, {total['detectionSecondsPerVideoSecondAfter']:.2f} s after (1280x720 sources, "
        "analysed at 640x360, faces at 5 fps; a shared 2-core machine)"
    )


if __name__ == "__main__":
    main()
