"""POST /v1/clips/{id}/export with format otio, fcpxml or edl on real clips: a zip with
the timeline (parsed back with OpenTimelineIO, the cut timed to the frame), the SRT, a
README.txt and the source, or, past CLYPAI_EXPORT_MEDIA_MAX_BYTES, a source link made
fresh at each download; the crop path as GET /v1/clips/{id} shows it (a hand override
included)."""

from __future__ import annotations

import hashlib
import io
import re
import time
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from django.core.files import File

from clips.models import Clip, Export, Source
from clips.pipeline.captions import to_srt
from clips.pipeline.timeline import TransformKey, timeline_read, window_from_transform
from clips.rendering import clip_captions, clip_crop_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GRID_FPS = 25


def _export(api, clip, **body):
    response = api.post(f"/v1/clips/{clip.pk}/export", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def _zip(export_id) -> zipfile.ZipFile:
    export = Export.objects.get(pk=export_id)
    return zipfile.ZipFile(io.BytesIO(export.file.read()))


def _plain(value):
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    return [_plain(v) for v in value]


@pytest.mark.parametrize("fmt, ext", [("fcpxml", ".fcpxml"), ("otio", ".otio"), ("edl", ".edl")])
def test_a_timeline_export_is_a_zip_with_the_cut_to_the_frame_the_srt_and_the_source(
    api, ready_clip, fmt, ext
):
    body = _export(api, ready_clip, format=fmt)

    assert body["format"] == fmt and body["burnCaptions"] is False
    assert body["exportUrl"] and body["fileSize"] > 1000
    export = Export.objects.get(pk=body["id"])
    assert export.file.name.endswith(".zip") and not export.source_linked
    package = _zip(body["id"])
    source = ready_clip.source
    assert sorted(package.namelist()) == sorted(
        [f"{ready_clip.pk}{ext}", f"{ready_clip.pk}.srt", "README.txt", "media/source.mp4"]
    )
    # the source, whole, where the timeline looks for it
    media = package.read("media/source.mp4")
    assert hashlib.sha256(media).hexdigest() == source.sha256
    # the SRT is the clip's own
    assert package.read(f"{ready_clip.pk}.srt").decode() == to_srt(clip_captions(ready_clip))
    readme = package.read("README.txt").decode()
    assert "media/source.mp4" in readme and "NOT in this zip" not in readme

    timeline = timeline_read(package.read(f"{ready_clip.pk}{ext}").decode(), fmt, fps=GRID_FPS)
    clips = list(timeline.find_clips())
    assert clips
    for clip in clips:  # 3.0 s to 9.0 s at 25 fps: frames 75 to 225
        assert clip.source_range.start_time.value == round(ready_clip.start_time * GRID_FPS)
        assert clip.source_range.duration.value == round(
            (ready_clip.end_time - ready_clip.start_time) * GRID_FPS
        )
        assert clip.source_range.start_time.rate == GRID_FPS
        if fmt != "edl":
            assert clip.media_reference.target_url == "media/source.mp4"
    ready_clip.refresh_from_db()
    assert ready_clip.status == "exported"
    if fmt == "otio":
        crop = api.get(f"/v1/clips/{ready_clip.pk}").json()["data"]["cropPath"]
        meta = _plain(clips[0].metadata["clypai"])
        assert meta["clipId"] == ready_clip.pk and meta["captions"] == f"{ready_clip.pk}.srt"
        assert meta["cropPath"]["keyframes"] == crop["keyframes"]
        assert [s["why"] for s in meta["cropPath"]["shots"]] == [s["why"] for s in crop["shots"]]


@pytest.fixture
def two_speakers(settings, team, shared_media, tmp_path):
    """A completed 4 s clip of two-speakers-dev (two people side by side, faces at x 560
    and 1360 of 1920), uploaded as "Interview take 2.mp4"."""
    from clips.models import Upload
    from projects.services import default_project

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    video = shared_media / "talking_head" / "two-speakers-dev.mp4"
    data = video.read_bytes()
    source = Source(team=team, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with open(video, "rb") as fh:
        source.file.save("sources/two.mp4", File(fh), save=False)
    source.save()
    upload = Upload.objects.create(
        team=team, filename="Interview take 2.mp4", content_type="video/mp4", size_bytes=len(data)
    )
    clip = Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        upload=upload,
        status="completed",
        start_time=2.0,
        end_time=6.0,
        duration=4.0,
        name="Two",
        enable_captions=False,
    )
    clip_crop_path(clip, video, None)  # as its render did
    return clip


def test_the_fcpxml_follows_the_effective_crop_path_a_hand_override_included(api, two_speakers):
    override = {"keyframes": [{"t": 0, "x": 560, "y": 540}, {"t": 3, "x": 1360, "y": 540}]}
    patched = api.patch(f"/v1/clips/{two_speakers.pk}", {"cropOverride": override}, format="json")
    assert patched.status_code == 200, patched.content

    body = _export(api, two_speakers, format="fcpxml", quality="medium")

    package = _zip(body["id"])
    name = f"{two_speakers.pk}.fcpxml"
    # no captions: no SRT; the upload's name for the media
    assert sorted(package.namelist()) == sorted([name, "README.txt", "media/Interview-take-2.mp4"])
    root = ET.fromstring(package.read(name).decode().split("<!DOCTYPE fcpxml>")[-1])
    assert root.find(".//asset").get("src") == "media/Interview-take-2.mp4"
    sequence_format = root.find(f".//format[@id='{root.find('.//sequence').get('format')}']")
    assert (sequence_format.get("width"), sequence_format.get("height")) == ("720", "1280")
    assert root.find(".//spine/clip/caption") is None

    crop = api.get(f"/v1/clips/{two_speakers.pk}").json()["data"]["cropPath"]
    from clips.pipeline.reframe import Keyframe, position_at

    keyframes = [Keyframe(**k) for k in crop["keyframes"]]
    transform = root.find(".//spine/clip/adjust-transform")
    position = transform.find("param[@name='position']/keyframeAnimation")
    scale = transform.find("param[@name='scale']/keyframeAnimation")
    seen = []
    for pos, sc in zip(position, scale, strict=True):
        frame = Fraction(pos.get("time").rstrip("s")) * 25 - 2 * 25
        x, y = (float(v) for v in pos.get("value").split())
        key = TransformKey(int(frame), x, y, float(sc.get("value").split()[0]))
        cx, _cy, h = window_from_transform(
            key, source_width=1920, source_height=1080, frame_height=1280
        )
        wx, _wy = position_at(keyframes, int(frame) / 25)
        assert cx == pytest.approx(wx + crop["keyframes"][0]["w"] / 2, abs=1.0)
        assert h == pytest.approx(1080, abs=1.0)
        seen.append(cx)
    # the override's move: from the left face to the right one
    assert seen[0] == pytest.approx(560, abs=2) and seen[-1] == pytest.approx(1360, abs=2)


def test_a_large_source_is_linked_and_the_link_is_fresh_at_each_download(api, ready_clip, settings):
    settings.CLYPAI_EXPORT_MEDIA_MAX_BYTES = 1000
    settings.CLYPAI_SIGNED_URL_TTL_SECONDS = 3600
    body = _export(api, ready_clip, format="edl")

    export = Export.objects.get(pk=body["id"])
    assert export.source_linked
    assert "/packages/" in body["exportUrl"]
    stored = zipfile.ZipFile(io.BytesIO(export.file.read()))
    assert not any(n.startswith("media/") for n in stored.namelist())

    def download():
        url = api.get(f"/v1/exports/{export.pk}").json()["data"]["exportUrl"]
        response = api.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        package = zipfile.ZipFile(io.BytesIO(response.content))
        assert sorted(package.namelist()) == sorted(
            [f"{ready_clip.pk}.edl", f"{ready_clip.pk}.srt", "README.txt"]
        )
        readme = package.read("README.txt").decode()
        assert "NOT in this zip" in readme and "media/source.mp4" in readme
        link = re.search(r"^    (http\S+)$", readme, re.M).group(1)
        until = re.search(r"works until (\S+Z)", readme).group(1)
        return link, datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    link, until = download()
    assert abs(until - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=30)
    source = api.get(link)
    assert source.status_code == 200
    assert hashlib.sha256(b"".join(source.streaming_content)).hexdigest() == (
        ready_clip.source.sha256
    )
    time.sleep(1.1)
    again, later = download()
    assert again != link and later > until  # renewed: a new link, a later end

    # a forged or stale package link answers 404
    assert api.get(body["exportUrl"].replace("/packages/", "/packages/x")).status_code == 404


def test_an_unknown_format_is_refused_naming_the_field(api, ready_clip):
    response = api.post(f"/v1/clips/{ready_clip.pk}/export", {"format": "aaf"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error.get("field") == "format"
    assert "fcpxml" in error["message"]


def test_on_s3_a_timeline_export_goes_through_the_render_queue_and_links_a_presigned_source(
    s3_storage, ready_clip, api, settings
):
    """The durable path: queued on the real "render" queue on Redis, made by a real RQ
    worker (burst), stored on S3; the source, over the package limit, is linked by a
    presigned S3 link that downloads it, fresh at each download of the zip."""
    import requests
    from django_rq import get_worker
    from rq import SimpleWorker

    from clypai.queues import get_queue

    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_EXPORT_WAIT_SECONDS = 0
    settings.CLYPAI_EXPORT_MEDIA_MAX_BYTES = 1000
    queue = get_queue("render")
    queue.connection.flushdb()
    try:
        response = api.post(f"/v1/clips/{ready_clip.pk}/export", {"format": "otio"}, format="json")
        assert response.status_code == 202, response.content
        export_id = response.json()["data"]["id"]
        assert queue.job_ids == [export_id]

        get_worker("render", worker_class=SimpleWorker).work(burst=True, logging_level="WARNING")
    finally:
        queue.connection.flushdb()

    export = Export.objects.get(pk=export_id)
    assert export.status == "completed" and export.source_linked
    assert export.file.name.endswith(".zip")
    assert s3_storage.bucket and export.file.storage.exists(export.file.name)
    body = api.get(f"/v1/exports/{export_id}").json()["data"]
    package = zipfile.ZipFile(io.BytesIO(api.get(body["exportUrl"]).content))
    readme = package.read("README.txt").decode()
    link = re.search(r"^    (http\S+)$", readme, re.M).group(1)
    assert "X-Amz-Signature=" in link  # S3's own presigned link
    source = requests.get(link, timeout=10)
    assert source.status_code == 200
    assert hashlib.sha256(source.content).hexdigest() == ready_clip.source.sha256
    timeline = timeline_read(package.read(f"{ready_clip.pk}.otio").decode(), "otio", fps=25)
    assert [c.source_range.start_time.value for c in timeline.find_clips()] == [75, 75]


def test_a_transcript_correction_makes_the_timelines_captions_anew(api, ready_clip):
    first = _export(api, ready_clip, format="fcpxml")
    assert "Bin blue" in _zip(first["id"]).read(f"{ready_clip.pk}.srt").decode()

    response = api.patch(
        f"/v1/clips/{ready_clip.pk}/transcript",
        {"words": [{"index": 0, "word": "Pin"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert not Export.objects.filter(pk=first["id"]).exists()  # dropped: its captions are old

    again = _export(api, ready_clip, format="fcpxml")
    package = _zip(again["id"])
    assert "Pin blue" in package.read(f"{ready_clip.pk}.srt").decode()
    timeline = package.read(f"{ready_clip.pk}.fcpxml").decode()
    assert ">Pin blue" in timeline and ">Bin blue" not in timeline


def test_an_edl_of_a_15_fps_source_fails_with_the_reason(api, ready_clip, tmp_path):
    import subprocess

    slow = tmp_path / "grid-15.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", ready_clip.source.file.path, "-t", "12",
         "-vf", "fps=15", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(slow)],
        check=True,
    )  # fmt: skip
    source = ready_clip.source
    source.file.delete(save=False)
    with open(slow, "rb") as fh:
        source.file.save("sources/grid-15.mp4", File(fh), save=True)

    response = api.post(f"/v1/clips/{ready_clip.pk}/export", {"format": "edl"}, format="json")

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "processing_failed" and "SMPTE" in error["message"]
    assert error["details"]["fps"] == 15 and error["details"]["exportId"]
    # the same clip as FCPXML: 15 fps frames, to the frame
    body = _export(api, ready_clip, format="fcpxml")
    timeline = timeline_read(
        _zip(body["id"]).read(f"{ready_clip.pk}.fcpxml").decode(), "fcpxml", fps=15
    )
    assert [c.source_range.start_time.value for c in timeline.find_clips()] == [45, 45]


def test_a_timeline_counts_as_work_but_no_render_minutes(api, ready_clip, team):
    from projects.models import MonthlyUsage, month_start

    team.monthly_render_minutes = 0
    team.save()
    refused = api.post(f"/v1/clips/{ready_clip.pk}/export", {"format": "mp4"}, format="json")
    assert refused.status_code == 429  # a video renders: no minutes left

    body = _export(api, ready_clip, format="edl")

    assert Export.objects.get(pk=body["id"]).charged_seconds == 0
    row = MonthlyUsage.objects.filter(team=team, month=month_start()).first()
    assert row is None or row.render_seconds == 0
