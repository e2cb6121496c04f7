"""clips.pipeline.faces: boxes against the GRID concatenation's checked face boxes, no
faces on Big Buck Bunny, tracks, ranges and the stored form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clips.pipeline.faces import FaceAnalysis, analysis_size, detect_faces, get_detector

MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"
GRID_CONCAT = MEDIA / "talking_head/grid_concat_11clips_33s.mp4"
GRID_FACES = MEDIA / "talking_head/grid_concat_11clips_33s.faces.json"
BUNNY = MEDIA / "cuts/big_buck_bunny_0-30s_720p.webm"

# The reference boxes are OpenCV Haar boxes checked by eye (+-10 px). MediaPipe's boxes sit
# lower on the face and are ~8% smaller (measured: centres 5-17 px apart on faces ~145 px).
CENTRE_TOLERANCE = 0.15  # of the reference box's width
SIZE_TOLERANCE = 0.25
RECALL_FLOOR = 0.95


@pytest.fixture(scope="module")
def grid_faces() -> FaceAnalysis:
    return detect_faces(GRID_CONCAT)


def _matches(analysis: FaceAnalysis, truth: dict) -> list[bool]:
    found = []
    for sample in truth["samples"]:
        frame = min(analysis.frames, key=lambda f: abs(f.t - sample["time_s"]))
        x, y, w, h = sample["face_xywh"]
        centre = (x + w / 2, y + h / 2)
        ok = False
        for box in frame.boxes:
            bx, by = box.center
            distance = ((bx - centre[0]) ** 2 + (by - centre[1]) ** 2) ** 0.5
            if distance <= CENTRE_TOLERANCE * w and abs(box.w - w) <= SIZE_TOLERANCE * w:
                ok = True
        found.append(ok)
    return found


def test_it_finds_the_checked_face_of_every_grid_sample(grid_faces):
    truth = json.loads(GRID_FACES.read_text())

    found = _matches(grid_faces, truth)

    assert sum(found) / len(found) >= RECALL_FLOOR, found
    assert grid_faces.detector == "mediapipe"
    assert (grid_faces.width, grid_faces.height) == (360, 288)
    # At 5 samples a second over 33 s, and at most a stray extra box.
    assert len(grid_faces.frames) == pytest.approx(165, abs=2)
    boxes = sum(len(f.boxes) for f in grid_faces.frames)
    assert len(grid_faces.frames) <= boxes <= len(grid_faces.frames) + 3
    for frame in grid_faces.frames:
        for box in frame.boxes:
            assert 0 <= box.x and box.x + box.w <= 360 and 0 <= box.y and box.y + box.h <= 288
            assert 0.5 <= box.score <= 1.0


def test_it_links_the_boxes_into_a_track_with_mouth_movement(grid_faces):
    tracks = grid_faces.tracks

    assert len(tracks) == 1  # one speaker, in the same place in every GRID clip
    points = tracks[0].points
    assert len(points) >= 160
    assert [p.t for p in points] == sorted(p.t for p in points)
    measured = [p.mouth for p in points if p.mouth is not None]
    assert len(measured) >= 0.9 * len(points)
    assert max(measured) > 2 * min(measured)  # speech moves the mouth, pauses do not


def test_the_fallback_detector_finds_the_same_faces():
    truth = json.loads(GRID_FACES.read_text())
    truth["samples"] = [s for s in truth["samples"] if s["time_s"] < 6.0]

    analysis = detect_faces(GRID_CONCAT, end=6.0, detector="haar", motion_fps=5)

    assert analysis.detector == "haar"
    assert all(_matches(analysis, truth))


def test_big_buck_bunny_has_no_face_track():
    analysis = detect_faces(BUNNY, start=14.0, end=24.0)  # the cartoon bird is at 16-22 s

    assert analysis.tracks == []
    boxes = sum(len(f.boxes) for f in analysis.frames)
    assert boxes <= 0.05 * len(analysis.frames)


def test_a_range_is_decoded_alone_and_times_stay_the_source_s(grid_faces):
    analysis = detect_faces(GRID_CONCAT, start=6.0, end=9.0)

    times = [f.t for f in analysis.frames]
    assert times[0] == pytest.approx(6.0) and times[-1] < 9.0
    assert len(times) == pytest.approx(15, abs=1)
    assert (analysis.start, analysis.end) == (6.0, 9.0)
    whole = {round(f.t, 2): f for f in grid_faces.frames}
    for frame in analysis.frames[:3]:
        same = whole.get(round(frame.t, 2))
        if same is not None and same.boxes and frame.boxes:
            assert abs(same.boxes[0].x - frame.boxes[0].x) <= 4


def test_the_analysis_round_trips_through_json(grid_faces):
    data = json.loads(json.dumps(grid_faces.to_dict()))

    again = FaceAnalysis.from_dict(data)

    assert again.to_dict() == grid_faces.to_dict()
    assert "frames" not in grid_faces.to_dict(include_frames=False)


def test_analysis_size_fits_640_by_360_in_the_source_s_orientation():
    assert analysis_size(1920, 1080) == (640, 360)
    assert analysis_size(1080, 1920) == (360, 640)
    assert analysis_size(360, 288) == (360, 288)  # never up
    assert analysis_size(1280, 720) == (640, 360)


def test_an_unknown_detector_is_refused():
    with pytest.raises(ValueError, match="unknown face detector"):
        get_detector("dlib")


def test_one_face_alone_has_no_lips_measured(grid_faces):
    # The lips pass runs only where two or more faces are in view together.
    assert "lips" in grid_faces.passes
    assert grid_faces.tracks and all(not t.lips for t in grid_faces.tracks)


def test_the_lips_pass_measures_each_mouth_where_two_faces_are_in_view():
    from clips.pipeline.speakers import mouth_activity

    # two-speakers-dev: the left person speaks from 0 to 3 s, the right one holds still.
    analysis = detect_faces(
        MEDIA / "talking_head/two-speakers-dev.mp4", end=3.0, people=False, content=False
    )

    left, right = sorted(analysis.tracks, key=lambda t: t.points[0].x)
    for track in (left, right):
        values = [v for _t, v in track.lips]
        assert len(values) >= 30  # 12.5 a second
        assert sum(v is not None for v in values) >= 0.9 * len(values)
    moving = sum(a for _t, a in mouth_activity(left.lips))
    still = sum(a for _t, a in mouth_activity(right.lips))
    assert moving > 3 * still
    again = FaceAnalysis.from_dict(json.loads(json.dumps(analysis.to_dict())))
    assert again.tracks[0].lips == analysis.tracks[0].lips
