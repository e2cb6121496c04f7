"""Faces of a source, found on a small decode and linked into tracks.

`detect_faces(path, start=None, end=None)` has ffmpeg decode the video (or the range
asked) once (`clips.pipeline.frames`), scaled to fit 640x360 (never up) and at `motion_fps` frames a second, runs
the face detector on every frame that falls on the `sample_fps` grid (5 a second), and
returns a `FaceAnalysis`:

- `frames`: per sampled frame, each face's box (x, y, w, h in source pixels) and score;
- `tracks`: the boxes linked across samples into face tracks (greedy overlap matching;
  a track survives `max_gap` seconds without a detection), each point carrying how much
  that face's mouth moved since the previous sample (`mouth`) and how much the rest of
  the face did (`face`), measured on every decoded frame in between. Who is speaking is
  decided from those in `clips.pipeline.reframe`. A difference across a sudden change of
  the whole frame (a cut, a flash) is dropped here (`None`); `reframe` also drops the
  first point of every shot, as DESIGN.md asks;
- the lips pass (`lips=True`): on every decoded frame where two or more faces are in
  view, each face's mouth opening from MediaPipe's face mesh (`FaceTrack.lips`: inner-lip
  gap over face height), from which `clips.pipeline.speakers` ties voices to faces. One
  face alone is not measured (there is nobody to choose between); it costs 14-22 ms per
  face and frame.

No side effects. Raises StageError when ffmpeg cannot decode the file.

Detectors (`detector=`), chosen by name like the transcription engines:
- "mediapipe" (default): MediaPipe 0.10.21's full-range BlazeFace (`model_selection=1`),
  whose model ships inside the wheel. Measured in DESIGN.md: recall 1.0 on the GRID media,
  tilted and dark faces included, 0.017 false boxes a frame, 7-9 ms a frame at 640x360.
- "haar": OpenCV's frontal-face Haar cascade with `equalizeHist` and a minimum face of an
  eighth of the frame height: recall 1.0 on frontal faces, 0.62 tilted, ~49 ms a frame.
  Used when MediaPipe cannot be imported.

Why a decode at `motion_fps` (12.5 a second from a 25 fps source: every n-th frame, n
whole) and detection at `sample_fps`: mouth movement is a few hertz, so the activity
measure needs more frames than the boxes do, while boxes held for 0.2 s are close enough
for a crop path. Measured on the two-speakers dev videos (1080p, 24 s, on this 2-core
machine while others worked): the speaker followed 96-100% of the time at 12.5 fps and
94-100% at 25 fps; 9-11 s against 10-12 s, of which ffmpeg's decode alone is 5-7 s.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from clypai.lib import ffmpeg

from .base import StageError
from .frames import FrameReader

if TYPE_CHECKING:
    import numpy as np

    from .probe import ProbeResult

logger = logging.getLogger(__name__)

ANALYSIS_MAX = (640, 360)  # long side, short side
# A sampled frame whose mean change (0-255 grey levels) exceeds this is a shot cut or a
# flash: the mouth difference across it says nothing about speech.
CUT_DIFFERENCE = 28.0
POINT_FIELDS = ("t", "x", "y", "w", "h", "score", "mouth", "face", "partial")


@dataclass(frozen=True)
class FaceBox:
    """One face on one sampled frame, in source (display) pixels."""

    x: int
    y: int
    w: int
    h: int
    score: float
    mouth: tuple[int, int] | None = None  # the mouth centre, where the detector gives it
    partial: bool = False  # the face runs past the frame's edge (found on the edge pass)

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": self.h,
            "score": self.score,
        }
        if self.mouth is not None:
            data["mouth"] = list(self.mouth)
        if self.partial:
            data["partial"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceBox:
        mouth = data.get("mouth")
        return cls(
            x=int(data["x"]),
            y=int(data["y"]),
            w=int(data["w"]),
            h=int(data["h"]),
            score=float(data.get("score", 1.0)),
            mouth=(int(mouth[0]), int(mouth[1])) if mouth else None,
            partial=bool(data.get("partial", False)),
        )


@dataclass(frozen=True)
class PersonBox:
    """A person found without a face (MediaPipe pose, else selfie segmentation), in
    source pixels: the body's box and where the head is (the top of the body when the
    model gives no head)."""

    x: int
    y: int
    w: int
    h: int
    head: tuple[int, int]
    score: float
    model: str  # "pose" | "segmentation"

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": self.h,
            "head": list(self.head),
            "score": self.score,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonBox:
        return cls(
            x=int(data["x"]),
            y=int(data["y"]),
            w=int(data["w"]),
            h=int(data["h"]),
            head=(int(data["head"][0]), int(data["head"][1])),
            score=float(data.get("score", 1.0)),
            model=str(data.get("model", "")),
        )


@dataclass
class ContentGrid:
    """How much there is to see in each cell of a coarse grid over the frame (rows of
    `FaceAnalysis.content_size[0]` cells): texture (edge energy) plus motion, averaged
    over the samples of about a second centred on `t`; 0 is a flat, still surface."""

    t: float
    cells: list[list[int]]


@dataclass
class FaceFrame:
    """The faces found on one sampled frame; `t` in seconds from the source's start.
    `people`: persons found where no face was, on the samples where that was looked for
    (`people_checked`)."""

    t: float
    boxes: list[FaceBox]
    people: list[PersonBox] = field(default_factory=list)
    people_checked: bool = False


@dataclass
class TrackPoint:
    t: float
    x: int
    y: int
    w: int
    h: int
    score: float
    # Mean absolute grey-level change per decoded frame since the previous sample, in the
    # mouth region and in the rest of the face; None when a shot cut lies in between or
    # the track has no earlier point.
    mouth: float | None = None
    face: float | None = None
    partial: bool = False  # the face runs past the frame's edge

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


@dataclass
class FaceTrack:
    """One face followed across samples."""

    id: int
    points: list[TrackPoint] = field(default_factory=list)
    # Mouth opening from MediaPipe's face mesh on every decoded frame where two or more
    # faces were in view (the lips pass): [t, inner-lip gap / face height, or None where
    # the mesh found no face]. Who speaks is tied to a voice from it (`speakers`).
    lips: list[list[float | None]] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.points[0].t

    @property
    def end(self) -> float:
        return self.points[-1].t

    @property
    def mean_size(self) -> float:
        return sum(p.h for p in self.points) / len(self.points)

    def point_at(self, t: float, hold: float = 0.5) -> TrackPoint | None:
        """The track's point nearest before `t` (or just after its start), held for `hold`
        seconds past its last point; None outside."""
        import bisect

        if not self.points or t < self.start - hold or t > self.end + hold:
            return None
        times = [p.t for p in self.points]
        index = bisect.bisect_right(times, t) - 1
        return self.points[max(0, index)]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "points": [[getattr(p, name) for name in POINT_FIELDS] for p in self.points],
        }
        if self.lips:
            data["lips"] = self.lips
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceTrack:
        points = [
            TrackPoint(**dict(zip(POINT_FIELDS, row, strict=False))) for row in data["points"]
        ]
        lips = [[float(t), None if v is None else float(v)] for t, v in data.get("lips", [])]
        return cls(id=int(data["id"]), points=points, lips=lips)


@dataclass
class FaceAnalysis:
    """Faces of a source (or of the range [start, end] of it); JSON-serialisable."""

    width: int  # source (display) size
    height: int
    start: float
    end: float
    sample_fps: float
    detector: str
    frames: list[FaceFrame]
    tracks: list[FaceTrack]
    analysis_size: tuple[int, int] = (0, 0)
    motion_fps: float = 0.0
    content: list[ContentGrid] = field(default_factory=list)
    content_size: tuple[int, int] = (0, 0)  # cells across, cells down
    # which passes ran: "edges" (faces cut by the frame), "people", "content"
    passes: tuple[str, ...] = ()

    def tracks_between(self, start: float, end: float) -> list[FaceTrack]:
        return [t for t in self.tracks if t.end >= start and t.start <= end]

    def to_dict(self, *, include_frames: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "width": self.width,
            "height": self.height,
            "start": self.start,
            "end": self.end,
            "sampleFps": self.sample_fps,
            "motionFps": self.motion_fps,
            "analysisSize": list(self.analysis_size),
            "detector": self.detector,
            "pointFields": list(POINT_FIELDS),
            "tracks": [track.to_dict() for track in self.tracks],
        }
        if self.passes:
            data["passes"] = list(self.passes)
        if self.content:
            data["contentSize"] = list(self.content_size)
            data["content"] = [{"t": c.t, "cells": c.cells} for c in self.content]
        if include_frames:
            data["frames"] = [_frame_dict(f) for f in self.frames]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceAnalysis:
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            start=float(data.get("start", 0.0)),
            end=float(data.get("end", 0.0)),
            sample_fps=float(data.get("sampleFps", 5.0)),
            motion_fps=float(data.get("motionFps", 0.0)),
            analysis_size=tuple(data.get("analysisSize") or (0, 0)),  # type: ignore[arg-type]
            detector=data.get("detector", ""),
            frames=[
                FaceFrame(
                    t=float(f["t"]),
                    boxes=[FaceBox.from_dict(b) for b in f["boxes"]],
                    people=[PersonBox.from_dict(b) for b in f.get("people", [])],
                    people_checked="people" in f,
                )
                for f in data.get("frames", [])
            ],
            tracks=[FaceTrack.from_dict(t) for t in data.get("tracks", [])],
            content=[
                ContentGrid(t=float(c["t"]), cells=[list(row) for row in c["cells"]])
                for c in data.get("content", [])
            ],
            content_size=tuple(data.get("contentSize") or (0, 0)),  # type: ignore[arg-type]
            passes=tuple(data.get("passes") or ()),
        )


def _frame_dict(frame: FaceFrame) -> dict[str, Any]:
    data: dict[str, Any] = {"t": frame.t, "boxes": [b.to_dict() for b in frame.boxes]}
    if frame.people_checked:
        data["people"] = [p.to_dict() for p in frame.people]
    return data


# --- detectors --------------------------------------------------------------------------


class FaceDetector(Protocol):
    """Finds faces on one RGB frame (H x W x 3, uint8): boxes in that frame's pixels."""

    name: str

    def detect(self, rgb: np.ndarray, gray: np.ndarray) -> list[FaceBox]: ...

    def close(self) -> None: ...


_DETECTORS: dict[str, type] = {}


def register(cls: type) -> type:
    _DETECTORS[cls.name] = cls
    return cls


@register
class MediaPipeDetector:
    """MediaPipe's BlazeFace, full range (faces up to ~5 m from the camera)."""

    name = "mediapipe"

    def __init__(self, min_score: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")  # its C++ logging is chatty
        from mediapipe.python.solutions import face_detection

        self._model = face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_score
        )

    def detect(self, rgb: np.ndarray, gray: np.ndarray) -> list[FaceBox]:
        height, width = rgb.shape[:2]
        result = self._model.process(rgb)
        boxes = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            x0 = max(0.0, box.xmin) * width
            y0 = max(0.0, box.ymin) * height
            x1 = min(1.0, box.xmin + box.width) * width
            y1 = min(1.0, box.ymin + box.height) * height
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            keypoints = detection.location_data.relative_keypoints
            mouth = None
            if len(keypoints) > 3:  # right eye, left eye, nose tip, mouth centre, ears
                mouth = (round(keypoints[3].x * width), round(keypoints[3].y * height))
            boxes.append(
                FaceBox(
                    round(x0),
                    round(y0),
                    round(x1 - x0),
                    round(y1 - y0),
                    round(float(detection.score[0]), 3),
                    mouth,
                )
            )
        return boxes

    def close(self) -> None:
        self._model.close()


@register
class HaarDetector:
    """OpenCV's frontal-face Haar cascade (the fallback)."""

    name = "haar"

    def __init__(self, min_score: float = 0.0):
        import cv2

        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise StageError(
                "Clip generation failed: the face detector could not load its model",
                {"detector": self.name, "model": path},
                permanent=False,
            )
        self._min_score = min_score

    def detect(self, rgb: np.ndarray, gray: np.ndarray) -> list[FaceBox]:
        import cv2

        equalised = cv2.equalizeHist(gray)
        side = max(12, gray.shape[0] // 8)
        found, _levels, weights = self._cascade.detectMultiScale3(
            equalised,
            scaleFactor=1.1,
            minNeighbors=5,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        boxes = []
        for (x, y, w, h), weight in zip(found, weights, strict=False):
            # Haar's level weight is unbounded; squash it into (0, 1) to read like a score.
            score = round(1.0 / (1.0 + math.exp(-float(weight) / 2.0)), 3)
            if score < self._min_score:
                continue
            boxes.append(
                FaceBox(int(x), int(y), int(w), int(h), score, (int(x + w / 2), int(y + 0.78 * h)))
            )
        return boxes

    def close(self) -> None:
        pass


def available_detectors() -> list[str]:
    return sorted(_DETECTORS)


def get_detector(name: str = "mediapipe", *, min_score: float = 0.5) -> FaceDetector:
    """The detector called `name`; "mediapipe" falls back to "haar" when MediaPipe cannot
    be imported (a machine installed without it)."""
    try:
        cls = _DETECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown face detector {name!r}: {', '.join(available_detectors())}"
        ) from None
    try:
        return cls(min_score=min_score)
    except ImportError as exc:
        if name == "haar":
            raise
        logger.warning("face detector %s unavailable (%s); using haar", name, exc)
        return HaarDetector()


_shared = threading.local()


def shared_detector(name: str = "mediapipe", *, min_score: float = 0.5) -> FaceDetector:
    """The detector called `name`, built once per thread and kept: loading MediaPipe's
    graph for every clip (faces, then the thumbnail) cost more than detecting. Never
    close it; `get_detector` gives one of your own."""
    cache = getattr(_shared, "detectors", None)
    if cache is None:
        cache = _shared.detectors = {}
    key = (name, min_score)
    if key not in cache:
        cache[key] = get_detector(name, min_score=min_score)
    return cache[key]


# --- faces cut by the frame's edge, people without a face, content ---------------------

# The edge pass: each side's strip of the frame, mirrored outwards, so that half a face at
# the border reads as a whole (faces are nearly symmetric) and the detector finds it.
EDGE_STRIP = 0.2  # of the frame's width, each side
EDGE_PAD = 0.15  # the mirrored border, of the frame's width
EDGE_GAP = 16  # grey pixels between the two strips
# A box from the edge pass counts when this much of it lies inside the frame (less: the
# mirror image of a face that is inside), and is "partial" when less than PARTIAL is.
EDGE_MIN_INSIDE = 0.3
PARTIAL = 0.85


def edge_image(rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The edge pass's picture: [mirror | left strip] grey gap [right strip | mirror]
    and (strip, pad, gap) in pixels, for `edge_boxes` to map its boxes back."""
    import cv2
    import numpy as np

    height, width = rgb.shape[:2]
    strip, pad = max(8, round(width * EDGE_STRIP)), max(8, round(width * EDGE_PAD))
    pad = min(pad, strip)  # a reflection cannot be wider than what it reflects
    left = cv2.copyMakeBorder(rgb[:, :strip], 0, 0, pad, 0, cv2.BORDER_REFLECT)
    right = cv2.copyMakeBorder(rgb[:, width - strip :], 0, 0, 0, pad, cv2.BORDER_REFLECT)
    gap = np.full((height, EDGE_GAP, 3), 128, np.uint8)
    return np.ascontiguousarray(np.hstack([left, gap, right])), (strip, pad, EDGE_GAP)


def edge_boxes(found: list[FaceBox], layout: tuple[int, int, int], width: int) -> list[FaceBox]:
    """Boxes the detector found on `edge_image`, in the frame's pixels, cut to the frame;
    mirror images and faces cut by a strip's inner side (the main pass sees those) left
    out."""
    strip, pad, gap = layout
    right_from = pad + strip + gap
    out = []
    for box in found:
        if box.x + box.w / 2 < pad + strip + gap / 2:  # the left strip
            shift = -pad
            if box.x + box.w > pad + strip - 2:
                continue
        else:
            shift = width - strip - right_from
            if box.x < right_from + 2:
                continue
        x0 = box.x + shift
        inside = min(x0 + box.w, width) - max(x0, 0)
        if inside < EDGE_MIN_INSIDE * box.w:
            continue
        mouth = None
        if box.mouth is not None:
            mouth = (box.mouth[0] + shift, box.mouth[1])
            if not 0 <= mouth[0] < width:
                mouth = None
        out.append(
            FaceBox(
                max(0, x0),
                box.y,
                inside,
                box.h,
                box.score,
                mouth,
                partial=inside < PARTIAL * box.w,
            )
        )
    return out


def merge_boxes(main: list[FaceBox], extra: list[FaceBox]) -> list[FaceBox]:
    """The main pass's boxes and the edge pass's, one box a face (the better score)."""
    boxes = list(main)
    for box in extra:
        same = [
            i
            for i, b in enumerate(boxes)
            if iou((b.x, b.y, b.w, b.h), (box.x, box.y, box.w, box.h)) > 0.3
            or (b.x <= box.center[0] <= b.x + b.w and b.y <= box.center[1] <= b.y + b.h)
        ]
        if not same:
            boxes.append(box)
        elif all(box.score > boxes[i].score for i in same):
            boxes = [b for i, b in enumerate(boxes) if i not in same] + [box]
    return boxes


SILHOUETTE_MIN_ASPECT = 0.6  # height / width


class PersonFinder:
    """A person where no face was found: MediaPipe's pose (BlazePose, full model; a body
    in profile, small or far), else its selfie segmentation (a silhouette). Both models
    ship in the 0.10.21 wheel. Boxes in the frame's pixels."""

    name = "mediapipe-pose"

    def __init__(self, min_score: float = 0.5, min_area: float = 0.01):
        os.environ.setdefault("GLOG_minloglevel", "2")
        from mediapipe.python.solutions import pose, selfie_segmentation

        self._pose = pose.Pose(
            static_image_mode=True, model_complexity=1, min_detection_confidence=min_score
        )
        self._segment = selfie_segmentation.SelfieSegmentation(model_selection=1)
        self._min_area = min_area

    def find(self, rgb: np.ndarray) -> list[PersonBox]:
        import numpy as np

        height, width = rgb.shape[:2]
        result = self._pose.process(rgb)
        if result.pose_landmarks is not None:
            marks = result.pose_landmarks.landmark
            seen = [(m.x, m.y) for m in marks if m.visibility > 0.5]
            head = [(m.x, m.y) for m in list(marks)[:11] if m.visibility > 0.5]
            if len(seen) >= 4:
                xs = np.clip([x for x, _y in seen], 0, 1) * width
                ys = np.clip([y for _x, y in seen], 0, 1) * height
                if head:
                    hx = float(np.clip(np.mean([x for x, _y in head]), 0, 1) * width)
                    hy = float(np.clip(np.mean([y for _x, y in head]), 0, 1) * height)
                else:
                    hx, hy = float(np.median(xs)), float(ys.min())
                x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
                # landmarks are joints: the head's top and the shoulders' width lie beyond
                grow = 0.1 * max(x1 - x0, y1 - y0)
                x0, y0 = max(0.0, x0 - grow), max(0.0, y0 - grow)
                x1, y1 = min(float(width), x1 + grow), min(float(height), y1 + grow)
                score = float(np.mean([m.visibility for m in marks]))
                return [
                    PersonBox(
                        round(x0),
                        round(y0),
                        round(x1 - x0),
                        round(y1 - y0),
                        (round(hx), round(hy)),
                        round(score, 3),
                        "pose",
                    )
                ]
        return self._silhouettes(rgb)

    def _silhouettes(self, rgb: np.ndarray) -> list[PersonBox]:
        import cv2
        import numpy as np

        height, width = rgb.shape[:2]
        mask = self._segment.process(rgb).segmentation_mask
        if mask is None:
            return []
        solid = (mask > 0.7).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(solid)
        people = []
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            # People are upright: a head and shoulders is about as tall as wide, a body
            # taller. Wide flat blobs are scenery the model mistook (measured on Big Buck
            # Bunny's landscape: 0.3 tall for 1 wide).
            if area < self._min_area * width * height or h < SILHOUETTE_MIN_ASPECT * w:
                continue
            score = float(mask[labels == label].mean())
            # the head: the top of the silhouette, across the middle of its top rows
            top = labels[y : y + max(1, h // 6)] == label
            cols = np.nonzero(top.any(axis=0))[0]
            hx = int(cols.mean()) if len(cols) else x + w // 2
            people.append(PersonBox(x, y, w, h, (hx, y + h // 8), round(score, 3), "segmentation"))
        people.sort(key=lambda p: -p.w * p.h)
        return people[:3]

    def close(self) -> None:
        self._pose.close()
        self._segment.close()


def shared_person_finder() -> PersonFinder | None:
    """The thread's PersonFinder, built once; None when MediaPipe cannot be imported."""
    if not hasattr(_shared, "people"):
        try:
            _shared.people = PersonFinder()
        except ImportError as exc:
            logger.warning("person finder unavailable (%s)", exc)
            _shared.people = None
    return _shared.people


CONTENT_SIZE = (32, 18)  # cells across and down (landscape; swapped for portrait)
CELL = 8  # pixels of the content map per cell side
MOTION_WEIGHT = 2.0  # a moving thing is worth more than a still texture


class _ContentMeter:
    """Texture and motion per cell, averaged over about a second of samples: what a crop
    can be placed on when there is no face or person (never on flat background)."""

    def __init__(self, size: tuple[int, int], every: float):
        self.cols, self.rows = size
        self.every = every
        self.sum: np.ndarray | None = None
        self.count = 0
        self.first = 0.0
        self.grids: list[ContentGrid] = []

    def add(self, t: float, gray: np.ndarray, previous: np.ndarray | None, cut: bool) -> None:
        import cv2
        import numpy as np

        size = (self.cols * CELL, self.rows * CELL)
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
        energy = cv2.magnitude(gx, gy) / 4.0  # Sobel's 3x3 gain
        if previous is not None and not cut:
            before = cv2.resize(previous, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            energy += MOTION_WEIGHT * cv2.absdiff(small, before)
        cells = energy.reshape(self.rows, CELL, self.cols, CELL).mean(axis=(1, 3))
        if self.sum is None:
            self.sum, self.count, self.first = cells, 1, t
        else:
            self.sum += cells
            self.count += 1
        if t - self.first >= self.every - 1e-6:
            self.flush(t)

    def flush(self, t: float) -> None:
        import numpy as np

        if self.sum is None:
            return
        mean = np.clip(np.rint(self.sum / self.count), 0, 255).astype(int)
        self.grids.append(ContentGrid(round((self.first + t) / 2, 3), mean.tolist()))
        self.sum, self.count = None, 0


# The lips pass: inner-lip landmark pairs of MediaPipe's face mesh (upper, lower), and the
# forehead-to-chin pair that measures the face's height.
LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
FACE_HEIGHT_PAIR = (10, 152)
LIP_CROP = 192  # the mesh's own input size: the face crop is scaled to it


class _LipMeter:
    """Mouth opening of each live face on every decoded frame where two or more faces are
    in view: MediaPipe 0.10.21's face mesh (shipped in its wheel) on a square crop around
    the face's held box, one mesh per track in tracking mode (landmarks followed from
    frame to frame: steadier and ~35% cheaper than a detection per frame, 14-22 ms a
    call measured here)."""

    def __init__(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        from mediapipe.python.solutions import face_mesh

        self._face_mesh = face_mesh
        self._meshes: dict[int, Any] = {}

    def measure(self, t: float, rgb: np.ndarray, live: list[_Live]) -> None:
        import cv2
        import numpy as np

        if len(live) < 2:
            return
        height, width = rgb.shape[:2]
        for face in live:
            box = face.box
            cx, cy = box.x + box.w / 2, box.y + box.h / 2
            half = 0.8 * max(box.w, box.h)
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(width, cx + half)), int(min(height, cy + half))
            value = None
            if x1 - x0 >= 8 and y1 - y0 >= 8:
                crop = cv2.resize(
                    np.ascontiguousarray(rgb[y0:y1, x0:x1]),
                    (LIP_CROP, LIP_CROP),
                    interpolation=cv2.INTER_CUBIC,
                )
                value = self._opening(self._mesh(face.track), crop)
            face.track.lips.append([t, value])

    def _mesh(self, track: FaceTrack) -> Any:
        key = id(track)
        if key not in self._meshes:
            self._meshes[key] = self._face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=0.3,
                min_tracking_confidence=0.3,
            )
        return self._meshes[key]

    @staticmethod
    def _opening(mesh: Any, crop: np.ndarray) -> float | None:
        result = mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        marks = result.multi_face_landmarks[0].landmark

        def gap(a: int, b: int) -> float:
            return math.hypot(marks[a].x - marks[b].x, marks[a].y - marks[b].y)

        face = gap(*FACE_HEIGHT_PAIR)
        if face <= 0:
            return None
        return round(sum(gap(a, b) for a, b in LIP_PAIRS) / len(LIP_PAIRS) / face, 4)

    def drop(self, live: list[_Live]) -> None:
        """Close the meshes of tracks no longer live."""
        keep = {id(face.track) for face in live}
        for key in [k for k in self._meshes if k not in keep]:
            self._meshes.pop(key).close()

    def close(self) -> None:
        for mesh in self._meshes.values():
            mesh.close()
        self._meshes.clear()


# --- the decode and the tracker ---------------------------------------------------------


def detect_faces(
    path: str | os.PathLike[str],
    *,
    start: float | None = None,
    end: float | None = None,
    probe: ProbeResult | None = None,
    detector: str | FaceDetector = "mediapipe",
    sample_fps: float = 5.0,
    motion_fps: float = 12.5,
    min_score: float = 0.5,
    max_gap: float = 1.0,
    min_track_points: int = 3,
    max_pixels: int | None = ffmpeg.DEFAULT_MAX_PIXELS,
    timeout: float = 3600.0,
    edges: bool = True,
    people: bool = True,
    content: bool = True,
    people_every: float = 1.0,
    content_every: float = 1.0,
    lips: bool = True,
) -> FaceAnalysis:
    """Faces of the video at `path` (or of its range [`start`, `end`] seconds).

    `probe` (a ProbeResult of the same file) saves a second ffprobe. `detector` is a
    registered name or a FaceDetector. Boxes come back in source pixels; times in seconds
    from the source's start. Tracks with fewer than `min_track_points` points (stray
    false positives) are left out of `tracks` but stay in `frames`.
    """
    import cv2

    if probe is None:
        from .probe import ProbeLimits
        from .probe import probe as probe_file

        probe = probe_file(
            path, limits=ProbeLimits(max_pixels=max_pixels or ffmpeg.DEFAULT_MAX_PIXELS)
        )
    video = probe.video
    source_w, source_h = video.display_width, video.display_height
    width, height = analysis_size(source_w, source_h)
    # Every n-th source frame, n whole, so the frames stay evenly spaced (25 fps: 12.5).
    source_fps = Fraction(video.fps if video.fps > 0 else 25.0).limit_denominator(1001)
    step = max(1, int(source_fps / Fraction(max(motion_fps, sample_fps)).limit_denominator(1001)))
    fps = source_fps / step
    per_frame = Fraction(sample_fps).limit_denominator(1001) / fps  # samples per frame
    begin = max(0.0, float(start or 0.0))
    stop = float(end) if end is not None else probe.duration
    if stop <= begin:
        raise ValueError(f"empty range: start {begin} >= end {stop}")

    # a named detector is the thread's shared one; a detector passed in stays the caller's
    engine = (
        shared_detector(detector, min_score=min_score) if isinstance(detector, str) else detector
    )
    scale_x, scale_y = source_w / width, source_h / height
    tracker = _Tracker(max_gap=max_gap)
    finder = shared_person_finder() if people else None
    grid = CONTENT_SIZE if width >= height else CONTENT_SIZE[::-1]
    meter = _ContentMeter(grid, content_every) if content else None
    lip_meter = _lip_meter() if lips else None
    last_people = -math.inf
    frames: list[FaceFrame] = []
    previous = None
    index = -1
    t = begin
    decode = FrameReader(
        path,
        size=(width, height),
        vf=f"fps={fps.numerator}/{fps.denominator},scale={width}:{height}:flags=area,format=rgb24",
        # to the millisecond, and no seek at all from the start, as this decode always did
        start=round(begin, 3) if begin > 0 else None,
        duration=round(stop - begin, 3),
        max_pixels=max_pixels,
        timeout=timeout,
        error="Clip generation failed: could not decode the video",
    )
    for index, rgb in enumerate(decode):
        t = round(begin + index / float(fps), 4)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        cut = previous is not None and _mean_difference(gray, previous) > CUT_DIFFERENCE
        tracker.measure(gray, previous, cut)
        if lip_meter is not None:
            lip_meter.measure(t, rgb, tracker.live)
        if index == 0 or int(index * per_frame) > int((index - 1) * per_frame):
            found = engine.detect(rgb, gray)
            if edges:
                image, layout = edge_image(rgb)
                side = engine.detect(image, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
                found = merge_boxes(found, edge_boxes(side, layout, width))
            boxes = [_to_source(b, scale_x, scale_y, source_w, source_h) for b in found]
            frame = FaceFrame(t=t, boxes=boxes)
            if finder is not None and not found and t - last_people >= people_every - 1e-6:
                frame.people_checked, last_people = True, t
                frame.people = [
                    _person_to_source(p, scale_x, scale_y, source_w, source_h)
                    for p in finder.find(rgb)
                ]
            frames.append(frame)
            tracker.update(t, found, boxes)
            if lip_meter is not None:
                lip_meter.drop(tracker.live)
            if meter is not None:
                meter.add(t, gray, previous, cut)
        previous = gray
    if index < 0:
        raise StageError(
            "Clip generation failed: the video has no decodable frames in the range",
            {"found": {"start": begin, "end": stop, "frames": 0}},
        )
    if meter is not None:
        meter.flush(t)
    if lip_meter is not None:
        lip_meter.close()
    passes = tuple(
        name
        for name, on in (
            ("edges", edges),
            ("people", finder),
            ("content", meter),
            ("lips", lip_meter),
        )
        if on
    )
    return FaceAnalysis(
        width=source_w,
        height=source_h,
        start=round(begin, 4),
        end=round(stop, 4),
        sample_fps=float(min(Fraction(sample_fps), fps)),
        motion_fps=float(fps),
        analysis_size=(width, height),
        detector=engine.name,
        frames=frames,
        tracks=tracker.finish(min_track_points),
        content=meter.grids if meter is not None else [],
        content_size=grid if meter is not None else (0, 0),
        passes=passes,
    )


def _lip_meter() -> _LipMeter | None:
    try:
        return _LipMeter()
    except ImportError as exc:  # a machine installed without MediaPipe
        logger.warning("face mesh unavailable (%s): no lips pass", exc)
        return None


def analysis_key(start: float, end: float) -> str:
    """The key under which the analysis of a source's range [start, end] is kept.
    "framing": it holds faces cut by the edge, people and content too; "lips": the mouth
    opening of faces seen together (the older keys named analyses without them)."""
    return f"mediapipe+framing+lips:{start:.3f}-{end:.3f}"


def analysis_size(
    width: int, height: int, limit: tuple[int, int] = ANALYSIS_MAX
) -> tuple[int, int]:
    """Even dimensions fitting `limit` (long side, short side) in the source's
    orientation, keeping its aspect; never larger than the source."""
    width, height = max(2, width), max(2, height)
    long_side, short_side = limit
    box_w, box_h = (long_side, short_side) if width >= height else (short_side, long_side)
    factor = min(1.0, box_w / width, box_h / height)
    return (
        max(2, int(round(width * factor / 2)) * 2),
        max(2, int(round(height * factor / 2)) * 2),
    )


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    return float(cv2.absdiff(a, b).mean())


def _to_source(box: FaceBox, sx: float, sy: float, width: int, height: int) -> FaceBox:
    x0 = min(max(0, round(box.x * sx)), width - 1)
    y0 = min(max(0, round(box.y * sy)), height - 1)
    x1 = min(width, round((box.x + box.w) * sx))
    y1 = min(height, round((box.y + box.h) * sy))
    mouth = None
    if box.mouth is not None:
        mouth = (round(box.mouth[0] * sx), round(box.mouth[1] * sy))
    return FaceBox(x0, y0, max(1, x1 - x0), max(1, y1 - y0), box.score, mouth, box.partial)


def _person_to_source(
    person: PersonBox, sx: float, sy: float, width: int, height: int
) -> PersonBox:
    x0, y0 = (
        min(max(0, round(person.x * sx)), width - 1),
        min(max(0, round(person.y * sy)), height - 1),
    )
    x1 = min(width, round((person.x + person.w) * sx))
    y1 = min(height, round((person.y + person.h) * sy))
    head = (round(person.head[0] * sx), round(person.head[1] * sy))
    return PersonBox(x0, y0, max(1, x1 - x0), max(1, y1 - y0), head, person.score, person.model)


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Live:
    track: FaceTrack
    box: FaceBox  # analysis pixels, held between detections
    last_seen: float
    mouth_sum: float = 0.0
    face_sum: float = 0.0
    frames: int = 0
    broken: bool = True  # no earlier point, or a cut since it


class _Tracker:
    """Links boxes across samples (greedy, best overlap first) and measures, on every
    decoded frame, how much each live face's mouth and the rest of the face changed."""

    def __init__(self, max_gap: float):
        self.max_gap = max_gap
        self.live: list[_Live] = []
        self.done: list[FaceTrack] = []
        self.next_id = 0

    def measure(self, gray: np.ndarray, previous: np.ndarray | None, cut: bool) -> None:
        if previous is None:
            return
        for live in self.live:
            if cut:
                live.broken = True
                continue
            mouth, rest = _regions(live.box, gray.shape)
            if mouth is None:
                continue
            diff = _abs_diff(gray, previous, rest)
            face_change = float(diff.mean())
            my0, my1, mx0, mx1 = (
                mouth[0] - rest[0],
                mouth[1] - rest[0],
                mouth[2] - rest[2],
                mouth[3] - rest[2],
            )
            mouth_diff = diff[my0:my1, mx0:mx1]
            mouth_change = float(mouth_diff.mean())
            # The rest of the face: the box less the mouth region.
            total = face_change * diff.size - mouth_change * mouth_diff.size
            rest_change = total / max(1, diff.size - mouth_diff.size)
            live.mouth_sum += mouth_change
            live.face_sum += rest_change
            live.frames += 1

    def update(self, t: float, found: list[FaceBox], boxes: list[FaceBox]) -> None:
        pairs = []
        for i, live in enumerate(self.live):
            held = (live.box.x, live.box.y, live.box.w, live.box.h)
            for j, box in enumerate(found):
                overlap = iou(held, (box.x, box.y, box.w, box.h))
                if overlap > 0.2:
                    pairs.append((overlap, i, j))
        pairs.sort(reverse=True)
        used_live: set[int] = set()
        used_box: set[int] = set()
        for _overlap, i, j in pairs:
            if i in used_live or j in used_box:
                continue
            used_live.add(i)
            used_box.add(j)
            self._append(self.live[i], t, found[j], boxes[j])
        for j, box in enumerate(found):
            if j not in used_box:
                live = _Live(track=FaceTrack(id=self.next_id), box=box, last_seen=t)
                self.next_id += 1
                self._append(live, t, box, boxes[j])
                self.live.append(live)
        kept = []
        for live in self.live:
            if t - live.last_seen > self.max_gap:
                self.done.append(live.track)
            else:
                kept.append(live)
        self.live = kept

    def _append(self, live: _Live, t: float, box: FaceBox, source: FaceBox) -> None:
        mouth = face = None
        if not live.broken and live.frames:
            mouth = round(live.mouth_sum / live.frames, 3)
            face = round(live.face_sum / live.frames, 3)
        live.track.points.append(
            TrackPoint(
                t, source.x, source.y, source.w, source.h, source.score, mouth, face, source.partial
            )
        )
        live.box = box
        live.last_seen = t
        live.mouth_sum = live.face_sum = 0.0
        live.frames = 0
        live.broken = False

    def finish(self, min_points: int) -> list[FaceTrack]:
        tracks = self.done + [live.track for live in self.live]
        tracks = [t for t in tracks if len(t.points) >= min_points]
        tracks.sort(key=lambda t: (t.start, t.id))
        for number, track in enumerate(tracks):
            track.id = number
        return tracks


def _regions(
    box: FaceBox, shape: tuple[int, ...]
) -> tuple[tuple[int, int, int, int] | None, tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the mouth region and of the whole face, clipped to the frame."""
    height, width = shape[:2]
    fy0, fy1 = max(0, box.y), min(height, box.y + box.h)
    fx0, fx1 = max(0, box.x), min(width, box.x + box.w)
    if box.mouth is not None:
        cx, cy = box.mouth
    else:
        cx, cy = box.x + box.w / 2, box.y + 0.78 * box.h
    half_w, half_h = max(2, 0.28 * box.w), max(2, 0.14 * box.h)
    my0, my1 = int(max(fy0, cy - half_h)), int(min(fy1, cy + half_h))
    mx0, mx1 = int(max(fx0, cx - half_w)), int(min(fx1, cx + half_w))
    if fy1 - fy0 < 4 or fx1 - fx0 < 4 or my1 - my0 < 2 or mx1 - mx0 < 2:
        return None, (fy0, fy1, fx0, fx1)
    return (my0, my1, mx0, mx1), (fy0, fy1, fx0, fx1)


def _abs_diff(a: np.ndarray, b: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    import cv2

    y0, y1, x0, x1 = region
    return cv2.absdiff(a[y0:y1, x0:x1], b[y0:y1, x0:x1])
