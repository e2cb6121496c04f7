"""A full disk during a render. The worker's work folder, its temporary folder and the
local storage are on a small tmpfs (tests/disk.py: mounted by the test, which runs as
root; a loop-mounted image or RLIMIT_FSIZE would do less well: the one needs a loop
device, the other fails only the process that passes the limit, not everything that
writes there, as a full disk does). The disk is filled while the clip renders.

What the product does (a decision): running out of space is a passing error, as space
comes back (other runs end and remove their files, the sweep evicts the work cache). The
clip goes back to pending with the reason, and is tried again after a backoff, at most
CLYPAI_MAX_ATTEMPTS times, then fails with that reason. Nothing half-written is left in
storage or in the work folder; the worker goes on."""

from __future__ import annotations

import errno

import pytest
from django.core.files.base import ContentFile

from clips import states
from clips.models import Clip, Source
from clips.services import ClipSpec, clip_create
from clypai.lib import ffmpeg
from clypai.lib.errors import StageError, disk_full
from clypai.lib.local_storage import LocalStorage
from clypai.queues import get_queue
from projects.models import MonthlyUsage
from projects.services import default_project
from tests.clips.test_faults import STALE_SECONDS, System, _upload, _video_seconds
from tests.disk import fill, free_bytes, small_disk
from tests.processes import process_env, wait_for

pytestmark = pytest.mark.slow


def _partial_files(root):
    """Files a write left unfinished: hidden temporary names, `.part`."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and (".part" in path.name or path.name.startswith("."))
    ]


def test_local_storage_leaves_no_half_written_file_when_the_disk_fills():
    with small_disk("1m") as disk:
        storage = LocalStorage(location=str(disk))
        with pytest.raises(OSError) as raised:
            storage.save("videos/clip.mp4", ContentFile(b"x" * (2 << 20)))
        assert raised.value.errno == errno.ENOSPC
        assert not list(disk.rglob("*.mp4")) and not _partial_files(disk)
        # With room, the file is stored whole, under its name.
        name = storage.save("videos/clip.mp4", ContentFile(b"x" * 1000))
        assert (disk / name).stat().st_size == 1000 and not _partial_files(disk)


def test_an_ffmpeg_run_out_of_space_is_a_passing_disk_full_error(tmp_path):
    with small_disk("256k") as disk:
        with pytest.raises(StageError) as raised:
            ffmpeg.run(
                ["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=5"]
                + ["-c:v", "rawvideo", "-y", str(disk / "out.avi")],
                timeout=60,
                error="the render failed",
            )
    assert not raised.value.permanent
    assert "ran out of disk space" in raised.value.message
    assert raised.value.details == {"stage": "ffmpeg", "error": "ENOSPC"}


@pytest.mark.django_db
def test_a_clip_out_of_space_on_its_last_attempt_fails_with_the_reason(team, settings):
    settings.CLYPAI_JOBS_INLINE = False
    clip = Clip.objects.create(
        team=team, project=default_project(team=team), status="processing", attempts=2
    )
    assert states.clip_stage_failed(clip, disk_full("render")) is None
    clip.refresh_from_db()
    assert clip.status == "failed"
    assert clip.error == (
        "Clip generation failed: the worker ran out of disk space in render "
        "(No space left on device)"
    )
    assert clip.error_details == {"stage": "render", "error": "ENOSPC"}


@pytest.fixture
def disk():
    with small_disk("48m") as mounted:
        yield mounted


@pytest.fixture
def system(disk, settings, tmp_path):
    """A worker (and the sweep) whose work folder, temporary folder and storage are on
    the small disk."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_STALE_SECONDS = STALE_SECONDS
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    settings.CLYPAI_TRANSCRIBE_ON_QUEUE = True
    media = disk / "media"
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "clypai.lib.local_storage.LocalStorage",
            "OPTIONS": {"location": str(media), "base_url": "/media/"},
        },
    }
    (disk / "tmp").mkdir()
    queue = get_queue("analysis")
    queue.connection.flushdb()
    env = process_env(
        settings,
        media,
        disk / "work",
        CLYPAI_STALE_SECONDS=STALE_SECONDS,
        CLYPAI_RETRY_BACKOFF_SECONDS=4,
        TMPDIR=disk / "tmp",
    )
    running = System(env, tmp_path)
    yield running
    running.stop()
    queue.connection.flushdb()


@pytest.mark.django_db(transaction=True)
def test_a_render_that_fills_the_disk_is_retried_once_space_is_back_and_leaves_nothing_half_written(
    disk, system, team, shared_media
):
    upload = _upload(team, shared_media)
    clip = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))

    def check(predicate):
        def checked():
            system.check()
            return predicate()

        return checked

    assert wait_for(
        check(lambda: Clip.objects.filter(pk=clip.pk, stage="render").exists()), 300, 0.1
    ), Clip.objects.values("status", "stage", "error").get(pk=clip.pk)
    filler = fill(disk)
    assert free_bytes(disk) < 64 << 10

    # The render fails for lack of space: back to pending, with the reason.
    assert wait_for(
        check(lambda: Clip.objects.filter(pk=clip.pk, stage="retry-wait").exists()), 120, 0.1
    ), (
        Clip.objects.values("status", "stage", "error").get(pk=clip.pk),
        system.log("worker").read_text()[-3000:],
    )
    waiting = Clip.objects.get(pk=clip.pk)
    assert waiting.status == "pending" and waiting.attempts == 1
    assert "ran out of disk space" in waiting.error
    # Nothing half-written: not in storage, not in the work folder, not in its tmp.
    assert not _partial_files(disk / "media")
    assert not [p for p in (disk / "work" / "render").rglob("*") if p.is_file()]
    assert not list((disk / "tmp").glob("clypai-render-*"))  # the render's own
    filler.unlink()  # space is back

    assert wait_for(
        check(lambda: Clip.objects.filter(pk=clip.pk, status__in=("completed", "failed")).exists()),
        240,
        0.25,
    ), system.log("worker").read_text()[-3000:]
    clip.refresh_from_db()
    assert clip.status == "completed", clip.error
    assert clip.attempts == 1 and clip.error == ""
    assert _video_seconds(clip) == pytest.approx(clip.end_time - clip.start_time, abs=0.3)
    # The same worker did it all (it was not harmed), and charged the clip once.
    assert system.restarts == 0 and system.worker.poll() is None
    usage = MonthlyUsage.objects.get(team=team)
    assert usage.clips_created == 1
    assert usage.render_seconds == pytest.approx(clip.end_time - clip.start_time)
    assert Source.objects.filter(team=team).count() == 1
    assert not _partial_files(disk / "media")
