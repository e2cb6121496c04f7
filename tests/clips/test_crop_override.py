"""PATCH /v1/clips/{id} cropOverride on a real source (two-speakers-dev: two people side
by side, their face centres at x 560 and 1360 of 1920): the faces per shot, a face, a
centre with a zoom, a layout or keyframes chosen by hand, the preview rendered again, and
the override kept through a re-cut of the range where its shot is still inside."""

from __future__ import annotations

import hashlib
import subprocess

import numpy as np
import pytest
from django.core.files import File

from clips.models import Clip, Source
from clips.rendering import clip_crop_path, clip_video_make

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LEFT, RIGHT = 560, 1360  # the two face centres (the video's .truth.json)


@pytest.fixture
def clip(settings, team, shared_media, tmp_path):
    """A completed 3 s clip of two-speakers-dev, its crop path computed as a render does."""
    from projects.services import default_project

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    video = shared_media / "talking_head" / "two-speakers-dev.mp4"
    data = video.read_bytes()
    source = Source(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/two.mp4", File(fh), save=False)
    source.save()
    clip = Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=0.0,
        end_time=3.0,
        duration=3.0,
        name="Two",
    )
    clip_crop_path(clip, video, None)
    return clip


def _get(api, clip):
    response = api.get(f"/v1/clips/{clip.pk}")
    assert response.status_code == 200
    return response.json()["data"]


def _patch(api, clip, override):
    return api.patch(f"/v1/clips/{clip.pk}", {"cropOverride": override}, format="json")


def _face_id(data, centre):
    faces = data["cropPath"]["shots"][0]["faces"]
    return min(faces, key=lambda f: abs(f["x"] + f["w"] / 2 - centre))["id"]


def _recompute(clip):
    """What a render does first: the crop path, with the override laid over it."""
    clip.refresh_from_db()
    clip_crop_path(clip, clip.source.file.path, None)


def _window_at(data, t):
    from clips.pipeline.reframe import position_at

    crop = data["cropPath"]
    from clips.pipeline.reframe import Keyframe

    x, _y = position_at([Keyframe(**k) for k in crop["keyframes"]], t)
    return x, crop["keyframes"][0]["w"]


def test_get_lists_the_faces_of_each_shot_with_their_boxes(api, clip):
    data = _get(api, clip)

    faces = data["cropPath"]["shots"][0]["faces"]
    centres = sorted(f["x"] + f["w"] / 2 for f in faces)
    assert len(faces) == 2
    assert abs(centres[0] - LEFT) < 60 and abs(centres[1] - RIGHT) < 60
    assert all(f["h"] > 100 and f["partial"] is False for f in faces)
    assert data["cropOverride"] is None


def test_a_face_chosen_by_hand_is_followed_and_the_preview_is_rendered_again(api, clip):
    clip_video_make(clip, None, kind="preview")
    clip.refresh_from_db()
    before = clip.preview.read()
    data = _get(api, clip)
    shown = min(_window_at(data, 1.5)[0] + 304, 1920)  # the centre the window shows now
    # choose the face the automatic path does not show
    other = RIGHT if abs(shown - LEFT) < abs(shown - RIGHT) else LEFT
    face = _face_id(data, other)

    response = _patch(api, clip, {"shots": [{"shot": 0, "face": face}]})

    assert response.status_code == 200, response.content
    data = _get(api, clip)
    shot = data["cropPath"]["shots"][0]
    assert (shot["why"], shot["layout"]) == ("override", "fill")
    for t in (0.0, 1.5, 2.9):
        x, w = _window_at(data, t)
        assert x <= other <= x + w
    assert data["cropOverride"] == {"shots": [{"shot": 0, "face": face}]}
    clip.refresh_from_db()
    after = clip.preview.read()
    assert after != before
    # the new preview shows the chosen face: its middle frame matches the source cropped
    # there better than cropped on the other face
    frame = _frame(clip.preview.path, 1.5, (480, 854))
    x, w = _window_at(data, 1.5)
    here = _frame(clip.source.file.path, 1.5, (480, 854), crop=(w, 1080, x, 0))
    far = RIGHT + LEFT - other - w // 2
    there = _frame(clip.source.file.path, 1.5, (480, 854), crop=(w, 1080, far, 0))
    assert np.abs(frame - here).mean() < 0.5 * np.abs(frame - there).mean()


def _frame(path, t, size, crop=None):
    vf = f"crop={crop[0]}:{crop[1]}:{crop[2]}:{crop[3]}," if crop else ""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", str(t), "-i", str(path), "-frames:v", "1",
         "-vf", f"{vf}scale={size[0]}:{size[1]},format=gray", "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, np.uint8).reshape(size[1], size[0]).astype(float)


def test_a_centre_with_a_zoom_a_layout_and_keyframes_can_be_set_and_cleared(api, clip):
    centred = _patch(
        api, clip, {"shots": [{"shot": 0, "center": {"x": 1000, "y": 540}, "zoom": 2}]}
    )
    assert centred.status_code == 200, centred.content
    _recompute(clip)
    shot = _get(api, clip)["cropPath"]["shots"][0]
    assert (shot["why"], shot["zoom"]) == ("override", 2.0)
    from clips.pipeline.reframe import CropPath

    clip.refresh_from_db()
    window = CropPath.from_dict(clip.crop_path["path"]).at(1.0)
    assert window[2:] == (304, 540) and window[0] + 152 == 1000

    assert _patch(api, clip, {"shots": [{"shot": 0, "layout": "fit"}]}).status_code == 200
    _recompute(clip)
    assert _get(api, clip)["cropPath"]["shots"][0]["layout"] == "fit"

    keyframes = [{"t": 0.0, "x": 500, "y": 540}, {"t": 2.0, "x": 1400, "y": 540, "zoom": 1.5}]
    assert _patch(api, clip, {"keyframes": keyframes}).status_code == 200
    _recompute(clip)
    data = _get(api, clip)
    assert [s["why"] for s in data["cropPath"]["shots"]] == ["override", "override"]
    assert [s.get("zoom", 1.0) for s in data["cropPath"]["shots"]] == [1.0, 1.5]
    assert _window_at(data, 0.0)[0] == 500 - 304 and _window_at(data, 2.0)[0] == 1400 - 304
    assert _window_at(data, 1.0)[0] == pytest.approx((196 + 1096) / 2, abs=2)  # a linear move

    assert _patch(api, clip, None).status_code == 200
    _recompute(clip)
    data = _get(api, clip)
    assert data["cropOverride"] is None
    assert all(s["why"] != "override" for s in data["cropPath"]["shots"])


def test_the_override_survives_a_re_cut_where_its_shot_is_still_inside(api, clip):
    data = _get(api, clip)
    face = _face_id(data, RIGHT)
    assert _patch(api, clip, {"shots": [{"shot": 0, "face": face}]}).status_code == 200

    # a re-cut inside the shot: the range 0.5-2.5 s is analysed anew (other track ids)
    Clip.objects.filter(pk=clip.pk).update(start_time=0.5, end_time=2.5, duration=2.0)
    _recompute(clip)
    data = _get(api, clip)
    assert data["cropPath"]["shots"][0]["why"] == "override"
    x, w = _window_at(data, 1.0)
    assert x <= RIGHT <= x + w

    # a re-cut past it: the override's shot is no longer in the range
    Clip.objects.filter(pk=clip.pk).update(start_time=4.0, end_time=6.0, duration=2.0)
    _recompute(clip)
    data = _get(api, clip)
    assert data["cropPath"]["shots"][0]["why"] != "override"
    assert data["cropOverride"] == {"shots": []}


def test_a_bad_override_is_refused_naming_the_field(api, clip):
    cases = [
        ({"shots": [{"shot": 3, "layout": "fit"}]}, "cropOverride.shots[0].shot"),
        ({"shots": [{"shot": 0, "face": 99}]}, "cropOverride.shots[0].face"),
        ({"shots": [{"shot": 0, "layout": "zoomy"}]}, "cropOverride.shots[0].layout"),
        ({"shots": [{"shot": 0, "center": {"x": 5000, "y": 1}}]}, "cropOverride.shots[0].center.x"),
        ({"keyframes": [{"t": 9.0, "x": 1, "y": 1}]}, "cropOverride.keyframes[0].t"),
        ({"shots": [], "keyframes": []}, "cropOverride"),
    ]
    for override, field in cases:
        response = _patch(api, clip, override)
        assert response.status_code == 400, (override, response.content)
        assert response.json()["error"]["field"] == field, response.json()
    Clip.objects.filter(pk=clip.pk).update(status="processing")
    assert _patch(api, clip, None).status_code == 409
