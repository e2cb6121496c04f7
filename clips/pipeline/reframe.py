"""The crop path of a clip: where the target-aspect window sits in the source over time.

`crop_path(...)` takes the source size, the clip's [start, end] (source seconds), the
target aspect (9:16, 1:1, 4:5, 16:9), the source's shots, its face tracks
(`clips.pipeline.faces`) and, optionally, the audio loudness per window, and returns a
`CropPath`: keyframes {t, x, y, w, h, ease} relative to the clip start, and one entry
per shot with its layout:

- "fill": the crop window (the largest window of the target aspect; no zoom) follows the
  subject. It holds still while the face stays inside a dead zone around the window's
  centre, pans with an ease-in-out when it leaves, and cuts hard at shot boundaries and
  when the active speaker changes.
- "split": two crops (the two speakers) stacked (or side by side for landscape targets).
- "fit": the whole frame over a blurred copy of itself.

Layouts are chosen per shot ("auto"): no face or one face, or faces that fit in one
window together: fill. Several faces that do not: follow whoever speaks. Given the
source's voices (`voices`: speaker turns from `clips.pipeline.voices`), each voice is
first tied to the face whose mouth moves in that voice's turns over the whole range
(`clips.pipeline.speakers`), and the window holds that face while the voice speaks,
cutting to the next in the middle of the pause between two voices. Where no voice is
tied (a voice whose evidence is even between faces, or none given), who speaks is chosen
per 0.5 s window from three signals DESIGN.md measured (mouth movement relative to the rest
of the face, mouth movement less the rest of the face, and the correlation of mouth
movement with the audio's loudness over 2 s), each turned into each face's share and
averaged, the correlation counted twice (`CORRELATION_WEIGHT`). Differences across shot
cuts are dropped. The hold rule: the other face takes over only after it wins by 1.5x for
two windows in a row, and no sooner than `min_hold` after the last change; as the clip
is known in full, the change is placed where the new speaker's run began, not where it
was confirmed. When the signal is unsure for most of a shot (or turns come faster than
`min_turn`), two faces get "split", more get "fit": DESIGN.md found a split better than
a wrong guess.

A shot without a face (`faces` a FaceAnalysis with its framing passes): the window
follows a person found by pose or selfie segmentation (the head, with headroom); with no
person, it goes where the texture and motion are (`ContentGrid`s: the fill window holding
the most of it, ties to the content's centre of mass), never on flat background; where no
window holds `CONTENT_FIT_SHARE` of the content, or nothing stands out at all, the shot
gets "fit" (the whole frame over a blurred copy). The centre of the frame is no fallback
in itself: a centred crop comes only with `reframing=False` (why "off") or where nothing
of the picture was analysed (why "unknown"). Each shot records `why` (`WHY`) and a
`reason` in words. No side effects; the result is JSON-serialisable (`to_dict`).

Keyframe semantics (what `CropPath.at(t)` and the renderer do): a keyframe's `ease` says
how the window reaches it from the previous keyframe: "cut" (the previous position holds,
then jumps at `t`), "linear", or "inOut" (smoothstep). After the last keyframe the window
holds. Measured on the two-speakers dev videos (tests/clips/pipeline/test_reframe.py,
faces at their 12.5 fps default): the person speaking was in the window 100% of the
time on two-speakers-dev, 98% on the swaying one and 85% on a composite whose listener
mouths silently out of step with the speech, where movement alone gets 69% (a change
lags the turn by at most a 0.5 s window). With voices tied to faces (bench/speakers.py,
same faces and sound): 100%, 100% and 92%; 71% (56% before) where the listener mouths
in step with every turn, 100% (65% before) where they do so in half the turns.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faces import FaceAnalysis, FaceTrack
    from .speakers import VoiceTie

ASPECTS: dict[str, tuple[int, int]] = {
    "9:16": (9, 16),
    "1:1": (1, 1),
    "4:5": (4, 5),
    "16:9": (16, 9),
}
LAYOUTS = ("fill", "fit", "split")
# Why a shot was framed as it was (ShotLayout.why):
WHY = {
    "face": "a whole face (or faces), or whoever of them speaks",
    "partial_face": "a face cut by the frame's edge",
    "person": "a person whose face was not found (pose or silhouette)",
    "content": "no person: the part of the frame with texture or motion",
    "fit": "no window holds what is to be seen: the whole frame over a blurred copy",
    "asked": "the layout asked for in the clip's config",
    "override": "set by hand (PATCH /v1/clips/{id} cropOverride)",
    "off": "reframing turned off: a centred crop",
    "unknown": "no analysis of the picture was given: a centred crop",
}
# Content: a cell's texture and motion (ContentGrid) up to this is flat background.
CONTENT_FLOOR = 4.0
# Below this much energy in the whole frame (cells over the floor, summed), nothing
# stands out anywhere: the whole frame is shown (fit).
CONTENT_MIN_TOTAL = 40.0
# A fill window must hold this share of the content's energy, or the shot gets "fit".
# Measured on bench/framing.py's compositions (9:16 of 1280x720): an object, or a person
# whose face is hidden, 0.93-1.0; a picture across the whole frame, 0.61.
CONTENT_FIT_SHARE = 0.75
# A shot is framed on a person when one was found on this share of the samples checked.
PERSON_MIN_SHARE = 0.3
WINDOW = 0.5  # seconds per who-speaks decision
# How many times the correlation of mouth movement with the loudness counts against each of
# the two movement signals. Measured on the two-speakers dev videos and on a composite
# whose listener mouths silently out of step (tests/clips/pipeline/test_reframe.py): at 1,
# 1.00 / 0.96 / 0.75 of the time on the speaker; at 2, 1.00 / 0.98 / 0.85. A listener
# mouthing in step with the speech (the same timing) still fools it: 0.56.
CORRELATION_WEIGHT = 2
# A window whose voice is tied to a face (`voices`): that face's share of the evidence.
TIED_SHARE = 0.8


@dataclass
class Keyframe:
    t: float  # seconds from the clip's start
    x: int
    y: int
    w: int
    h: int
    ease: str = "linear"  # how the window gets here from the previous keyframe

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "x": self.x, "y": self.y, "w": self.w, "h": self.h, "ease": self.ease}


@dataclass
class ShotLayout:
    start: float  # seconds from the clip's start
    end: float
    layout: str  # fill | fit | split
    faces: int = 0  # face tracks seen in the shot
    # For split: the two crop windows, in display order (top/left first).
    panels: list[dict[str, int]] = field(default_factory=list)
    # Who the window follows: [{start, end, track}] (track None: centred or a group).
    speakers: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""  # in words, for people
    why: str = "unknown"  # one of WHY, for programs
    zoom: float = 1.0  # fill: the window shrunk by this about its centre (a hand override)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "layout": self.layout,
            "faces": self.faces,
            "reason": self.reason,
            "why": self.why,
        }
        if self.panels:
            data["panels"] = self.panels
        if self.zoom != 1.0:
            data["zoom"] = self.zoom
        if self.speakers:
            data["speakers"] = self.speakers
        return data


@dataclass
class CropPath:
    """Where the crop window sits over a clip; times relative to the clip's start."""

    source_width: int
    source_height: int
    aspect: str
    duration: float
    keyframes: list[Keyframe]
    shots: list[ShotLayout]
    reframing: bool = True

    @property
    def crop_size(self) -> tuple[int, int]:
        return self.keyframes[0].w, self.keyframes[0].h

    def at(self, t: float) -> tuple[int, int, int, int]:
        """The fill window (x, y, w, h) at `t` seconds from the clip's start (shrunk about
        its centre where the shot is zoomed)."""
        x, y = position_at(self.keyframes, t)
        w, h = self.crop_size
        zoom = self.shot_at(t).zoom if self.shots else 1.0
        if zoom > 1.0:
            zw, zh = max(2, int(w / zoom)), max(2, int(h / zoom))
            zw, zh = zw - zw % 2, zh - zh % 2
            return round(x) + (w - zw) // 2, round(y) + (h - zh) // 2, zw, zh
        return round(x), round(y), w, h

    def shot_at(self, t: float) -> ShotLayout:
        for shot in self.shots:
            if shot.start <= t < shot.end:
                return shot
        return self.shots[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sourceWidth": self.source_width,
            "sourceHeight": self.source_height,
            "aspect": self.aspect,
            "duration": self.duration,
            "reframing": self.reframing,
            "keyframes": [k.to_dict() for k in self.keyframes],
            "shots": [s.to_dict() for s in self.shots],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CropPath:
        return cls(
            source_width=int(data["sourceWidth"]),
            source_height=int(data["sourceHeight"]),
            aspect=data["aspect"],
            duration=float(data["duration"]),
            reframing=bool(data.get("reframing", True)),
            keyframes=[Keyframe(**k) for k in data["keyframes"]],
            shots=[
                ShotLayout(
                    start=float(s["start"]),
                    end=float(s["end"]),
                    layout=s["layout"],
                    faces=int(s.get("faces", 0)),
                    panels=list(s.get("panels") or []),
                    speakers=list(s.get("speakers") or []),
                    reason=s.get("reason", ""),
                    why=s.get("why", "unknown"),
                    zoom=float(s.get("zoom", 1.0)),
                )
                for s in data["shots"]
            ],
        )


def position_at(keyframes: Sequence[Keyframe], t: float) -> tuple[float, float]:
    """(x, y) of the window at `t` under the keyframe semantics of the module docstring."""
    if t <= keyframes[0].t:
        return keyframes[0].x, keyframes[0].y
    for before, after in zip(keyframes, keyframes[1:], strict=False):
        if t < after.t:
            if after.ease == "cut" or after.t <= before.t:
                return before.x, before.y
            u = (t - before.t) / (after.t - before.t)
            if after.ease == "inOut":
                u = u * u * (3 - 2 * u)
            return before.x + (after.x - before.x) * u, before.y + (after.y - before.y) * u
    return keyframes[-1].x, keyframes[-1].y


def parse_aspect(aspect: str | tuple[int, int]) -> tuple[int, int]:
    """(w, h) of "9:16"-style aspects (any "W:H" or a tuple)."""
    if isinstance(aspect, tuple):
        return int(aspect[0]), int(aspect[1])
    if aspect in ASPECTS:
        return ASPECTS[aspect]
    try:
        w, h = (int(part) for part in str(aspect).split(":"))
    except ValueError:
        raise ValueError(f"unknown aspect {aspect!r}: one of {', '.join(ASPECTS)}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"unknown aspect {aspect!r}")
    return w, h


def crop_size(
    source_width: int, source_height: int, aspect: str | tuple[int, int]
) -> tuple[int, int]:
    """The largest window of `aspect` inside the source, with even sides."""
    aw, ah = parse_aspect(aspect)
    if source_width * ah >= source_height * aw:  # the source is wider: full height
        h = source_height
        w = min(source_width, round(h * aw / ah))
    else:
        w = source_width
        h = min(source_height, round(w * ah / aw))
    return max(2, w - w % 2), max(2, h - h % 2)


# --- the crop path ----------------------------------------------------------------------


def crop_path(
    *,
    source_width: int,
    source_height: int,
    start: float,
    end: float,
    aspect: str | tuple[int, int] = "9:16",
    shots: Sequence[Any] | None = None,
    faces: FaceAnalysis | dict[str, Any] | Sequence[FaceTrack] | None = None,
    loudness: Sequence[float] | None = None,
    loudness_window: float = 0.1,
    voices: Any = None,
    reframing: bool = True,
    layout: str = "auto",
    dead_zone: float = 0.12,
    pan_speed: float = 1.0,
    switch_ratio: float = 1.5,
    switch_windows: int = 2,
    min_hold: float = 1.0,
    min_turn: float = 1.5,
    unsure_ratio: float = 1.25,
    unsure_share: float = 0.5,
    min_presence: float = 0.3,
) -> CropPath:
    """The crop path of the clip [`start`, `end`] (source seconds); see the module docstring.

    `shots`: the source's shots (objects or dicts with `start`/`end`, source seconds);
    None: one shot. `faces`: a FaceAnalysis (or its `to_dict()`), or its tracks.
    `loudness`: dBFS per `loudness_window` seconds from the source's start
    (`clips.pipeline.audio.AudioFeatures.loudness`). `voices`: the source's speaker
    turns (a `clips.pipeline.voices.VoiceAnalysis`, its `to_dict()`, or its turns): with
    them, each voice is tied to the face whose mouth moves in its turns
    (`clips.pipeline.speakers`) and the window holds that face while the voice speaks;
    where no voice is tied (silence, a voice without a face in view, even evidence),
    who speaks is read from the mouths against the loudness as before. `layout`:
    "auto", or "fill" / "fit" / "split" for every shot (split falls back to fill where a shot has fewer than two
    faces). `dead_zone`: how far (a share of the window's width) the face may drift from
    where the window last settled before it pans, at most as far as the face stays
    inside. `pan_speed`: window widths a second. A track counts in a shot when it covers
    `min_presence` of it.
    """
    if end <= start:
        raise ValueError(f"empty clip: start {start} >= end {end}")
    if layout not in ("auto", *LAYOUTS):
        raise ValueError(f"unknown layout {layout!r}: auto, fill, fit or split")
    aspect_name = aspect if isinstance(aspect, str) else f"{aspect[0]}:{aspect[1]}"
    cw, ch = crop_size(source_width, source_height, aspect)
    duration = round(end - start, 4)
    analysis = _analysis(faces)
    tracks = _tracks(faces)
    tie = _tie(voices, tracks, start, end)
    params = _Params(
        width=source_width,
        height=source_height,
        cw=cw,
        ch=ch,
        portrait=parse_aspect(aspect)[1] >= parse_aspect(aspect)[0],
        dead_zone=dead_zone,
        pan_speed=pan_speed,
        switch_ratio=switch_ratio,
        switch_windows=switch_windows,
        min_hold=min_hold,
        min_turn=min_turn,
        unsure_ratio=unsure_ratio,
        unsure_share=unsure_share,
        min_presence=min_presence,
        loudness=list(loudness) if loudness is not None else None,
        loudness_window=loudness_window,
        tie=tie,
    )

    keyframes: list[Keyframe] = []
    layouts: list[ShotLayout] = []
    for shot_start, shot_end in _clip_shots(shots, start, end):
        rel = (round(shot_start - start, 4), round(shot_end - start, 4))
        if not reframing:
            shot = ShotLayout(*rel, layout="fill", reason="centred", why="off")
            frames = [_centred(params, rel[0])]
        elif layout == "fit":
            shot = ShotLayout(*rel, layout="fit", reason="asked", why="asked")
            frames = [_centred(params, rel[0])]
        else:
            planned = _plan_shot(params, tracks, shot_start, shot_end, start, layout)
            if planned is None:  # no face: a person, else the content, else the whole frame
                planned = _plan_without_face(params, analysis, shot_start, shot_end, start, layout)
            shot, frames = planned
        layouts.append(shot)
        keyframes.extend(frames)
    return CropPath(
        source_width=source_width,
        source_height=source_height,
        aspect=aspect_name,
        duration=duration,
        keyframes=_tidy(keyframes),
        shots=layouts,
        reframing=reframing,
    )


@dataclass
class _Params:
    width: int
    height: int
    cw: int
    ch: int
    portrait: bool
    dead_zone: float
    pan_speed: float
    switch_ratio: float
    switch_windows: int
    min_hold: float
    min_turn: float
    unsure_ratio: float
    unsure_share: float
    min_presence: float
    loudness: list[float] | None
    loudness_window: float
    tie: VoiceTie | None = None


def _tie(voices: Any, tracks: list[FaceTrack], start: float, end: float) -> VoiceTie | None:
    """The voices of the clip's range tied to its faces; None without voices, or with
    fewer than two faces measured (nothing to choose between)."""
    if voices is None or sum(1 for t in tracks if t.lips) < 2:
        return None
    from .speakers import tie_voices
    from .voices import VoiceAnalysis

    if isinstance(voices, dict):
        voices = VoiceAnalysis.from_dict(voices)
    turns = voices.turns if isinstance(voices, VoiceAnalysis) else voices
    tie = tie_voices(turns, tracks, start=start, end=end)
    return tie if tie.evidence else None


def _analysis(faces: Any) -> FaceAnalysis | None:
    """The whole analysis (people, content) when `faces` is one, else None."""
    from .faces import FaceAnalysis

    if isinstance(faces, dict):
        return FaceAnalysis.from_dict(faces)
    return faces if isinstance(faces, FaceAnalysis) else None


def _tracks(faces: Any) -> list[FaceTrack]:
    from .faces import FaceAnalysis, FaceTrack

    if faces is None:
        return []
    if isinstance(faces, dict):
        faces = FaceAnalysis.from_dict(faces)
    if isinstance(faces, FaceAnalysis):
        return list(faces.tracks)
    return [t if isinstance(t, FaceTrack) else FaceTrack.from_dict(t) for t in faces]


def _clip_shots(shots: Sequence[Any] | None, start: float, end: float) -> list[tuple[float, float]]:
    """The shots' spans cut to the clip, in order; the clip itself when none overlap."""
    spans = []
    for shot in shots or []:
        s = float(shot["start"] if isinstance(shot, dict) else shot.start)
        e = float(shot["end"] if isinstance(shot, dict) else shot.end)
        s, e = max(s, start), min(e, end)
        if e - s > 1e-3:
            spans.append((s, e))
    spans.sort()
    if not spans:
        return [(start, end)]
    # No gaps: each shot runs to the next one's start, the first from the clip's start.
    joined = []
    for i, (s, _e) in enumerate(spans):
        s = start if i == 0 else s
        e = spans[i + 1][0] if i + 1 < len(spans) else end
        if e - s > 1e-3:
            joined.append((s, e))
    return joined


def _centred(p: _Params, t: float) -> Keyframe:
    return Keyframe(round(t, 4), (p.width - p.cw) // 2, (p.height - p.ch) // 2, p.cw, p.ch, "cut")


def _plan_shot(
    p: _Params,
    tracks: list[FaceTrack],
    shot_start: float,
    shot_end: float,
    clip_start: float,
    layout: str,
) -> tuple[ShotLayout, list[Keyframe]] | None:
    """The shot framed on its faces; None when it has none."""
    rel_start, rel_end = round(shot_start - clip_start, 4), round(shot_end - clip_start, 4)
    present = []
    for track in tracks:
        inside = [pt for pt in track.points if shot_start <= pt.t < shot_end]
        if (
            len(inside) >= 2
            and (inside[-1].t - inside[0].t) >= p.min_presence * (shot_end - shot_start) - 0.5
        ):
            present.append((track, inside))
    if not present:
        return None
    shot = ShotLayout(rel_start, rel_end, layout="fill", faces=len(present), why="face")
    if len(present) == 1 or (layout != "split" and _fit_together(p, [pts for _t, pts in present])):
        shot.reason = "one face" if len(present) == 1 else "faces fit together"
        if _mostly_partial([pts for _t, pts in present]):
            shot.why, shot.reason = "partial_face", shot.reason + ", cut by the frame's edge"
        subject = _group_series([pts for _t, pts in present])
        shot.speakers = [
            {
                "start": rel_start,
                "end": rel_end,
                "track": present[0][0].id if len(present) == 1 else None,
            }
        ]
        return shot, _follow(p, subject, shot_start, shot_end, clip_start)

    # Several faces that one window cannot hold: who speaks?
    windows, scores, tied = _speaker_scores(p, present, shot_start, shot_end)
    order = _hold_rule(p, scores)
    margins = []
    for row in scores:
        ranked = sorted(row, reverse=True)
        margins.append(ranked[0] / max(ranked[1], 1e-6))
    unsure = sum(m < p.unsure_ratio for m in margins) / max(1, len(margins))
    runs = _runs(order, windows, shot_end)
    mean_turn = (shot_end - shot_start) / max(1, len(runs))
    talk: dict[int, float] = {}
    for run_start, run_end, who in runs:
        talk[who] = talk.get(who, 0.0) + run_end - run_start
    wants_split = layout == "split" or (
        layout == "auto" and (unsure > p.unsure_share or (len(runs) > 1 and mean_turn < p.min_turn))
    )
    if wants_split:
        ranked = sorted(range(len(present)), key=lambda i: -talk.get(i, 0.0))
        if len(present) == 2 or layout == "split":
            pair = sorted(ranked[:2], key=lambda i: present[i][1][0].center[0])
            shot.layout = "split"
            shot.reason = (
                "asked"
                if layout == "split"
                else (
                    f"unsure who speaks ({unsure:.0%} of windows)"
                    if unsure > p.unsure_share
                    else f"turns of {mean_turn:.1f} s"
                )
            )
            if layout == "split":
                shot.why = "asked"
            shot.panels = [_panel(p, present[i][1]) for i in pair]
            shot.speakers = [
                {"start": rel_start, "end": rel_end, "track": present[i][0].id} for i in pair
            ]
            return shot, [_centred(p, rel_start)]
        shot.layout, shot.reason = "fit", f"{len(present)} faces, unsure who speaks"
        shot.why = "fit"
        return shot, [_centred(p, rel_start)]

    shot.reason = "following the speaker"
    if tied:
        shot.reason += f" (the voice tied to a face in {tied} of {len(scores)} windows)"
    frames: list[Keyframe] = []
    for run_start, run_end, who in runs:
        track, points = present[who]
        shot.speakers.append(
            {
                "start": round(run_start - clip_start, 4),
                "end": round(run_end - clip_start, 4),
                "track": track.id,
            }
        )
        inside = [pt for pt in points if run_start <= pt.t < run_end] or [
            min(points, key=lambda pt: abs(pt.t - run_start))
        ]
        frames.extend(_follow(p, _group_series([inside]), run_start, run_end, clip_start))
    return shot, frames


def _mostly_partial(series: list[list[Any]]) -> bool:
    points = [pt for pts in series for pt in pts]
    return sum(bool(getattr(pt, "partial", False)) for pt in points) > len(points) / 2


def _plan_without_face(
    p: _Params,
    analysis: FaceAnalysis | None,
    shot_start: float,
    shot_end: float,
    clip_start: float,
    layout: str,
) -> tuple[ShotLayout, list[Keyframe]]:
    """A shot without a face: framed on a person (pose or silhouette) when one was
    found, else on the content (texture and motion), else the whole frame (fit). Only
    where nothing of the picture was analysed is the crop centred (why "unknown")."""
    rel_start, rel_end = round(shot_start - clip_start, 4), round(shot_end - clip_start, 4)
    shot = ShotLayout(rel_start, rel_end, layout="fill")
    if analysis is None or not ({"people", "content"} & set(analysis.passes)):
        shot.reason, shot.why = "no face; the picture was not analysed", "unknown"
        return shot, [_centred(p, rel_start)]

    checked = [f for f in analysis.frames if f.people_checked and shot_start <= f.t < shot_end]
    with_person = [f for f in checked if f.people]
    if checked and len(with_person) >= PERSON_MIN_SHARE * len(checked):
        series = []
        for frame in with_person:
            person = max(frame.people, key=lambda b: b.w * b.h)
            series.append(
                (frame.t, float(person.head[0]), float(person.head[1]), person.w, person.h)
            )
        models = sorted({b.model for f in with_person for b in f.people})
        shot.why = "person"
        shot.reason = f"no face; a person found by {' and '.join(models)}"
        return shot, _follow(p, series, shot_start, shot_end, clip_start)

    grids = [g for g in analysis.content if shot_start <= g.t < shot_end]
    if not grids and analysis.content:  # a shot shorter than a grid's second
        middle = (shot_start + shot_end) / 2
        grids = [min(analysis.content, key=lambda g: abs(g.t - middle))]
    if not grids:
        shot.reason, shot.why = "no face; the picture was not analysed", "unknown"
        return shot, [_centred(p, rel_start)]
    import numpy as np

    mean = np.clip(np.mean([g.cells for g in grids], axis=0) - CONTENT_FLOOR, 0, None)
    placed = _place_on_content(p, mean)
    if placed is None:
        shot.layout, shot.why = "fit", "fit"
        shot.reason = "no face, no person, nothing stands out: the whole frame"
        return shot, [_centred(p, rel_start)]
    x, y, share = placed
    if share < CONTENT_FIT_SHARE and layout != "fill":
        shot.layout, shot.why = "fit", "fit"
        shot.reason = f"no face or person; a window holds {share:.0%} of the content"
        return shot, [_centred(p, rel_start)]
    shot.why = "content"
    shot.reason = f"no face or person; on the content ({share:.0%} of it in the window)"
    series = []
    for grid in grids:  # follow content that moves, within the dead zone's calm
        cells = np.clip(np.array(grid.cells, dtype=float) - CONTENT_FLOOR, 0, None)
        here = _place_on_content(p, cells)
        gx, gy = (here[0], here[1]) if here is not None else (x, y)
        series.append((grid.t, gx + p.cw / 2, gy + 0.42 * p.ch, p.cw * share, p.ch * share))
    if len(series) == 1:
        return shot, [_frame(p, rel_start, x, y, "cut")]
    return shot, _follow(p, series, shot_start, shot_end, clip_start)


def _place_on_content(p: _Params, cells: Any) -> tuple[float, float, float] | None:
    """(x, y) of the fill window holding the most content energy (`cells`: rows x cols,
    over the frame) and the share of it held; ties go to the window nearest the
    energy's centre of mass, never to the frame's centre as such. None when nothing
    stands out."""
    import numpy as np

    total = float(cells.sum())
    if total < CONTENT_MIN_TOTAL:
        return None
    x, share_x = _best_span(cells.sum(axis=0), p.width, p.cw)
    y, share_y = _best_span(cells.sum(axis=1), p.height, p.ch)
    # the window's share: of the energy in its columns, what lies in its rows too
    rows, cols = cells.shape
    c0, c1 = x / p.width * cols, (x + p.cw) / p.width * cols
    r0, r1 = y / p.height * rows, (y + p.ch) / p.height * rows
    held = _cell_sum(np.asarray(cells, dtype=float), r0, r1, c0, c1)
    return x, y, held / total


def _best_span(profile: Any, length: int, window: int) -> tuple[float, float]:
    """Where a `window` (pixels) along an axis of `length` pixels holds the most of
    `profile` (energy per cell along it), and that share."""
    import numpy as np

    profile = np.asarray(profile, dtype=float)
    total = float(profile.sum())
    if window >= length or total <= 0:
        return 0.0, 1.0
    edges = np.linspace(0, length, len(profile) + 1)
    cumulative = np.concatenate([[0.0], np.cumsum(profile)])
    starts = np.linspace(0, length - window, max(2, int((length - window) / 4) + 1))
    held = np.interp(starts + window, edges, cumulative) - np.interp(starts, edges, cumulative)
    centre = float((profile * (edges[:-1] + edges[1:]) / 2).sum() / total)
    best = held.max()
    near = starts[held >= best - 1e-6 * max(1.0, best)]
    start = float(near[np.argmin(np.abs(near + window / 2 - centre))])
    return start, float(best / total)


def _cell_sum(cells: Any, r0: float, r1: float, c0: float, c1: float) -> float:
    """The sum of `cells` over the fractional block [r0, r1) x [c0, c1)."""
    import numpy as np

    rows, cols = cells.shape

    def weights(a: float, b: float, n: int) -> Any:
        idx = np.arange(n)
        return np.clip(np.minimum(idx + 1, b) - np.maximum(idx, a), 0, 1)

    return float(weights(r0, r1, rows) @ cells @ weights(c0, c1, cols))


def _fit_together(p: _Params, series: list[list[Any]]) -> bool:
    boxes = [_median_box(pts) for pts in series]
    x0 = min(b[0] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y0 = min(b[1] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x1 - x0) * 1.1 <= p.cw and (y1 - y0) * 1.1 <= p.ch


def _median_box(points: list[Any]) -> tuple[float, float, float, float]:
    return (
        statistics.median(pt.x for pt in points),
        statistics.median(pt.y for pt in points),
        statistics.median(pt.w for pt in points),
        statistics.median(pt.h for pt in points),
    )


def _group_series(series: list[list[Any]]) -> list[tuple[float, float, float, float, float]]:
    """(t, cx, cy, w, h) of the subject (the union of the faces) at each sample time."""
    times = sorted({round(pt.t, 3) for pts in series for pt in pts})
    out = []
    for t in times:
        boxes = []
        for pts in series:
            nearest = min(pts, key=lambda pt: abs(pt.t - t))
            if abs(nearest.t - t) <= 1.0:
                boxes.append(nearest)
        x0 = min(b.x for b in boxes)
        x1 = max(b.x + b.w for b in boxes)
        y0 = min(b.y for b in boxes)
        y1 = max(b.y + b.h for b in boxes)
        out.append((t, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0))
    return out


def _follow(
    p: _Params,
    subject: list[tuple[float, float, float, float, float]],
    start: float,
    end: float,
    clip_start: float,
) -> list[Keyframe]:
    """Keyframes that keep `subject` in the window over [start, end] (source seconds):
    a cut to it at `start`, then holds and eased pans."""

    def desired(cx: float, cy: float) -> tuple[float, float]:
        x = min(max(cx - p.cw / 2, 0), p.width - p.cw)
        # Headroom: the face a little above the middle where the window can move up and down.
        y = min(max(cy - 0.42 * p.ch, 0), p.height - p.ch)
        return x, y

    # A centred median over five samples (a second at 5 fps) takes out the detector's jitter.
    smoothed = []
    for i, (t, _cx, _cy, w, h) in enumerate(subject):
        near = subject[max(0, i - 2) : i + 3]
        cx = statistics.median(s[1] for s in near)
        cy = statistics.median(s[2] for s in near)
        smoothed.append((t, *desired(cx, cy), w, h))
    face_w = statistics.median(s[3] for s in subject)
    face_h = statistics.median(s[4] for s in subject)
    slack_x = max(0.02 * p.cw, min(p.dead_zone * p.cw, (p.cw - face_w) / 2))
    slack_y = max(0.02 * p.ch, min(p.dead_zone * p.ch, (p.ch - face_h) / 2))

    first = min(smoothed, key=lambda s: abs(s[0] - start))
    x, y = first[1], first[2]
    frames = [_frame(p, start - clip_start, x, y, "cut")]
    busy_until = start
    for t, dx, dy, _w, _h in smoothed:
        if t <= start or t >= end or t < busy_until:
            continue
        if abs(dx - x) <= slack_x and abs(dy - y) <= slack_y:
            continue
        distance = max(abs(dx - x) / p.cw, abs(dy - y) / p.ch)
        duration = min(max(distance / p.pan_speed, 0.3), 1.2, end - t)
        if duration <= 0.05:
            continue
        frames.append(_frame(p, t - clip_start, x, y, "linear"))
        frames.append(_frame(p, t + duration - clip_start, dx, dy, "inOut"))
        x, y = dx, dy
        busy_until = t + duration
    return frames


def _frame(p: _Params, t: float, x: float, y: float, ease: str) -> Keyframe:
    return Keyframe(round(t, 4), int(round(x)), int(round(y)), p.cw, p.ch, ease)


def _tidy(frames: list[Keyframe]) -> list[Keyframe]:
    """Drop keyframes that change nothing: one at the position the window already has,
    unless an eased move starts from it (it then says when the move begins)."""
    out: list[Keyframe] = []
    for index, frame in enumerate(frames):
        following = frames[index + 1] if index + 1 < len(frames) else None
        still = bool(out) and (frame.x, frame.y) == (out[-1].x, out[-1].y)
        starts_move = (
            following is not None
            and following.ease != "cut"
            and ((following.x, following.y) != (frame.x, frame.y))
        )
        if still and not starts_move:
            continue
        out.append(frame)
    if out and out[0].t > 0:
        out[0].t = 0.0
    return out


def _panel(p: _Params, points: list[Any]) -> dict[str, int]:
    """A split panel's window around a face: the target's half-aspect, about 2.6 face
    heights tall, the face a little above the middle."""
    x, y, w, h = _median_box(points)
    cx, cy = x + w / 2, y + h / 2
    if p.portrait:  # stacked: each panel is as wide as the output, half as tall
        aspect = p.cw / (p.ch / 2)
    else:  # side by side
        aspect = (p.cw / 2) / p.ch
    ph = min(p.height, max(2.6 * h, 0.35 * p.height))
    pw = ph * aspect
    if pw > p.width:
        pw = p.width
        ph = pw / aspect
    px = min(max(cx - pw / 2, 0), p.width - pw)
    py = min(max(cy - 0.45 * ph, 0), p.height - ph)
    pw_i, ph_i = int(pw) - int(pw) % 2, int(ph) - int(ph) % 2
    return {"x": int(px), "y": int(py), "w": pw_i, "h": ph_i}


# --- who speaks ----------------------------------------------------------------------------


def _speaker_scores(
    p: _Params, present: list[tuple[FaceTrack, list[Any]]], shot_start: float, shot_end: float
) -> tuple[list[float], list[list[float]], int]:
    """Window starts, per window each face's share of the speaking evidence, and how
    many windows a voice tied to a face decided."""
    import numpy as np

    # A point's mouth value spans the frames since the previous sample: the first point
    # of a shot may straddle the cut.
    usable = [
        [pt for pt in pts if pt.mouth is not None and pt.t > shot_start + 0.25]
        for _t, pts in present
    ]
    windows = list(np.arange(shot_start, shot_end - 1e-6, WINDOW)) or [shot_start]
    scores = []
    ids = [track.id for track, _pts in present]
    faces_tied = _tied_faces(p.tie, windows, shot_end, ids) if p.tie is not None else {}
    for w0 in windows:
        w1 = min(w0 + WINDOW, shot_end)
        tied = faces_tied.get(w0)
        if tied is not None:
            # The voice speaking now is tied to a face over the whole range: that face,
            # decisively (past the hold rule's switch ratio and the unsure margin).
            rest = (1.0 - TIED_SHARE) / max(1, len(ids) - 1)
            scores.append([TIED_SHARE if i == tied else rest for i in ids])
            continue
        ratio, excess, corr = [], [], []
        for pts in usable:
            here = [pt for pt in pts if w0 < pt.t <= w1 + 1e-6]
            ratio.append(
                statistics.median(pt.mouth / (pt.face + 0.5) for pt in here) if here else 0.0
            )
            excess.append(
                statistics.median(max(pt.mouth - pt.face, 0.0) for pt in here) if here else 0.0
            )
            if p.loudness is not None:
                mid = (w0 + w1) / 2
                near = [pt for pt in pts if mid - 1.0 < pt.t <= mid + 1.0]
                corr.append(_loudness_correlation(p, near))
        shares = [_shares(ratio, 1e-3), _shares(excess, 0.05)]
        if corr:
            # Movement alone cannot tell a speaker from a listener who moves their mouth
            # (laughs, mouths along, chews); only its timing against the sound can.
            shares += [_shares([c + 1.0 for c in corr], 0.0)] * CORRELATION_WEIGHT
        scores.append([float(np.mean(col)) for col in zip(*shares, strict=True)])
    return [float(w) for w in windows], scores, len(faces_tied)


def _tied_faces(
    tie: VoiceTie, windows: list[float], shot_end: float, ids: list[int]
) -> dict[float, int]:
    """The face tied to the voice speaking in each window (window start -> track id).
    Through a pause (no voice) the face holds; a pause between two faces' voices is
    split in the middle (the cut falls between the turns, not when the next voice is
    first heard), and the first face holds from the shot's start. Windows where a voice
    speaks that no face is tied to, and the half of a pause next to one, are left out:
    the old reading decides there."""
    voiced = [tie.voice_at(w0, min(w0 + WINDOW, shot_end)) for w0 in windows]
    faces = [tie.face_for(v, ids) if v is not None else None for v in voiced]
    out = {w: f for w, f in zip(windows, faces, strict=True) if f is not None}
    index = 0
    while index < len(windows):
        if voiced[index] is not None:
            index += 1
            continue
        end = index
        while end < len(windows) and voiced[end] is None:
            end += 1
        before = faces[index - 1] if index > 0 else None
        after = faces[end] if end < len(windows) else None
        # the pause's middle, in time: from the first silent window to the next voice
        middle = (windows[index] + (windows[end] if end < len(windows) else shot_end)) / 2
        for k in range(index, end):
            if index == 0:  # before the shot's first voice: its face
                face = after
            elif end == len(windows):  # after the last voice: its face holds
                face = before
            else:  # between two voices: the first half to one, the second to the other
                face = after if windows[k] + WINDOW / 2 >= middle else before
            if face is not None:
                out[windows[k]] = face
        index = end
    return out


def _shares(values: list[float], floor: float) -> list[float]:
    padded = [max(v, 0.0) + floor for v in values]
    total = sum(padded)
    if total <= 0:
        return [1.0 / len(values)] * len(values)
    return [v / total for v in padded]


def _loudness_correlation(p: _Params, points: list[Any]) -> float:
    import numpy as np

    assert p.loudness is not None
    if len(points) < 4:
        return 0.0
    mouth = np.array([pt.mouth for pt in points], dtype=float)
    # The mouth value covers the ~0.2 s before its sample: compare with the sound then.
    index = [
        min(len(p.loudness) - 1, max(0, int((pt.t - 0.1) / p.loudness_window))) for pt in points
    ]
    sound = 10 ** (np.array([p.loudness[i] for i in index], dtype=float) / 20)
    if mouth.std() == 0 or sound.std() == 0:
        return 0.0
    value = float(np.corrcoef(mouth, sound)[0, 1])
    return 0.0 if math.isnan(value) else value


def _hold_rule(p: _Params, scores: list[list[float]]) -> list[int]:
    """The face followed in each window: the best at first, then a change only when
    another wins by `switch_ratio` for `switch_windows` windows in a row, at least
    `min_hold` after the last change; the change is dated back to where its run began."""
    if not scores:
        return []
    first = scores[: p.switch_windows]
    current = max(range(len(scores[0])), key=lambda i: sum(row[i] for row in first))
    order: list[int] = []
    candidate, run, last_change = None, 0, -math.inf
    hold_windows = p.min_hold / WINDOW
    for index, row in enumerate(scores):
        best = max(range(len(row)), key=lambda i: row[i])
        if best != current and row[best] >= p.switch_ratio * row[current]:
            run = run + 1 if candidate == best else 1
            candidate = best
            begins = index - run + 1
            if run >= p.switch_windows and begins - last_change >= hold_windows:
                for k in range(begins, index):
                    order[k] = best
                current, candidate, run, last_change = best, None, 0, begins
        else:
            candidate, run = None, 0
        order.append(current)
    return order


def _runs(order: list[int], windows: list[float], end: float) -> list[tuple[float, float, int]]:
    runs: list[tuple[float, float, int]] = []
    for index, who in enumerate(order):
        if runs and runs[-1][2] == who:
            continue
        if runs:
            runs[-1] = (runs[-1][0], windows[index], runs[-1][2])
        runs.append((windows[index], end, who))
    return runs


# --- hand overrides -------------------------------------------------------------------------

OVERRIDE_LAYOUTS = LAYOUTS
MAX_ZOOM = 4.0


def apply_override(
    path: CropPath,
    override: dict[str, Any] | None,
    *,
    clip_start: float,
    faces: FaceAnalysis | dict[str, Any] | Sequence[FaceTrack] | None = None,
    by_layout: dict[str, CropPath] | None = None,
) -> CropPath:
    """`path` with a hand override laid over it. `override` is in source seconds, so that
    it outlives a re-cut of the clip's range:

    - "shots": [{start, end, and one of: center {x, y} (the window's centre, source
      pixels; optional "zoom"), face (a face track's id), layout (fill | fit | split)}]:
      each applies to the shots of `path` that lie inside [start, end] (a shot the new
      range cut short included); shots no longer in the range are passed over;
    - "keyframes": [{t, x, y, zoom}] (x, y the window's centre): the whole clip follows
      them instead (linear moves between them, the zoom held from each to the next).

    `by_layout`: the automatic path of the same clip computed with layout "fill" and
    "split" (for a shot given one of those layouts). Shots overridden say why
    "override". No side effects."""
    if not override:
        return path
    import copy

    path = copy.deepcopy(path)
    cw, ch = path.crop_size
    width, height = path.source_width, path.source_height

    def window(cx: float, cy: float) -> tuple[int, int]:
        x = min(max(cx - cw / 2, 0), width - cw)
        y = min(max(cy - ch / 2, 0), height - ch)
        return int(round(x)), int(round(y))

    if override.get("keyframes"):
        points = sorted(override["keyframes"], key=lambda k: k["t"])
        points = [dict(k, t=round(k["t"] - clip_start, 4)) for k in points]
        keyframes, shots = [], []
        for index, point in enumerate(points):
            t = max(0.0, min(point["t"], path.duration))
            x, y = window(point["x"], point["y"])
            keyframes.append(Keyframe(t, x, y, cw, ch, "cut" if index == 0 else "linear"))
            zoom = min(MAX_ZOOM, max(1.0, float(point.get("zoom", 1.0))))
            if shots and shots[-1].zoom == zoom:
                continue
            if shots:
                shots[-1].end = t
            shots.append(
                ShotLayout(t, path.duration, "fill", reason="keyframes set by hand",
                           why="override", zoom=zoom)
            )  # fmt: skip
        shots = [s for s in shots if s.end - s.start > 1e-3] or shots[-1:]
        shots[0].start = 0.0
        path.keyframes, path.shots = _tidy(keyframes), shots
        return path

    tracks = {t.id: t for t in _tracks(faces)}
    per_shot = _keyframes_by_shot(path)
    for index, shot in enumerate(path.shots):
        source = (clip_start + shot.start, clip_start + shot.end)
        rule = next(
            (
                r
                for r in override.get("shots", [])
                if r["start"] - 0.05 <= source[0] and source[1] <= r["end"] + 0.05
            ),
            None,
        )
        if rule is None:
            continue
        shot.why, shot.zoom, shot.panels, shot.speakers = "override", 1.0, [], []
        if "center" in rule:
            x, y = window(rule["center"]["x"], rule["center"]["y"])
            shot.layout, shot.reason = "fill", "centre set by hand"
            shot.zoom = min(MAX_ZOOM, max(1.0, float(rule.get("zoom", 1.0))))
            per_shot[index] = [Keyframe(shot.start, x, y, cw, ch, "cut")]
        elif "face" in rule:
            track = tracks.get(int(rule["face"]))
            inside = [pt for pt in (track.points if track else []) if source[0] <= pt.t < source[1]]
            if not inside:  # that face is not in this shot (any more): leave it automatic
                shot.why, shot.reason = "override", f"face {rule['face']} not in this shot"
                continue
            shot.layout, shot.reason = "fill", f"face {rule['face']} chosen by hand"
            shot.speakers = [{"start": shot.start, "end": shot.end, "track": track.id}]
            params = _Params(
                width=width, height=height, cw=cw, ch=ch, portrait=ch >= cw, dead_zone=0.12,
                pan_speed=1.0, switch_ratio=1.5, switch_windows=2, min_hold=1.0,
                min_turn=1.5, unsure_ratio=1.25, unsure_share=0.5, min_presence=0.3,
                loudness=None, loudness_window=0.1,
            )  # fmt: skip
            per_shot[index] = _follow(
                params, _group_series([inside]), source[0], source[1], clip_start
            )
        else:
            layout = rule["layout"]
            shot.reason = f"layout {layout} chosen by hand"
            if layout == "fit":
                shot.layout = "fit"
                continue
            auto = (by_layout or {}).get(layout)
            twin = None
            if auto is not None:
                twin = next((s for s in auto.shots if abs(s.start - shot.start) < 1e-3), None)
            if twin is None:
                shot.layout = "fill"
                continue
            shot.layout, shot.panels, shot.speakers = twin.layout, twin.panels, twin.speakers
            if twin.layout == "fill":
                per_shot[index] = _keyframes_by_shot(auto)[auto.shots.index(twin)]
    path.keyframes = _tidy([k for frames in per_shot for k in frames])
    return path


def _named_face(
    tracks: dict[int, FaceTrack], rule: dict[str, Any], source: tuple[float, float]
) -> tuple[FaceTrack | None, list[Any]]:
    """The face a rule names, and its points in the shot: the track whose box in the shot
    best overlaps the rule's `box` (track ids change when a re-cut analyses another
    range), else the track of that id."""
    from .faces import iou

    best, best_overlap = None, 0.3
    for track in tracks.values():
        inside = [pt for pt in track.points if source[0] <= pt.t < source[1]]
        if inside and rule.get("box"):
            overlap = iou(_median_box(inside), tuple(rule["box"]))
            if overlap > best_overlap:
                best, best_overlap = (track, inside), overlap
    if best is not None:
        return best
    track = tracks.get(int(rule["face"]))
    return track, [pt for pt in (track.points if track else []) if source[0] <= pt.t < source[1]]


def _keyframes_by_shot(path: CropPath) -> list[list[Keyframe]]:
    """Each shot's keyframes, the first a cut to where the window is at its start."""
    out = []
    cw, ch = path.crop_size
    for shot in path.shots:
        x, y = position_at(path.keyframes, shot.start)
        frames = [Keyframe(shot.start, int(round(x)), int(round(y)), cw, ch, "cut")]
        frames += [k for k in path.keyframes if shot.start < k.t < shot.end]
        out.append(frames)
    return out
