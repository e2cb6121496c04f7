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


def _frame(path, number: int, size: tuple[int, int]):
    """Frame `number` of a video, decoded by ffmpeg, as RGB."""
    import subprocess

    import numpy as np

    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{number})",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(size[1], size[0], 3)


def _thumbnails(path):
    """Every frame of a video, 16x16, as RGB."""
    import subprocess

    import numpy as np

    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "scale=16:16", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "pipe:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16, 16, 3)


def _frame_count(path) -> int:
    import subprocess

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    return int(out.strip())


def test_a_split_shot_is_exported_as_the_render_stacks_it(api, two_speakers):
    """The two speakers in a split (a hand override): the FCPXML's two panels, read by
    FCPXML's own rules, put the picture where the render does, pixel for pixel."""
    import numpy as np
    from PIL import Image

    from tests.clips.pipeline.test_timeline import placed

    patched = api.patch(
        f"/v1/clips/{two_speakers.pk}",
        {"cropOverride": {"shots": [{"shot": 0, "layout": "split"}]}},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    body = _export(api, two_speakers, format="fcpxml", quality="low")
    crop = api.get(f"/v1/clips/{two_speakers.pk}").json()["data"]["cropPath"]
    (shot,) = [s for s in crop["shots"] if s["layout"] == "split"]
    assert len(shot["panels"]) == 2
    # the render's frames of the shot (2.0 s to 6.0 s of the source at 25 fps)
    first, last = round(shot["start"] * 25), min(100, round(shot["end"] * 25))

    text = _zip(body["id"]).read(f"{two_speakers.pk}.fcpxml").decode()
    assert "lanes 1 and 2" in _zip(body["id"]).read("README.txt").decode()
    back = timeline_read(text, "fcpxml", fps=25)
    lanes = {t.name: [c for c in t.find_clips()] for t in back.tracks}
    for lane in ("1", "2"):
        (panel,) = lanes[lane]
        assert panel.source_range.start_time.value == 50 + first
        assert panel.source_range.duration.value == last - first
        assert panel.media_reference.target_url == "media/Interview-take-2.mp4"

    root = ET.fromstring(text.split("<!DOCTYPE fcpxml>")[-1])
    boxes = [(0, 0, 480, 427), (0, 427, 480, 427)]  # top and bottom half of 480x854
    windows = []
    for lane, window, box in zip(("1", "2"), shot["panels"], boxes, strict=True):
        (element,) = [c for c in root.iter("clip") if c.get("lane") == lane]
        seen, landed = placed(element, source=(1920, 1080), frame=(480, 854))
        assert seen == pytest.approx((window["x"], window["y"], window["w"], window["h"]), abs=0.05)
        assert landed == pytest.approx(box, abs=0.05)
        windows.append([round(v) for v in seen])

    # The render's frame 25 (clip second 1) against the FCPXML's panels over the source's
    # frame 75: each trimmed window scaled into its box.
    video = _export(api, two_speakers, format="mp4", quality="low", burnCaptions=False)
    rendered = _frame(Export.objects.get(pk=video["id"]).file.path, 25, (480, 854)).astype(float)
    source = _frame(two_speakers.source.file.path, 75, (1920, 1080))

    def composite(order):
        canvas = np.zeros((854, 480, 3))
        for (x, y, w, h), (bx, by, bw, bh) in zip(order, boxes, strict=True):
            part = Image.fromarray(source[y : y + h, x : x + w]).resize((bw, bh), Image.BICUBIC)
            canvas[by : by + bh, bx : bx + bw] = np.asarray(part)
        return canvas

    as_exported = np.abs(composite(windows) - rendered).mean()
    swapped = np.abs(composite(windows[::-1]) - rendered).mean()
    assert as_exported < 6, as_exported  # encoding noise
    assert swapped > 3 * as_exported, (swapped, as_exported)


def test_the_brand_kit_s_intro_and_outro_frame_the_cut_in_each_timeline(
    api, ready_clip, team, tmp_path, settings
):
    """A 30 fps intro of 1.4 s with sound and a silent 25 fps outro, generated here:
    each timeline parses back to intro + cut + outro, to the frame, as long as the
    render of the same clip is; the zip packs both; the SRT starts after the intro."""
    from dataclasses import replace

    from tests.clips.test_exports import _bumper
    from tests.factories import BrandKitFactory

    intro = _bumper(team, tmp_path, "intro", "testsrc=s=320x240:r=30:d=1.4", "sine=f=440:d=1.4")
    outro = _bumper(team, tmp_path, "outro", "color=c=blue:s=240x320:r=25:d=1.5")
    kit = BrandKitFactory(team=team, intro_upload=intro, outro_upload=outro)
    Clip.objects.filter(pk=ready_clip.pk).update(brand_kit=kit)
    ready_clip.refresh_from_db()
    # the bumpers' pictures, at the clip's 25 fps
    intro_frames = round(_frame_count(intro.file.path) / 30 * 25)
    outro_frames = _frame_count(outro.file.path)
    assert (intro_frames, outro_frames) == (35, 38)
    total = intro_frames + 150 + outro_frames

    shift = intro_frames / 25
    chunks = [
        replace(c, start=c.start + shift, end=c.end + shift) for c in clip_captions(ready_clip)
    ]
    for fmt, ext in (("otio", ".otio"), ("fcpxml", ".fcpxml"), ("edl", ".edl")):
        # the EDL's source is linked: the intro and outro are packed all the same
        settings.CLYPAI_EXPORT_MEDIA_MAX_BYTES = 1000 if fmt == "edl" else 2 * 1024**3
        body = _export(api, ready_clip, format=fmt)
        package = _zip(body["id"])
        names = {f"{ready_clip.pk}{ext}", f"{ready_clip.pk}.srt", "README.txt"}
        names |= {"media/intro-intro.mp4", "media/outro-outro.mp4"}
        if fmt != "edl":
            names.add("media/source.mp4")
        assert set(package.namelist()) == names
        for upload, name in ((intro, "media/intro-intro.mp4"), (outro, "media/outro-outro.mp4")):
            assert package.read(name) == upload.file.open("rb").read()
        assert package.read(f"{ready_clip.pk}.srt").decode() == to_srt(chunks)
        readme = package.read("README.txt").decode()
        assert "media/intro-intro.mp4" in readme and "media/outro-outro.mp4" in readme

        timeline = timeline_read(package.read(f"{ready_clip.pk}{ext}").decode(), fmt, fps=25)
        assert timeline.duration().value == total and timeline.duration().rate == 25, fmt
        video = [t for t in timeline.tracks if t.kind == "Video"][0]
        assert [c.duration().value for c in video] == [intro_frames, 150, outro_frames]
        assert video[1].source_range.start_time.value == 75
        if fmt != "edl":
            assert [c.media_reference.target_url for c in video] == [
                "media/intro-intro.mp4", "media/source.mp4", "media/outro-outro.mp4"]  # fmt: skip
    # a fresh download of the linked package still names them
    url = api.get(f"/v1/exports/{body['id']}").json()["data"]["exportUrl"]
    readme = zipfile.ZipFile(io.BytesIO(api.get(url).content)).read("README.txt").decode()
    assert "media/intro-intro.mp4" in readme and "NOT in this zip" in readme

    # The render of the clip with the same brand kit: its blue outro starts on the frame
    # the timelines start it on. (The render holds the outro's last frame one frame
    # longer, 224 frames in all: ffmpeg's concat of the bumpers' sound and picture.)
    video = _export(api, ready_clip, format="mp4", quality="low")
    rendered = Export.objects.get(pk=video["id"]).file.path
    frames = _thumbnails(rendered)
    assert len(frames) - total in (0, 1), (len(frames), total)
    blue = [n for n, f in enumerate(frames) if f[8, 8, 2] > 200 and f[8, 8, 0] < 60]
    assert blue[0] == intro_frames + 150 and len(blue) >= outro_frames
