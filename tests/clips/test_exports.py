"""POST /v1/clips/{id}/export on a real clip: formats, qualities, platforms, reuse, 202."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from django.core.files import File

from clips.models import Clip, Export

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def streams(path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,r_frame_rate:format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    data = json.loads(out)
    by_type = {s["codec_type"]: s for s in data["streams"]}
    return {
        "video": by_type.get("video"),
        "audio": by_type.get("audio"),
        "duration": float(data["format"]["duration"]),
    }


def test_an_export_renders_the_format_quality_and_platform_asked_and_is_reused(api, ready_clip):
    response = api.post(
        f"/v1/clips/{ready_clip.pk}/export", {"format": "webm", "quality": "low"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()["data"]
    assert (body["format"], body["quality"]) == ("webm", "low")
    assert body["exportUrl"] and body["expiresAt"] and body["fileSize"] > 1000
    export = Export.objects.get(pk=body["id"])
    info = streams(export.file.path)
    assert info["video"]["codec_name"] == "vp9" and info["audio"]["codec_name"] == "opus"
    assert (info["video"]["width"], info["video"]["height"]) == (480, 854)  # low, 9:16
    assert abs(info["duration"] - 6.0) < 0.1
    assert export.file_size == body["fileSize"] == export.file.size
    ready_clip.refresh_from_db()
    assert ready_clip.status == "exported"

    # the same settings again: the same export, not a second render
    stamp = export.updated_at
    again = api.post(
        f"/v1/clips/{ready_clip.pk}/export", {"format": "webm", "quality": "low"}, format="json"
    )
    assert again.status_code == 200 and again.json()["data"]["id"] == export.pk
    assert Export.objects.get(pk=export.pk).updated_at == stamp

    # a platform preset: TikTok's frame rate and loudness, mp4 H.264/AAC, no captions
    tiktok = api.post(
        f"/v1/clips/{ready_clip.pk}/export",
        {"format": "mp4", "quality": "medium", "platform": "tiktok", "burnCaptions": False},
        format="json",
    )
    assert tiktok.status_code == 200, tiktok.content
    data = tiktok.json()["data"]
    assert data["platform"] == "tiktok" and data["burnCaptions"] is False
    info = streams(Export.objects.get(pk=data["id"]).file.path)
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert (info["video"]["width"], info["video"]["height"]) == (720, 1280)
    assert info["video"]["r_frame_rate"] == "30/1"


def test_a_clip_longer_than_the_platform_allows_fails_its_export_with_the_reason(api, ready_clip):
    Clip.objects.filter(pk=ready_clip.pk).update(end_time=150.0, duration=147.0)
    response = api.post(
        f"/v1/clips/{ready_clip.pk}/export",
        {"format": "mp4", "quality": "low", "platform": "twitter"},
        format="json",
    )
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "processing_failed" and "at most 140" in error["message"]


def test_an_export_that_cannot_finish_at_once_answers_202_with_an_id_to_poll(
    api, ready_clip, settings
):
    settings.CLYPAI_JOBS_INLINE = False  # no worker runs: it stays queued
    settings.CLYPAI_EXPORT_WAIT_SECONDS = 0.3
    response = api.post(
        f"/v1/clips/{ready_clip.pk}/export", {"format": "mov", "quality": "high"}, format="json"
    )
    assert response.status_code == 202, response.content
    body = response.json()["data"]
    assert body["status"] == "queued" and body["exportUrl"] is None
    assert response["Location"] == f"/v1/exports/{body['id']}"
    poll = api.get(f"/v1/exports/{body['id']}")
    assert poll.status_code == 202 and poll.json()["data"]["id"] == body["id"]
    # the worker's turn: run the job as RQ would, then the poll answers the file
    from clips.tasks import export_process_task

    export_process_task(body["id"])
    done = api.get(f"/v1/exports/{body['id']}")
    assert done.status_code == 200, done.content
    info = streams(Export.objects.get(pk=body["id"]).file.path)
    assert info["video"]["codec_name"] == "h264"
    assert (info["video"]["width"], info["video"]["height"]) == (1080, 1920)


def test_a_corrected_word_reaches_the_srt_the_exports_and_a_re_render(api, ready_clip):
    from clips.rendering import clip_video_make

    clip_video_make(ready_clip, None, kind="preview")
    ready_clip.refresh_from_db()
    before = ready_clip.preview.read()
    burned = api.post(
        f"/v1/clips/{ready_clip.pk}/export", {"format": "mp4", "quality": "low"}, format="json"
    ).json()["data"]["id"]
    clean = api.post(
        f"/v1/clips/{ready_clip.pk}/export",
        {"format": "mp4", "quality": "low", "burnCaptions": False},
        format="json",
    ).json()["data"]["id"]

    got = api.get(f"/v1/clips/{ready_clip.pk}/transcript").json()["data"]
    assert [w["word"] for w in got["words"][:3]] == ["Bin", "blue", "at"]
    assert "Bin blue" in ready_clip.captions.open("rb").read().decode()

    response = api.patch(
        f"/v1/clips/{ready_clip.pk}/transcript",
        {"words": [{"index": 0, "word": "Put"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["words"][0]["word"] == "Put" and data["rerender"] == "queued"
    ready_clip.refresh_from_db()
    srt = ready_clip.captions.open("rb").read().decode()
    assert "Put blue" in srt and "Bin" not in srt
    vtt_name = ready_clip.captions.name[:-4] + ".vtt"
    assert "Put blue" in ready_clip.captions.storage.open(vtt_name).read().decode()
    # the re-render ran (inline here) and replaced the preview
    assert ready_clip.preview.read() != before
    # the export with burned captions is gone (the next one renders the correction);
    # the one without captions is still good
    assert not Export.objects.filter(pk=burned).exists()
    assert Export.objects.filter(pk=clean).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"words": []}, "words"),
        ({"words": "Put"}, "words"),
        ({"words": [{"index": 99, "word": "x"}]}, "words[0].index"),
        ({"words": [{"index": True, "word": "x"}]}, "words[0].index"),
        ({"words": [{"index": 0, "word": ""}]}, "words[0].word"),
        ({"words": [{"index": 0, "word": "two\nlines"}]}, "words[0].word"),
        ({"words": [{"index": 0, "word": "{\\b1}x"}]}, "words[0].word"),
        ({"words": [{"index": 0, "word": "a"}, {"index": 0, "word": "b"}]}, "words[1].index"),
        ({"words": [{"index": 0, "start": 99.0}]}, "words[0].start"),
        ({"words": [{"index": 0, "colour": "red"}]}, "words[0].colour"),
        ({"words": [{"index": 1, "start": 3.0}]}, "words"),  # out of order
        ({"text": "x"}, "text"),
    ],
)
def test_a_bad_correction_names_its_field_and_changes_nothing(api, ready_clip, body, field):
    before = list(ready_clip.words)
    response = api.patch(f"/v1/clips/{ready_clip.pk}/transcript", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["field"] == field
    ready_clip.refresh_from_db()
    assert ready_clip.words == before


def test_a_clip_still_processing_cannot_be_corrected_and_others_teams_clips_are_not_found(
    api, other_caller, ready_clip
):
    other = other_caller.client.get(f"/v1/clips/{ready_clip.pk}/transcript")
    assert other.status_code == 404
    Clip.objects.filter(pk=ready_clip.pk).update(status="processing")
    response = api.patch(
        f"/v1/clips/{ready_clip.pk}/transcript",
        {"words": [{"index": 0, "word": "Put"}]},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "clip_not_ready"


def _bumper(team, tmp_path, name, lavfi_video, lavfi_audio=None):
    from clips.services import upload_create

    path = tmp_path / f"{name}.mp4"
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi_video]
    if lavfi_audio:
        args += ["-f", "lavfi", "-i", lavfi_audio, "-shortest", "-c:a", "aac"]
    subprocess.run([*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    with open(path, "rb") as fh:
        return upload_create(
            team=team,
            file=File(fh, name=path.name),
            filename=path.name,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        )


def frame_rgb(path, at: float, width: int, height: int):
    import numpy as np

    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            str(at),
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def test_the_brand_kit_s_intro_and_outro_frame_the_export(api, ready_clip, team, tmp_path):
    from tests.factories import BrandKitFactory

    # a landscape red intro without sound, a blue outro with a tone
    intro = _bumper(team, tmp_path, "intro", "color=c=red:s=320x240:r=25:d=1")
    outro = _bumper(
        team, tmp_path, "outro", "color=c=blue:s=240x320:r=25:d=1.5", "sine=f=440:d=1.5"
    )
    kit = BrandKitFactory(team=team, intro_upload=intro, outro_upload=outro)
    Clip.objects.filter(pk=ready_clip.pk).update(brand_kit=kit)

    response = api.post(
        f"/v1/clips/{ready_clip.pk}/export", {"format": "mp4", "quality": "low"}, format="json"
    )
    assert response.status_code == 200, response.content
    path = Export.objects.get(pk=response.json()["data"]["id"]).file.path
    info = streams(path)
    assert (info["video"]["width"], info["video"]["height"]) == (480, 854)
    assert info["audio"]["codec_name"] == "aac"
    assert abs(info["duration"] - (1.0 + 6.0 + 1.5)) < 0.15
    # the intro is fitted, not cropped: red in the middle, black bars above and below
    first = frame_rgb(path, 0.5, 480, 854)
    assert first[427, 240, 0] > 200 and first[427, 240, 2] < 60
    assert first[20, 240].max() < 30
    # then the clip itself (a face on blue-green), then the blue outro
    middle = frame_rgb(path, 4.0, 480, 854)
    assert not (middle[427, 240, 0] > 200 and middle[427, 240, 2] < 60)
    last = frame_rgb(path, 8.0, 480, 854)
    assert last[427, 240, 2] > 200 and last[427, 240, 0] < 60


def test_the_brand_kit_s_logo_is_watermarked_where_and_as_large_as_it_says(
    api, ready_clip, team, tmp_path
):
    from django.core.files.base import ContentFile
    from PIL import Image

    from tests.factories import BrandKitFactory

    png = tmp_path / "logo.png"
    Image.new("RGBA", (200, 100), (255, 0, 255, 255)).save(png)
    kit = BrandKitFactory(
        team=team, watermark={"position": "top-left", "scale": 0.25, "opacity": 1.0}
    )
    kit.logo.save("logo.png", ContentFile(png.read_bytes()))
    Clip.objects.filter(pk=ready_clip.pk).update(brand_kit=kit)

    response = api.post(
        f"/v1/clips/{ready_clip.pk}/export",
        {"format": "mp4", "quality": "low", "burnCaptions": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    frame = frame_rgb(Export.objects.get(pk=response.json()["data"]["id"]).file.path, 2.0, 480, 854)
    magenta = (frame[..., 0] > 200) & (frame[..., 1] < 60) & (frame[..., 2] > 200)
    ys, xs = magenta.nonzero()
    assert len(xs) > 0
    # a quarter of the frame's width, in the top-left corner
    assert abs((xs.max() - xs.min() + 1) - 120) <= 6
    assert xs.min() < 40 and ys.min() < 40 and ys.max() < 854 / 4


def test_config_layout_chooses_the_layout_of_every_shot(api, ready_clip):
    from clips.rendering import clip_crop_path
    from clypai.lib.storage import local_path

    path = local_path(ready_clip.source.file.name, cache_dir=None)
    auto = clip_crop_path(ready_clip, path, None)
    assert {s["layout"] for s in auto["shots"]} == {"fill"}  # one face: follow it
    Clip.objects.filter(pk=ready_clip.pk).update(layout="fit")
    ready_clip.refresh_from_db()
    fit = clip_crop_path(ready_clip, path, None)
    assert {s["layout"] for s in fit["shots"]} == {"fit"}
    assert ready_clip.crop_path["request"]["layout"] == "fit"  # stored with the clip


def test_the_api_takes_a_layout_and_names_a_bad_one(api, team):
    ok = api.post(
        "/v1/clips",
        {"sourceVideoUrl": "https://example.com/v.mp4", "config": {"layout": "split"}},
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["data"]["config"]["layout"] == "split"
    bad = api.post(
        "/v1/clips",
        {"sourceVideoUrl": "https://example.com/v.mp4", "config": {"layout": "zoom"}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "config.layout"
