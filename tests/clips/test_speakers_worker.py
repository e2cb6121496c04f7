"""The worker's crop path (`clip_crop_path`) ties voices to faces: on a real composite
(bench/_speakers.py: two people taking turns, the listener mouthing in step in some
turns) the source's voices are computed once, cached beside its audio features, and the
window holds whoever speaks; GET /v1/clips/{id} says so in the shot's reason."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files import File

from bench._speakers import composite
from clips.models import Analysis, Clip, Source
from clips.pipeline.reframe import CropPath
from clips.rendering import VOICES_KEY, clip_crop_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_worker_holds_the_face_of_the_voice_that_speaks(api, team, settings, tmp_path):
    from projects.services import default_project

    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    speakers = composite("in-step-at-times", tmp_path / "media")
    data = speakers.path.read_bytes()
    source = Source(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(speakers.path, "rb") as fh:
        source.file.save("sources/speakers.mp4", File(fh), save=False)
    source.save()
    clip = Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=0.0,
        end_time=12.0,
        duration=12.0,
        name="Two people, one mouthing along",
    )

    path = CropPath.from_dict(clip_crop_path(clip, speakers.path, None))

    voices = Analysis.objects.get(source=source, kind=Analysis.Kind.AUDIO, key=VOICES_KEY)
    assert voices.result["voices"] == 2 and voices.result["turns"]
    held = []
    for tenth in range(120):
        t = tenth / 10
        centre = speakers.truth["faces"][speakers.speaker_at(t)]["center_x"]
        x, _y, w, _h = path.at(t)
        held.append(x <= centre <= x + w)
    assert sum(held) / len(held) >= 0.85
    shot = api.get(f"/v1/clips/{clip.pk}").json()["data"]["cropPath"]["shots"][0]
    assert "voice tied to a face" in shot["reason"]
    # A second clip of the same source reuses the voices.
    other = Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=9.0,
        end_time=12.0,
        duration=3.0,
        name="Later",
    )
    clip_crop_path(other, speakers.path, None)
    assert Analysis.objects.filter(source=source, key=VOICES_KEY).count() == 1


def test_a_source_without_sound_keeps_the_old_reading(team, settings, tmp_path):
    import subprocess

    from bench._speakers import TALKING
    from projects.services import default_project

    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    video = tmp_path / "silent.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(TALKING / "two-speakers-dev.mp4"),
         "-t", "4", "-an", "-c:v", "copy", str(video)],
        check=True,
    )  # fmt: skip
    data = video.read_bytes()
    source = Source(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/silent.mp4", File(fh), save=False)
    source.save()
    clip = Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=0.0,
        end_time=4.0,
        duration=4.0,
        name="No sound",
    )

    path = CropPath.from_dict(clip_crop_path(clip, video, None))

    assert not Analysis.objects.filter(source=source, key=VOICES_KEY).exists()
    assert path.shots[0].faces == 2
    assert "voice" not in path.shots[0].reason
