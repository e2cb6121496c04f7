"""Framing without a whole face (clips.pipeline.faces' edge, people and content passes,
clips.pipeline.reframe's choice per shot), on compositions built at test time from the
GRID recordings (bench/_compose.py: a speaker cut out of the backdrop and set on a plain
wall), and on made-up content grids. bench/framing.py measures the same over more
compositions."""

from __future__ import annotations

import pytest

from bench._compose import CASES, compose, coverage
from clips.pipeline.faces import (
    ContentGrid,
    FaceAnalysis,
    FaceBox,
    detect_faces,
    edge_boxes,
    edge_image,
)
from clips.pipeline.reframe import WHY, crop_path

COVERED = 0.8  # of the subject's box inside the window
CENTRE_X = (1280 - 404) // 2  # where a centred 9:16 window of a 1280x720 frame sits


def _case(name):
    return next(c for c in CASES if c.name == name)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("framing")
    cache = {}

    def build(name):
        if name not in cache:
            cache[name] = compose(_case(name), folder)
        return cache[name]

    return build


def _frame(comp, **passes):
    faces = detect_faces(comp.path, **passes)
    path = crop_path(
        source_width=comp.width, source_height=comp.height, start=0, end=faces.end, faces=faces
    )
    return faces, path


def _covered(path, comp) -> float:
    times = [i * 0.2 for i in range(int(path.duration / 0.2))]
    held = []
    for t in times:
        full = path.shot_at(t).layout == "fit"
        window = (0, 0, comp.width, comp.height) if full else path.at(t)
        held.append(coverage(window, comp.subject) >= COVERED)
    return sum(held) / len(held)


def test_a_half_face_at_the_left_edge_is_found_and_framed(built):
    comp = built("half face, left edge")

    before_faces, before = _frame(comp, edges=False, people=False, content=False)
    faces, path = _frame(comp)

    # Without the edge pass the detector misses the half face and the window is centred.
    assert before_faces.tracks == [] and before.at(1.0)[0] == CENTRE_X
    assert _covered(before, comp) == 0.0
    # With it: a face on every sample, marked partial, and a window that holds it.
    assert sum(bool(f.boxes) for f in faces.frames) >= 0.9 * len(faces.frames)
    assert all(b.partial and b.x == 0 for f in faces.frames for b in f.boxes)
    assert [s.why for s in path.shots] == ["partial_face"]
    assert _covered(path, comp) == 1.0
    assert path.at(1.0)[0] == 0


def test_a_half_face_at_the_right_edge_gets_a_crop_covering_it_not_the_centre(built):
    comp = built("half face, right edge")

    faces, path = _frame(comp)

    assert [s.why for s in path.shots] == ["partial_face"]
    assert _covered(path, comp) == 1.0
    x, _y, w, _h = path.at(1.0)
    assert x != CENTRE_X and x + w == comp.width


def test_a_person_whose_face_is_not_found_is_framed_as_a_person(built):
    comp = built("a third of a face, right edge")

    faces, path = _frame(comp)

    assert faces.tracks == []  # too little of the face for any detector
    people = [p for f in faces.frames for p in f.people]
    assert people and all(p.x + p.w > 0.85 * comp.width for p in people)
    assert [s.why for s in path.shots] == ["person"]
    assert _covered(path, comp) == 1.0


def test_without_a_person_the_crop_goes_on_the_object_not_the_flat_wall(built):
    comp = built("no person, object left")

    before_faces, before = _frame(comp, edges=False, people=False, content=False)
    faces, path = _frame(comp)

    assert _covered(before, comp) == 0.0  # the centre shows only the wall
    assert [s.why for s in path.shots] == ["content"]
    assert _covered(path, comp) == 1.0
    assert path.at(1.0)[0] < 100


def test_content_no_window_can_hold_gets_the_fit_layout(built):
    comp = built("no person, content across the frame")

    _faces, path = _frame(comp)

    assert [(s.layout, s.why) for s in path.shots] == [("fit", "fit")]


# --- on made-up analyses ------------------------------------------------------------------


def _analysis(cells, *, passes=("edges", "people", "content")):
    return FaceAnalysis(
        width=1920,
        height=1080,
        start=0.0,
        end=4.0,
        sample_fps=5.0,
        detector="mediapipe",
        frames=[],
        tracks=[],
        content=[ContentGrid(t=float(t), cells=cells) for t in range(4)],
        content_size=(32, 18),
        passes=passes,
    )


def _cells(lit_columns, value=60):
    return [[value if c in lit_columns else 0 for c in range(32)] for _r in range(18)]


def test_the_window_goes_where_the_content_is():
    path = crop_path(
        source_width=1920, source_height=1080, start=0, end=4, faces=_analysis(_cells({26, 27}))
    )

    x, _y, w, _h = path.at(2.0)
    # columns 26-27 of 32 are x 1560-1680 of 1920
    assert x <= 1560 and 1680 <= x + w
    assert path.shots[0].why == "content" and path.shots[0].layout == "fill"


def test_a_flat_frame_shows_whole_and_is_never_centred_by_default():
    flat = crop_path(
        source_width=1920, source_height=1080, start=0, end=4, faces=_analysis(_cells(set()))
    )
    spread = crop_path(
        source_width=1920,
        source_height=1080,
        start=0,
        end=4,
        faces=_analysis(_cells({1, 2, 15, 16, 29, 30})),
    )

    assert (flat.shots[0].layout, flat.shots[0].why) == ("fit", "fit")
    assert (spread.shots[0].layout, spread.shots[0].why) == ("fit", "fit")


def test_without_any_picture_analysis_the_reason_says_so():
    path = crop_path(
        source_width=1920, source_height=1080, start=0, end=4, faces=_analysis([], passes=())
    )

    assert path.shots[0].why == "unknown" and "unknown" in WHY


def test_the_edge_pass_maps_a_mirrored_half_face_back_into_the_frame():
    import numpy as np

    rgb = np.zeros((360, 640, 3), np.uint8)
    image, layout = edge_image(rgb)
    strip, pad, gap = layout
    assert image.shape == (360, 2 * (strip + pad) + gap, 3)
    right_from = pad + strip + gap
    # a face centred on the right edge (the mirror makes it whole), one whole on the left
    # strip, and the mirror image of that one (in the padding): dropped
    found = [
        FaceBox(right_from + strip - 50, 100, 100, 110, 0.9),
        FaceBox(pad + 20, 100, 80, 90, 0.9),
        FaceBox(pad - 100, 100, 80, 90, 0.9),
    ]

    boxes = edge_boxes(found, layout, 640)

    assert [(b.x, b.w, b.partial) for b in boxes] == [(590, 50, True), (20, 80, False)]
