"""Hostile files through the real path: uploaded through the API, a clip asked for, one
real `manage.py rqworker` process (the same one for the whole module) doing the work.

Each file is made at test time with ffmpeg and a few byte patches. Each must end
`failed` with `processing_failed` and details within 90 s, the task itself failing
nothing in RQ (the clip's failure is the product's answer, not a crash), the worker the
same process and idle again; the last test has the same worker make a real clip.

What the product does with the ones that are not plainly broken, decided here:
- audio only: refused (`no video stream`): a clip is a video;
- a corrupted middle: the analysis reads past the damage (ffmpeg conceals it), the render
  of a range across it cannot decode it: `failed`, "could not decode the source", and
  no video shown. (Noise elsewhere, outside the chosen range, can make a clip: the
  noise here is the same every run.)
- a duration that lies (the header says 5 s, the data lasts 10 minutes): never more than
  the probed duration is decoded: at most 5 s of audio reach the work dir, and a clip,
  if made, lies within those 5 s.
- playlists and concat lists naming local files: refused by their detected format, and
  the files they name are never opened (a FIFO among them would show a reader).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rq.registry import FailedJobRegistry

from clips.models import Clip
from clypai.queues import get_queue
from tests.clips.hostile_media import (
    CLAIMED_SECONDS,
    make_audio_only,
    make_corrupted_middle,
    make_ffconcat,
    make_hls,
    make_huge_header,
    make_lying_duration,
    make_many_tracks,
    make_text,
    make_truncated,
    seconds,
)
from tests.processes import manage, process_env, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DEADLINE = 90  # seconds from the clip's creation to its end
GOOD = "talking_head/grid/"  # a 3 s GRID clip: the job after the hostile ones


# The system ----------------------------------------------------------------------------


class Worker:
    """One `manage.py rqworker` for the module, on its media and work folders."""

    def __init__(self, env: dict, log: Path):
        self.log = log
        self.process = manage(env, "rqworker", "analysis", "render", "default", log=log)
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    made = {name: root / name for name in ("media", "work", "corpus", "served")}
    for path in made.values():
        path.mkdir()
    return made


@pytest.fixture(scope="module")
def worker(folders, django_db_setup, django_db_blocker):
    from django.conf import settings

    with django_db_blocker.unblock():
        env = process_env(
            settings,
            folders["media"],
            folders["work"],
            CLYPAI_URL_ALLOWLIST="127.0.0.1",
            CLYPAI_HEARTBEAT_SECONDS="1",
        )
    get_queue("analysis").connection.flushdb()
    running = Worker(env, folders["work"].parent / "worker.log")
    yield running
    stop(running.process)
    get_queue("analysis").connection.flushdb()


@pytest.fixture
def on_worker(settings, folders, worker):
    """This test's files and settings where the worker has them."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.MEDIA_ROOT = folders["media"]
    settings.CLYPAI_WORK_DIR = folders["work"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folders["media"]), "base_url": "/media/"},
        },
    }
    assert worker.alive(), worker.tail()
    return worker


class FifoCanary:
    """A named pipe that records whether anything opened it for reading: a reader's
    open blocks until a writer comes, and this thread keeps trying to be that writer."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path)
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader
                    raise
                time.sleep(0.02)
                continue
            self.opened = True
            os.write(fd, b"secret canary bytes\n")
            os.close(fd)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def _upload(api, path: Path) -> str:
    upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="video/mp4")
    response = api.post("/v1/uploads", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["data"]["id"]


def _clip_from(api, **source) -> str:
    response = api.post("/v1/clips", {**source, "config": {"language": "en"}}, format="json")
    assert response.status_code in (201, 202), response.content
    return response.json()["data"]["id"]


def _ended(api, worker: Worker, clip_id: str) -> dict:
    started = time.monotonic()
    ended = wait_for(
        lambda: Clip.objects.filter(pk=clip_id, status__in=("completed", "failed")).exists(),
        timeout=DEADLINE,
        every=0.25,
    )
    took = time.monotonic() - started
    row = Clip.objects.values("status", "stage", "error").get(pk=clip_id)
    assert ended, (f"not ended in {DEADLINE} s", row, worker.tail())
    response = api.get(f"/v1/clips/{clip_id}")
    assert response.status_code == 200
    data = response.json()["data"]
    data["_took"] = took
    return data


def _worker_unharmed(worker: Worker) -> None:
    assert worker.alive() and worker.process.pid == worker.pid, worker.tail()
    # The task handled the file: RQ recorded no crashed task, and nothing is left running.
    for name in ("analysis", "render"):
        queue = get_queue(name)
        assert FailedJobRegistry(queue=queue).count == 0, worker.tail()
    assert wait_for(
        lambda: all(get_queue(n).started_job_registry.count == 0 for n in ("analysis", "render")),
        timeout=15,
    ), worker.tail()


def _assert_processing_failed(data: dict, *words: str) -> dict:
    assert data["status"] == "failed", data
    error = data["error"]
    assert error["code"] == "processing_failed", error
    assert error["message"] and error.get("details"), error
    text = (error["message"] + str(error["details"])).lower()
    for word in words:
        assert word in text, (word, error)
    return error


REFUSED = {
    "text named .mp4": (make_text, ()),
    "truncated mp4": (make_truncated, ()),
    "header claiming 30000x30000": (make_huge_header, ("30000",)),
    "audio only": (make_audio_only, ("no video stream",)),
    "3000 tiny tracks": (make_many_tracks, ()),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_hostile_file_fails_with_processing_failed_and_details(name, on_worker, api, folders):
    make, words = REFUSED[name]
    folder = folders["corpus"] / name.replace(" ", "_")
    folder.mkdir()
    clip_id = _clip_from(api, sourceUploadId=_upload(api, make(folder)))
    data = _ended(api, on_worker, clip_id)
    error = _assert_processing_failed(data, *words)
    assert "Traceback" not in str(error)
    _worker_unharmed(on_worker)


@pytest.mark.parametrize("make", [make_hls, make_ffconcat], ids=["hls playlist", "ffconcat list"])
def test_a_list_naming_local_files_is_refused_and_they_are_never_opened(
    make, on_worker, api, folders
):
    folder = folders["corpus"] / make.__name__
    folder.mkdir()
    canary = FifoCanary(folder / "secret.ts")
    try:
        clip_id = _clip_from(api, sourceUploadId=_upload(api, make(folder, canary.path)))
        data = _ended(api, on_worker, clip_id)
    finally:
        canary.close()
    _assert_processing_failed(data, "unsupported file format")
    assert not canary.opened, "a file the list names was opened"
    assert "root:" not in str(data) and "canary" not in str(data)
    _worker_unharmed(on_worker)


def test_zero_bytes_are_refused_at_upload_and_from_a_url(on_worker, api, folders):
    empty = SimpleUploadedFile("empty.mp4", b"", content_type="video/mp4")
    response = api.post("/v1/uploads", {"file": empty}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "file"
    # The same bytes from a URL reach the worker.
    server, url = _serve(folders["served"])
    try:
        (folders["served"] / "empty.mp4").write_bytes(b"")
        data = _ended(api, on_worker, _clip_from(api, sourceVideoUrl=f"{url}/empty.mp4"))
    finally:
        server.shutdown()
    _assert_processing_failed(data)
    _worker_unharmed(on_worker)


def test_a_corrupted_middle_fails_saying_the_source_could_not_be_decoded(on_worker, api, folders):
    folder = folders["corpus"] / "corrupted"
    folder.mkdir()
    source = make_corrupted_middle(folder)
    data = _ended(api, on_worker, _clip_from(api, sourceUploadId=_upload(api, source)))
    _assert_processing_failed(data, "could not decode the source")
    assert not Clip.objects.get(pk=data["id"]).video  # no half-made clip is shown
    _worker_unharmed(on_worker)


def test_a_lying_duration_decodes_no_more_than_it_claims(on_worker, api, folders):
    folder = folders["corpus"] / "lying"
    folder.mkdir()
    source = make_lying_duration(folder)
    data = _ended(api, on_worker, _clip_from(api, sourceUploadId=_upload(api, source)))
    if data["status"] == "failed":
        _assert_processing_failed(data)
    else:
        clip = Clip.objects.get(pk=data["id"])
        assert clip.end_time <= CLAIMED_SECONDS + 0.5, (clip.start_time, clip.end_time)
    # Whatever was extracted for transcription stayed within the claim.
    extracted = list((folders["work"] / "audio").glob("*.wav"))
    longest = max((seconds(p) for p in extracted), default=0.0)
    assert longest <= CLAIMED_SECONDS + 1, f"{longest:.0f} s of audio decoded from a 5 s claim"
    _worker_unharmed(on_worker)


def test_after_them_all_the_same_worker_makes_a_clip(on_worker, api, shared_media):
    video = sorted((shared_media / GOOD).glob("*.mpg"))[0]
    data = _ended(api, on_worker, _clip_from(api, sourceUploadId=_upload(api, video)))
    assert data["status"] == "completed", data
    clip = Clip.objects.get(pk=data["id"])
    assert clip.words and seconds(Path(clip.video.path)) > 1
    _worker_unharmed(on_worker)


def _serve(folder: Path):
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
