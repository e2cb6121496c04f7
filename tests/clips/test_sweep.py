"""The sweep: PostgreSQL is the truth; lost work is found there and queued again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from clips.models import Clip
from clips.sweep import SWEEP_TASK_ID, clips_sweep, sweep_task, waiting_requeue
from clips.tasks import clip_process_task
from clypai.queues import get_queue
from tests.factories import ClipFactory
from tests.processes import ROOT, manage, process_env, stop, terminate_backends, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue(settings, analysis_queue):
    settings.CLYPAI_STALE_SECONDS = 60
    settings.CLYPAI_MAX_ATTEMPTS = 3
    return analysis_queue


def _age(clip, seconds, **fields):
    past = timezone.now() - timedelta(seconds=seconds)
    Clip.objects.filter(pk=clip.pk).update(updated_at=past, **fields)


def test_it_requeues_a_pending_clip_whose_enqueue_was_lost(team, queue):
    clip = ClipFactory(team=team)
    _age(clip, 120)
    assert queue.count == 0  # the enqueue never reached Redis
    report = clips_sweep()
    assert report.requeued_pending == [clip.pk]
    assert queue.job_ids == [clip.pk]


def test_it_leaves_a_recent_pending_clip_alone(team, queue):
    ClipFactory(team=team)
    assert clips_sweep().requeued_pending == []
    assert queue.count == 0


def test_a_starting_pool_queues_waiting_work_at_once_whatever_its_age(team, queue):
    """What the embedded default's pool does as it starts: work handed back by the last
    process (or queued in its memory) waits for no staleness delay."""
    waiting, running = ClipFactory(team=team), ClipFactory(team=team, status="processing")
    Clip.objects.filter(pk=running.pk).update(heartbeat_at=timezone.now())
    assert clips_sweep().requeued_pending == []  # too recent for the sweep
    assert waiting_requeue().requeued_pending == [waiting.pk]
    assert queue.job_ids == [waiting.pk]
    assert waiting_requeue().requeued_pending == []  # queued now: not doubled


def test_it_does_not_double_a_pending_clip_still_waiting_in_redis(team, queue):
    clip = ClipFactory(team=team)
    queue.enqueue(clip_process_task, clip.pk, job_id=clip.pk)
    _age(clip, 120)
    assert clips_sweep().requeued_pending == []
    assert queue.job_ids == [clip.pk]


def test_it_requeues_a_processing_clip_whose_worker_stopped_beating(team, queue):
    clip = ClipFactory(team=team)
    beat = timezone.now() - timedelta(seconds=300)
    _age(clip, 300, status="processing", heartbeat_at=beat)
    report = clips_sweep()
    assert report.requeued_stale == [clip.pk]
    clip.refresh_from_db()
    assert clip.status == "pending" and clip.attempts == 1
    assert queue.job_ids == [clip.pk]


def test_it_leaves_a_processing_clip_with_a_live_heartbeat(team, queue):
    clip = ClipFactory(team=team)
    _age(clip, 300, status="processing", heartbeat_at=timezone.now())
    assert clips_sweep().requeued_stale == []
    assert Clip.objects.get(pk=clip.pk).status == "processing"


def test_it_fails_a_clip_whose_worker_was_lost_too_often(team, queue):
    clip = ClipFactory(team=team)
    _age(
        clip,
        300,
        status="processing",
        attempts=2,
        heartbeat_at=timezone.now() - timedelta(seconds=300),
    )
    report = clips_sweep()
    assert report.failed == [clip.pk]
    clip.refresh_from_db()
    assert clip.status == "failed"
    assert "worker was lost 3 times" in clip.error
    assert queue.count == 0


def test_two_sweeps_requeue_a_dead_clip_once(team, queue):
    clip = ClipFactory(team=team)
    _age(clip, 300, status="processing", heartbeat_at=timezone.now() - timedelta(seconds=300))
    first, second = clips_sweep(), clips_sweep()
    assert first.requeued_stale == [clip.pk]
    assert second.requeued_stale == [] and second.requeued_pending == []
    assert queue.job_ids == [clip.pk]
    assert Clip.objects.get(pk=clip.pk).attempts == 1


def test_the_sweep_command_prints_what_it_did(team, queue, capsys):
    clip = ClipFactory(team=team)
    _age(clip, 120)
    call_command("sweep")
    out = capsys.readouterr().out
    assert f'"requeuedPending": ["{clip.pk}"]' in out


# Recovery must outlive the faults it recovers from ------------------------------------


def test_the_sweep_loop_outlives_a_lost_database_connection(
    settings, team, queue, media_root, tmp_path
):
    """`manage.py sweep --loop`, as `make run` and compose start it: its connection is cut
    (what a PostgreSQL restart does), the pass fails, and the next pass sweeps again."""
    env = process_env(settings, media_root, tmp_path / "work", application_name="clypai-sweep-loop")
    log = tmp_path / "sweep.log"
    loop = manage(env, "sweep", "--loop", "--interval", "0.2", log=log)
    try:
        first = ClipFactory(team=team)
        _age(first, 120)
        assert wait_for(lambda: first.pk in queue.job_ids, 30), log.read_text()
        assert terminate_backends("clypai-sweep-loop") >= 1
        second = ClipFactory(team=team)
        _age(second, 120)
        assert wait_for(lambda: second.pk in queue.job_ids, 30), log.read_text()
        assert loop.poll() is None, log.read_text()
        assert "sweep pass failed" in log.read_text()
    finally:
        stop(loop)


def test_the_sweep_task_schedules_its_next_run_when_its_pass_fails(settings, queue, monkeypatch):
    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("clips.sweep.clips_sweep", database_gone)
    with pytest.raises(OperationalError):
        sweep_task()
    scheduled = get_queue("default").fetch_job(SWEEP_TASK_ID)
    assert scheduled is not None and scheduled.get_status() == "scheduled"


def test_make_run_starts_the_sweep_loop():
    from clypai.management.commands.serve import Command

    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "manage.py serve" in recipe and "sweep --schedule" not in recipe
    plan = {
        child.name: child.argv for child in Command().plan(port=8000, workers=2, embedded=False)
    }
    assert plan["sweep"][-3].endswith("manage.py") and plan["sweep"][-2:] == ["sweep", "--loop"]


def test_make_run_has_a_worker_on_every_queue():
    # Its worker once left out `transcribe`: every clip waited at transcribe-queued.
    from clypai.management.commands.serve import Command
    from clypai.queues import QUEUES

    plan = Command().plan(port=8000, workers=2, embedded=False)
    workers = [child.argv for child in plan if "rqworker" in child.argv]
    assert len(workers) == 3  # two media workers and the webhooks' own
    listened: set[str] = set()
    for argv in workers:
        listened |= {
            word for word in argv[argv.index("rqworker") + 1 :] if not word.startswith("-")
        }
    assert listened == set(QUEUES)
