"""GET /v1/clips/{id} shows the clip's crop path and why each shot was framed as it was,
on a real composition (bench/_compose.py: a speaker half out of the frame at its right
edge) framed by the worker's own `clip_crop_path`."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files import File

from bench._compose import CASES, compose, coverage
from clips.models import Clip, Source
from clips.rendering import clip_crop_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def half_face(tmp_path_factory):
    case = next(c for c in CASES if c.name == "half face, right edge")
    return compose(case, tmp_path_factory.mktemp("framing-api"))


def _clip(team, video) -> Clip:
    from projects.services import default_project

    data = video.read_bytes()
    source = Source(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/composition.mp4", File(fh), save=False)
    source.save()
    return Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=0.0,
        end_time=2.0,
        duration=2.0,
        name="Half a face",
    )


def test_the_crop_path_and_its_reasons_show_in_the_clip(api, team, half_face, settings, tmp_path):
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    clip = _clip(team, half_face.path)
    before = api.get(f"/v1/clips/{clip.pk}").json()["data"]

    clip_crop_path(clip, half_face.path, None)
    data = api.get(f"/v1/clips/{clip.pk}").json()["data"]

    assert before["cropPath"] is None
    crop = data["cropPath"]
    assert (crop["aspectRatio"], crop["sourceWidth"], crop["sourceHeight"]) == ("9:16", 1280, 720)
    assert [s["why"] for s in crop["shots"]] == ["partial_face"]
    assert crop["shots"][0]["layout"] == "fill" and "edge" in crop["shots"][0]["reason"]
    first = crop["keyframes"][0]
    window = (first["x"], first["y"], first["w"], first["h"])
    assert coverage(window, half_face.subject) >= 0.8
    assert first["x"] + first["w"] == 1280  # at the right edge, not the centre (438)
    # the fields the document names are all still there
    assert {"id", "status", "config", "outputs", "metadata", "createdAt"} <= set(data)
