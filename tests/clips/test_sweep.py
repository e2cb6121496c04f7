"""The sweep: PostgreSQL is the truth; lost work is found there and queued again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from clips.models import Clip
from clips.sweep import clips_sweep
from clips.tasks import clip_process_task
from tests.factories import ClipFactory

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
