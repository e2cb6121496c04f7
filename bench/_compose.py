"""Synthetic framing compositions, built at run time from the real recordings in
../shared/media: a GRID speaker cut out of their blue background (a colour key) and set
on a wall, at the frame's edges, half out of the frame, small, with the face hidden, or
no person at all and a textured object elsewhere. Nothing is downloaded or copied into
the project: `compose(case, dst)` writes a short H.264 file into the folder the caller
gives and returns what is known about it (`Composition.subject`: the box a crop must
cover, in the composition's pixels).

Where the subject is a face, its box comes from MediaPipe run on the GRID clip itself,
where the whole face is seen (recall 1.0 on these clips, DESIGN.md), moved and scaled as
the composition moves and scales the person, and cut to the frame.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
GRID = MEDIA / "talking_head" / "grid"
BUNNY = MEDIA / "cuts" / "big_buck_bunny_0-30s_720p.webm"
WIDTH, HEIGHT, FPS = 1280, 720, 25
WALL = (168, 160, 150)  # RGB: a plain light wall


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "face" | "person" | "object" | "wide"
    scale: float = 2.0  # the GRID picture (360x288) scaled by this
    face_x: float | None = None  # where the face's centre sits, as a share of the width
    clip: str = "bbaf2n"
    hide_face: bool = False  # pixelate the face: a person whose face no detector finds
    object_x: float = 0.15  # the object's centre, as a share of the width
    seconds: float = 2.4


CASES: tuple[Case, ...] = (
    Case("half face, right edge", "face", face_x=1.0),
    Case("half face, left edge", "face", face_x=0.0, clip="brbk7n"),
    Case("a third of a face, right edge", "face", face_x=1.04, clip="lbax4n"),
    Case("whole face, right edge", "face", face_x=0.9, clip="pwij3p"),
    Case("whole face, left edge", "face", face_x=0.1, clip="sbia1a"),
    Case("small face, left", "face", scale=0.45, face_x=0.12, clip="lrwp9a"),
    Case("small face, right", "face", scale=0.35, face_x=0.85, clip="swiz3n"),
    Case("face hidden, person right", "person", face_x=0.8, hide_face=True, clip="lbbc2a"),
    Case("face hidden, person left", "person", face_x=0.2, hide_face=True, clip="sbwe5n"),
    Case("no person, object left", "object", object_x=0.14),
    Case("no person, object right", "object", object_x=0.82),
    Case("no person, content across the frame", "wide"),
)


@dataclass
class Composition:
    case: Case
    path: Path
    subject: tuple[int, int, int, int]  # x, y, w, h: what a crop must cover
    width: int = WIDTH
    height: int = HEIGHT


def _frames(path: Path, size: tuple[int, int], seconds: float, start: float = 0.0):
    w, h = size
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start}", "-i", str(path),
         "-t", f"{seconds}", "-vf", f"fps={FPS},scale={w}:{h}:flags=bicubic,format=rgb24",
         "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)
    return frames


@lru_cache(maxsize=16)
def _grid_face(clip: str) -> tuple[float, float, float, float]:
    """The median face box of a GRID clip (360x288 pixels), all of the face in view."""
    from mediapipe.python.solutions import face_detection

    frames = _frames(GRID / f"{clip}.mpg", (360, 288), 2.0)
    boxes = []
    with face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as model:
        for rgb in frames[::10]:
            found = model.process(np.ascontiguousarray(rgb)).detections or []
            if found:
                box = found[0].location_data.relative_bounding_box
                boxes.append((box.xmin * 360, box.ymin * 288, box.width * 360, box.height * 288))
    if not boxes:
        raise RuntimeError(f"no face on GRID clip {clip}")
    return tuple(float(v) for v in np.median(np.array(boxes), axis=0))  # type: ignore[return-value]


def _key(rgb: np.ndarray) -> np.ndarray:
    """Alpha (0-1) of the person on a GRID frame: what is far from the backdrop's colour
    (read in the top corners, which every GRID clip leaves to the backdrop), the largest
    piece of it."""
    import cv2

    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    corners = np.concatenate([lab[4:40, 4:40].reshape(-1, 3), lab[4:40, -40:-4].reshape(-1, 3)])
    backdrop = np.median(corners, axis=0)
    distance = np.linalg.norm((lab - backdrop)[..., 1:], axis=2)  # colour, not lightness
    person = (distance > 18).astype(np.uint8)
    person = cv2.morphologyEx(person, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    person = cv2.morphologyEx(person, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(person)
    if count > 1:
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        person = (labels == biggest).astype(np.uint8)
    return cv2.GaussianBlur(person.astype(np.float32), (3, 3), 0)


def _wall(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wall = np.empty((HEIGHT, WIDTH, 3), np.float32)
    wall[:] = WALL
    # a soft light fall-off and sensor noise: flat, as real walls are, not a test card
    ramp = np.linspace(-12, 12, WIDTH, dtype=np.float32)[None, :, None]
    return np.clip(wall + ramp + rng.normal(0, 2.0, wall.shape), 0, 255)


def _place(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Blend `src` (with `alpha`) onto `dst` at (x, y), cut to dst's bounds."""
    h, w = src.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(dst.shape[1], x + w), min(dst.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return
    s = src[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    dst[y0:y1, x0:x1] = dst[y0:y1, x0:x1] * (1 - a) + s * a


def _write(frames: list[np.ndarray], path: Path) -> None:
    proc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-", "-c:v", "libx264",
         "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", str(path)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not write {path}")


def compose(case: Case, dst: Path, *, seed: int = 0) -> Composition:
    """Write `case` as an H.264 file in the folder `dst`; see the module docstring."""
    import cv2

    dst.mkdir(parents=True, exist_ok=True)
    path = dst / (case.name.replace(" ", "-").replace(",", "") + ".mp4")
    wall = _wall(seed)
    count = int(case.seconds * FPS)
    out: list[np.ndarray] = []
    if case.kind in ("face", "person"):
        fx, fy, fw, fh = _grid_face(case.clip)
        w, h = round(360 * case.scale), round(288 * case.scale)
        face_cx = (fx + fw / 2) * case.scale
        x = round(case.face_x * WIDTH - face_cx)  # type: ignore[operator]
        y = HEIGHT - h  # seated at the bottom of the frame
        for rgb in _frames(GRID / f"{case.clip}.mpg", (360, 288), case.seconds):
            alpha = _key(rgb)
            rgb = rgb.copy()
            if case.hide_face:  # a coarse mosaic over the head: no detector sees a face
                x0, y0 = max(0, int(fx - 0.3 * fw)), max(0, int(fy - 0.45 * fh))
                x1, y1 = min(360, int(fx + 1.3 * fw)), min(288, int(fy + 1.15 * fh))
                head = rgb[y0:y1, x0:x1]
                small = cv2.resize(head, (4, 5), interpolation=cv2.INTER_AREA)
                rgb[y0:y1, x0:x1] = cv2.resize(
                    small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST
                )
            big = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
            big_alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
            frame = wall.copy()
            _place(frame, big, big_alpha, x, y)
            out.append(frame)
        if case.kind == "face":
            box = (x + fx * case.scale, y + fy * case.scale, fw * case.scale, fh * case.scale)
        else:  # the head and shoulders that a window must hold
            box = (
                x + (fx - 0.3 * fw) * case.scale,
                y + (fy - 0.45 * fh) * case.scale,
                1.6 * fw * case.scale,
                2.2 * fh * case.scale,
            )
    else:
        if case.kind == "object":  # a textured thing (a piece of Big Buck Bunny) on the wall
            size = (300, 340)
            cx = round(case.object_x * WIDTH)
            box = (cx - size[0] // 2, (HEIGHT - size[1]) // 2, *size)
        else:  # a wide picture across the whole frame: no 9:16 window holds it
            size = (WIDTH - 80, 400)
            box = (40, (HEIGHT - size[1]) // 2, *size)
        frames = _frames(BUNNY, size, case.seconds, start=3.0)
        ones = np.ones(frames.shape[1:3], np.float32)
        for rgb in frames[:count]:
            frame = wall.copy()
            _place(frame, rgb, ones, box[0], box[1])
            out.append(frame)
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(WIDTH, int(box[0] + box[2])), min(HEIGHT, int(box[1] + box[3]))
    _write(out[:count], path)
    return Composition(case, path, (x0, y0, x1 - x0, y1 - y0))


def coverage(
    window: tuple[float, float, float, float], subject: tuple[int, int, int, int]
) -> float:
    """How much of the subject the window holds: the overlap over the smaller of the two."""
    wx, wy, ww, wh = window
    sx, sy, sw, sh = subject
    ix = max(0.0, min(wx + ww, sx + sw) - max(wx, sx))
    iy = max(0.0, min(wy + wh, sy + sh) - max(wy, sy))
    return ix * iy / max(1.0, min(ww * wh, sw * sh))
