"""PostgreSQL restarting while a clip renders, a job and an export wait: real
`manage.py rqworker` and `manage.py sweep --loop` processes against a PostgreSQL cluster
of the test's own (tests/postgres.py), stopped with `pg_ctl stop -m fast` (every
connection cut) and started again seconds later. After it every clip, job and export
ends completed, once, charged once, with no half-written file, within 2 minutes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files import File
from django.db import Error as DatabaseError
from django.db import connection

from clips.models import Clip, Export, Job, Source
from clips.services import ClipSpec, JobSpec, clip_create, export_request, job_create
from clypai.queues import get_queue
from projects.models import MonthlyUsage
from projects.services import default_project
from tests.clips.test_faults import VIDEO, System, _upload, _video_seconds
from tests.factories import TeamFactory
from tests.postgres import Cluster
from tests.processes import process_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DOWN_SECONDS = 3  # long enough for every process to find its connection gone
# Longer than the restart (in production 60 s against a few seconds): a worker that
# lives through it keeps its work; none is given to another.
STALE_SECONDS = 10


@pytest.fixture
def own_postgres(transactional_db):
    """The test's database moved to a cluster of its own: the test database's schema and
    rows copied there, and this process's connection pointed at it until the end."""
    cluster = Cluster()
    db = connection.settings_dict
    saved = {key: db[key] for key in ("HOST", "PORT", "NAME")}
    try:
        cluster.start()
        cluster.database_copy(source=db, name="clypai")
        connection.close()
        db.update(HOST="127.0.0.1", PORT=str(cluster.port), NAME="clypai")
        yield cluster
    finally:
        connection.close()
        db.update(saved)
        cluster.remove()


@pytest.fixture
def system(own_postgres, settings, media_root, tmp_path):
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_STALE_SECONDS = STALE_SECONDS
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    settings.CLYPAI_TRANSCRIBE_ON_QUEUE = True
    queue = get_queue("analysis")
    queue.connection.flushdb()
    env = process_env(settings, media_root, tmp_path / "work", CLYPAI_STALE_SECONDS=STALE_SECONDS)
    running = System(env, tmp_path)
    yield running
    running.stop()
    queue.connection.flushdb()


def _holds(predicate):
    """`predicate()`, False while the database cannot answer (this process's connection
    was cut too: the next query connects again)."""

    def check():
        try:
            return predicate()
        except DatabaseError:
            connection.close()
            return False

    return check


def _settled(system, predicate, timeout):
    held = _holds(predicate)

    def check():
        system.check()
        return held()

    return wait_for(check, timeout, every=0.25)


def _partial_files(root: Path) -> list[Path]:
    """Files of storage that a write left unfinished (temporary names)."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and (".part" in path.name or path.name.startswith(("tmp", ".")))
    ]


def _completed_clip(team, shared_media) -> Clip:
    """A 6 s clip done before the test, as processing leaves it, to export."""
    video = shared_media / VIDEO
    source = Source(team=team, sha256="0" * 64, size_bytes=video.stat().st_size)
    with open(video, "rb") as fh:
        source.file.save("sources/done.mp4", File(fh), save=False)
    source.save()
    return Clip.objects.create(
        team=team,
        project=default_project(team=team),
        source=source,
        status="completed",
        start_time=3.0,
        end_time=9.0,
        duration=6.0,
        name="Done",
        words=[],
        metadata={"hooks": [], "highlights": [], "topics": [], "reason": "test"},
    )


def test_a_database_restart_mid_render_loses_nothing_and_charges_once(
    own_postgres, system, shared_media, media_root
):
    team = TeamFactory(name="Acme")
    upload = _upload(team, shared_media)
    earlier = _completed_clip(team, shared_media)
    clip = clip_create(team=team, spec=ClipSpec(upload=upload, config={"language": "en"}))
    job = job_create(team=team, spec=JobSpec(upload=upload, count=1, language="en"))
    assert _settled(
        system, lambda: Clip.objects.filter(pk=clip.pk, stage="render").exists(), 300
    ), Clip.objects.values("status", "stage", "error").get(pk=clip.pk)
    time.sleep(1)  # the render is under way
    # Queued on "render" behind the clip: its worker takes it up while, or after, the
    # database is down.
    export = export_request(
        clip=earlier, format="mp4", quality="low", platform=None, burn_captions=None
    )

    own_postgres.stop()
    time.sleep(DOWN_SECONDS)
    own_postgres.start()
    restarted_at = time.monotonic()

    def settled():
        clips = Clip.objects.filter(team=team).exclude(pk=earlier.pk)
        return (
            Job.objects.filter(pk=job.pk, status__in=("done", "error")).exists()
            and Export.objects.filter(pk=export.pk, status__in=("completed", "failed")).exists()
            and clips.count() == 2
            and not clips.exclude(status__in=("completed", "failed")).exists()
        )

    assert _settled(system, settled, 240), (
        list(Clip.objects.filter(team=team).values("id", "status", "stage", "error", "attempts")),
        Job.objects.values("status", "stage", "error").get(pk=job.pk),
        Export.objects.values("status", "error").get(pk=export.pk),
        system.log("worker").read_text()[-4000:],
    )
    recovered_in = time.monotonic() - restarted_at
    clip.refresh_from_db()
    assert clip.status == "completed", clip.error
    assert clip.attempts == 0  # its run went on after the restart: no render thrown away
    assert clip.render_charged
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert job.attempts == 0
    (job_clip,) = Clip.objects.filter(job=job)
    assert job_clip.status == "completed" and job_clip.preview
    export.refresh_from_db()
    assert export.status == "completed", export.error
    assert export.attempts == 0
    assert recovered_in < 120
    # Each once, charged once: two generations, the clip's render and the export.
    assert Clip.objects.filter(team=team).count() == 3
    assert Source.objects.filter(team=team).count() == 2
    assert Export.objects.filter(clip=earlier).count() == 1
    usage = MonthlyUsage.objects.get(team=team)
    assert usage.clips_created == 2
    assert usage.render_seconds == pytest.approx(clip.end_time - clip.start_time + 6.0)
    assert _video_seconds(clip) == pytest.approx(clip.end_time - clip.start_time, abs=0.3)
    assert export.file_size == Path(export.file.path).stat().st_size
    assert not _partial_files(media_root)
