"""Who-speaks composites, built at run time from the real GRID recordings in
../shared/media (nothing downloaded, nothing copied into the project), and how the share
of time with the speaker in the window is measured.

`COMPOSITES` names them: the two dev videos of ../shared/media (`two-speakers-dev`, the
listener still; `two-speakers-sway-dev`, the listener's face drifting) and two made here
by `mouthing_listener(dst, offset)`: two GRID speakers side by side taking 3 s turns
whose listener's clip plays too, silent, so both mouths move all the time; `offset`
seconds out of step (1.4: "out of step") or in step (0: both sentences start together,
as a listener mouthing along would). Each composite comes with its truth: the faces'
centres and who speaks when (`Speakers`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
TALKING = MEDIA / "talking_head"
GRID = TALKING / "grid"

COMPOSITES = (
    "two-speakers-dev",
    "two-speakers-sway-dev",
    "out-of-step",
    "in-step",
    "in-step-at-times",
)
OFFSETS = {"out-of-step": 1.4, "in-step": 0.0}
# in-step-at-times: the same two people all through (as in two-speakers-dev), and in the
# turns marked here the listener mouths in step with the speaker; in the others the
# listener holds still.
AT_TIMES = {"L": "bbaf2n", "R": "brbk7n"}
AT_TIMES_TURNS = ["L", "R", "L", "R", "R", "L", "L", "R"]
AT_TIMES_MOUTHING = (1, 2, 5, 7)


@dataclass
class Speakers:
    name: str
    path: Path
    truth: dict[str, Any]  # {"faces": {side: {"center_x"}}, "turns": [{from, to, speaker}]}
    width: int = 1920
    height: int = 1080

    @property
    def length(self) -> float:
        return float(self.truth["turns"][-1]["to"])

    def speaker_at(self, t: float) -> str:
        return next(x for x in self.truth["turns"] if x["from"] <= t < x["to"])["speaker"]


def composite(name: str, dst: Path) -> Speakers:
    """The composite called `name` (one of COMPOSITES); made ones are written into `dst`."""
    if name in OFFSETS:
        path, truth = mouthing_listener(dst, OFFSETS[name], name=name)
        return Speakers(name, path, truth)
    if name == "in-step-at-times":
        path, truth = mouthing_at_times(dst, name=name)
        return Speakers(name, path, truth)
    truth = json.loads((TALKING / f"{name}.truth.json").read_text())
    return Speakers(name, TALKING / f"{name}.mp4", truth)


def mouthing_listener(work: Path, offset: float, *, name: str = "mouthing-listener"):
    """Two GRID speakers side by side (as in two-speakers-dev), taking 3 s turns; the
    listener's clip plays too, silent and `offset` seconds out of step, so both mouths
    move all the time. Returns (path, truth)."""
    work.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in GRID.glob("*.mpg"))
    turns = ["L", "R", "L", "R", "R", "L", "L", "R"]
    parts = []
    for i, speaker in enumerate(turns):
        inputs = []
        for side, clip in (
            ("L", names[(2 * i) % len(names)]),
            ("R", names[(2 * i + 1) % len(names)]),
        ):
            if side != speaker and offset:  # the listener: looped, `offset` s in
                inputs += ["-stream_loop", "1", "-ss", f"{offset}"]
            inputs += ["-i", str(GRID / f"{clip}.mpg")]
        graph = (
            "[0:v]scale=720:576,setpts=PTS-STARTPTS[l];[1:v]scale=720:576,setpts=PTS-STARTPTS[r];"
            "color=c=0x404040:s=1920x1080:r=25:d=3[bg];[bg][l]overlay=200:252[x];"
            "[x][r]overlay=1000:252,format=yuv420p[v];"
            f"[{0 if speaker == 'L' else 1}:a]aresample=48000,apad[a]"
        )
        parts.append(_turn_encode(work / f"{name}-turn{i}.mp4", inputs, graph))
    video = _turns_join(work, name, parts)
    truth = {
        **_side_by_side_truth(turns),
    }
    return video, truth


def mouthing_at_times(
    work: Path,
    *,
    turns: list[str] = AT_TIMES_TURNS,
    mouthing: tuple[int, ...] = AT_TIMES_MOUTHING,
    name: str = "in-step-at-times",
):
    """The same two GRID speakers side by side all through (`AT_TIMES`), taking 3 s
    turns; in the turns listed in `mouthing` the listener's clip plays too, silent and
    in step with the speaker's, elsewhere the listener holds still on a frame of their
    own clip. Returns (path, truth); the truth also lists the mouthing turns."""
    work.mkdir(parents=True, exist_ok=True)
    stills = {}
    for side, clip in AT_TIMES.items():
        stills[side] = work / f"{name}-{side}.png"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "0.4", "-i",
             str(GRID / f"{clip}.mpg"), "-frames:v", "1", str(stills[side])],
            check=True,
        )  # fmt: skip
    parts = []
    for i, speaker in enumerate(turns):
        inputs = []
        for side, clip in AT_TIMES.items():
            if side == speaker or i in mouthing:
                inputs += ["-i", str(GRID / f"{clip}.mpg")]
            else:  # the listener holds still
                inputs += ["-loop", "1", "-framerate", "25", "-t", "3", "-i", str(stills[side])]
        graph = (
            "[0:v]scale=720:576,fps=25,setpts=PTS-STARTPTS[l];"
            "[1:v]scale=720:576,fps=25,setpts=PTS-STARTPTS[r];"
            "color=c=0x404040:s=1920x1080:r=25:d=3[bg];[bg][l]overlay=200:252[x];"
            "[x][r]overlay=1000:252,format=yuv420p[v];"
            f"[{0 if speaker == 'L' else 1}:a]aresample=48000,apad[a]"
        )
        parts.append(_turn_encode(work / f"{name}-turn{i}.mp4", inputs, graph))
    video = _turns_join(work, name, parts)
    truth = {
        **_side_by_side_truth(turns),
        "mouthing": [{"from": 3 * i, "to": 3 * i + 3} for i in mouthing],
    }
    return video, truth


def speaker_share(path: Any, speakers: Speakers, step: float = 0.1) -> float:
    """The share of samples (every `step` s) whose fill window (`path.at(t)`) holds the
    centre of the face of whoever speaks, as tests/clips/pipeline/test_reframe.py has
    always measured it (a split or fit shot's centred window holds neither face)."""
    held = []
    t = 0.0
    while t < speakers.length - 1e-9:
        centre = speakers.truth["faces"][speakers.speaker_at(t)]["center_x"]
        x, _y, w, _h = path.at(t)
        held.append(x <= centre <= x + w)
        t = round(t + step, 6)
    return sum(held) / len(held)


def _turn_encode(part: Path, inputs: list[str], graph: str) -> Path:
    """One 3 s turn of a side-by-side composite: `graph` over `inputs`, H.264 and AAC."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph,
         "-map", "[v]", "-map", "[a]", "-t", "3", "-r", "25", "-c:v", "libx264",
         "-preset", "ultrafast", "-c:a", "aac", "-ar", "48000", str(part)],
        check=True,
    )  # fmt: skip
    return part


def _turns_join(work: Path, name: str, parts: list[Path]) -> Path:
    """The turns one after the other (ffmpeg's concat demuxer, no re-encode)."""
    listing = work / f"{name}-parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    video = work / f"{name}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
         str(listing), "-c", "copy", str(video)],
        check=True,
    )  # fmt: skip
    return video


def _side_by_side_truth(turns: list[str]) -> dict:
    """Where the two faces are and who speaks in each 3 s turn."""
    return {
        "faces": {"L": {"center_x": 560}, "R": {"center_x": 1360}},
        "turns": [{"from": 3 * i, "to": 3 * i + 3, "speaker": s} for i, s in enumerate(turns)],
    }
