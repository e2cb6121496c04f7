"""Workers are stateless: two `manage.py rqworker` processes, each with a work dir of its
own, sharing nothing but PostgreSQL, Redis and an S3 server (moto, on loopback), take
three sources through both APIs at once (one from a URL, one uploaded, one by a
presigned PUT) to exported clips. The stages hop machines on purpose: one worker serves
`transcribe` and `render` (a GPU machine's queues), the other `analysis`, `webhooks` and
`default`, so each source is analysed on one, transcribed on the other and analysed
further on the first, and its previews, full renders and exports are made on the second. Then every object in the bucket is one the database
names, and each is a whole file of its kind."""

from __future__ import annotations

import functools
import json
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from clips.analysis import source_audio_name
from clips.models import Clip, Export, Job, Source, Upload
from clypai.queues import get_queue
from tests.processes import manage, process_env, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

URL_VIDEO = "talking_head/grid/bbaf2n.mpg"  # 3 s each: short sources, cheap renders
UPLOADED_VIDEO = "talking_head/grid/brbk7n.mpg"
PRESIGNED_VIDEO = "talking_head/grid_concat_11clips_33s.mp4"  # long enough for a job


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def media_url(shared_media):
    """The shared media over HTTP on 127.0.0.1 (the only address a test may fetch)."""
    handler = functools.partial(_QuietHandler, directory=str(shared_media))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def machines(settings, s3_storage, media_root, tmp_path):
    """Two worker machines on the test S3 bucket, PostgreSQL and Redis, and nothing
    else in common (each its own work dir; no MEDIA_ROOT is read on S3)."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_TRANSCRIBE_ON_QUEUE = True
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_JOB_CLIP_COUNT = 1
    get_queue("analysis").connection.flushdb()
    server = s3_storage.server
    shared = {
        "CLYPAI_S3_BUCKET": s3_storage.bucket,
        "CLYPAI_S3_ENDPOINT_URL": server.endpoint_url,
        "CLYPAI_S3_ACCESS_KEY_ID": server.access_key,
        "CLYPAI_S3_SECRET_ACCESS_KEY": server.secret_key,
        "CLYPAI_S3_REGION": server.region,
        "CLYPAI_S3_PREFIX": s3_storage.location,
        "CLYPAI_URL_ALLOWLIST": "127.0.0.1",
        "CLYPAI_JOB_CLIP_COUNT": "1",
        "HF_HUB_OFFLINE": "1",
    }
    started = {}
    for name, queues in (
        ("gpu", ("transcribe", "render")),
        ("cpu", ("analysis", "webhooks", "default")),
    ):
        work = tmp_path / f"{name}-work"
        env = process_env(settings, tmp_path / f"{name}-unused-media", work, **shared)
        log = tmp_path / f"{name}.log"
        started[name] = (
            manage(env, "rqworker", *queues, "--with-scheduler", log=log),
            work,
            log,
        )
    yield started
    for process, _, _ in started.values():
        stop(process)
    get_queue("analysis").connection.flushdb()


def _wait(machines, predicate, timeout: float, what: str) -> None:
    def check():
        for name, (process, _, log) in machines.items():
            assert process.poll() is None, f"{name} worker exited:\n{log.read_text()[-3000:]}"
        return predicate()

    if not wait_for(check, timeout, every=0.5):
        logs = "\n".join(
            f"--- {n}\n{log.read_text()[-2500:]}" for n, (_, _, log) in machines.items()
        )
        raise AssertionError(f"{what} timed out\n{logs}")


def _ffprobe(path: Path) -> dict:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (path.name, done.stderr)
    return json.loads(done.stdout)


def test_two_workers_sharing_only_postgres_redis_and_s3_take_three_sources_to_exports(
    machines, s3_storage, caller, shared_media, media_url, tmp_path
):
    v1 = caller.client
    chop = APIClient()
    chop.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")

    # Three sources, through both APIs, at once.
    from_url = v1.post(
        "/v1/clips",
        {
            "sourceVideoUrl": f"{media_url}/{URL_VIDEO}",
            "startTime": 0.2,
            "endTime": 2.8,
            "config": {"aspectRatio": "1:1", "language": "en"},
        },
        format="json",
    )
    assert from_url.status_code == 201, from_url.content
    uploaded = v1.post(
        "/v1/uploads",
        {"file": SimpleUploadedFile("brbk7n.mpg", (shared_media / UPLOADED_VIDEO).read_bytes())},
        format="multipart",
    )
    assert uploaded.status_code == 201, uploaded.content
    from_upload = v1.post(
        "/v1/clips",
        {
            "sourceUploadId": uploaded.json()["data"]["id"],
            "startTime": 0.2,
            "endTime": 2.8,
            "config": {"aspectRatio": "1:1", "language": "en"},
        },
        format="json",
    )
    assert from_upload.status_code == 201, from_upload.content
    presigned = chop.post("/choppity/v1/uploads", {"filename": "talk.mp4"}, format="json")
    assert presigned.status_code == 201, presigned.content
    put = requests.put(
        presigned.json()["upload_url"],
        data=(shared_media / PRESIGNED_VIDEO).read_bytes(),
        timeout=60,
    )
    assert put.status_code == 200
    job = chop.post(
        "/choppity/v1/clips",
        {
            "source": {"upload_id": presigned.json()["upload_id"]},
            "target_duration": 6,
            "language": "en",
        },
        format="json",
    )
    assert job.status_code == 202, job.content
    clip_ids = [from_url.json()["data"]["id"], from_upload.json()["data"]["id"]]
    job_id = job.json()["job_id"]

    _wait(
        machines,
        lambda: (
            Clip.objects.filter(pk__in=clip_ids, status__in=("completed", "failed")).count() == 2
            and Job.objects.filter(pk=job_id, status__in=("done", "error")).exists()
        ),
        900,
        "the clips and the job",
    )
    for clip in Clip.objects.filter(pk__in=clip_ids):
        assert clip.status == "completed", (clip.pk, clip.error)
    job_row = Job.objects.get(pk=job_id)
    assert job_row.status == "done", job_row.error
    (job_clip,) = job_row.clips.all()

    # Exported: /v1 exports of the two clips, a Choppity full render of the job's clip.
    export_ids = []
    for clip_id in clip_ids:
        answer = v1.post(f"/v1/clips/{clip_id}/export", {"quality": "low"}, format="json")
        assert answer.status_code in (200, 202), answer.content
        export_ids.append(answer.json()["data"]["id"])
    render = chop.post(f"/choppity/v1/clips/{job_clip.uuid}/renders", format="json")
    assert render.status_code == 202, render.content
    _wait(
        machines,
        lambda: (
            Export.objects.filter(pk__in=export_ids, status__in=("completed", "failed")).count()
            == 2
            and Clip.objects.filter(
                pk=job_clip.pk, full_render_status__in=("done", "error")
            ).exists()
        ),
        600,
        "the exports and the full render",
    )
    for export in Export.objects.filter(pk__in=export_ids):
        assert export.status == "completed", export.error
    job_clip.refresh_from_db()
    assert job_clip.full_render_status == "done", job_clip.full_render_error

    # The stages hopped machines: each worker did its queues' part and kept its own cache.
    logs = {name: log.read_text() for name, (_, _, log) in machines.items()}

    def ran(name: str, queue: str, task: str) -> int:
        return logs[name].count(f"{queue}: clips.tasks.{task}(")

    assert ran("gpu", "transcribe", "clip_transcribe_task") == 2, logs["gpu"][-3000:]
    assert ran("gpu", "transcribe", "job_transcribe_task") == 1
    # Each clip's analysis ran twice: before its transcript and after, on the other machine.
    assert ran("cpu", "analysis", "clip_process_task") == 4
    assert ran("cpu", "analysis", "job_process_task") == 2
    assert ran("gpu", "render", "clip_process_task") == 1  # the job's clip, its preview
    assert ran("gpu", "render", "export_process_task") == 2
    assert ran("gpu", "render", "full_render_task") == 1

    # Every object in the bucket is one the database names, each a whole file.
    client = s3_storage.server.client()
    listed = client.list_objects_v2(Bucket=s3_storage.bucket, Prefix=f"{s3_storage.location}/")
    keys = {entry["Key"] for entry in listed.get("Contents", ())}
    assert not listed.get("IsTruncated")
    sources = list(Source.objects.filter(team=caller.team))
    assert len(sources) == 3
    expected = {s3_storage.key(source.file.name) for source in sources}
    expected |= {s3_storage.key(source_audio_name(source)) for source in sources}
    expected |= {s3_storage.key(upload.file.name) for upload in Upload.objects.all()}
    for clip in Clip.objects.filter(team=caller.team):
        for field in (clip.video, clip.preview, clip.thumbnail, clip.captions):
            if field:
                expected.add(s3_storage.key(field.name))
        if clip.captions:  # the WebVTT beside the SRT (rendering.clip_write_captions)
            expected.add(s3_storage.key(clip.captions.name.removesuffix(".srt") + ".vtt"))
    expected |= {s3_storage.key(export.file.name) for export in Export.objects.all()}
    assert keys == expected, {"unexpected": keys - expected, "missing": expected - keys}
    assert not any(key.startswith(s3_storage.key("incoming/")) for key in keys)

    checked = {"video": 0, "audio": 0, "image": 0, "captions": 0}
    for key in sorted(keys):
        local = tmp_path / "bucket" / key.replace("/", "__")
        local.parent.mkdir(exist_ok=True)
        client.download_file(s3_storage.bucket, key, str(local))
        assert local.stat().st_size > 0, key
        suffix = local.suffix.lower()
        if suffix in (".srt", ".vtt"):
            text = local.read_text()
            assert "-->" in text, key
            assert text.startswith("WEBVTT") == (suffix == ".vtt"), key
            checked["captions"] += 1
            continue
        probe = _ffprobe(local)
        kinds = {stream["codec_type"] for stream in probe["streams"]}
        if suffix in (".jpg", ".jpeg", ".png", ".webp"):
            assert kinds == {"video"}, key  # a still image decodes as one video frame
            checked["image"] += 1
        elif suffix == ".wav":
            assert kinds == {"audio"} and float(probe["format"]["duration"]) > 2, key
            assert probe["streams"][0]["sample_rate"] == "16000"
            checked["audio"] += 1
        else:
            assert "video" in kinds and float(probe["format"]["duration"]) > 1, (key, probe)
            checked["video"] += 1
    # 3 sources, 3 clip videos, a preview, 2 exports; 3 audio tracks; thumbnails; captions
    assert checked["video"] >= 3 + 3 + 1 + 2, checked
    assert checked["audio"] == 3 and checked["image"] >= 3 and checked["captions"] >= 6, checked

    # Each machine's work dir held only its own cache; neither needed the other's.
    for name, (_, work, _) in machines.items():
        assert work.is_dir() and any(work.rglob("*")), name
