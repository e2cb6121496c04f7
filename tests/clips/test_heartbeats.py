"""Heartbeats: they outlive database errors, and a run whose work the sweep gave to another
worker learns it, stops, and charges nothing; render minutes are charged once."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from clips import states
from clips.models import Clip, FullRender
from clips.services import full_render_request
from clips.sweep import clips_sweep
from projects.models import MonthlyUsage
from tests.factories import ClipFactory
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _render_seconds(team) -> float:
    return sum(MonthlyUsage.objects.filter(team=team).values_list("render_seconds", flat=True))


def _cut_other_connections() -> int:
    """What a PostgreSQL restart does to every connection but this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _heartbeat_at(clip) -> object:
    return Clip.objects.values_list("heartbeat_at", flat=True).get(pk=clip.pk)


@contextmanager
def _beats_held_up(*rows):
    """The run's beats stop reaching the database (each waits on a lock this test holds),
    for longer than the sweep waits: inside, its heartbeat looks 300 s old. On leaving,
    the beats get through again, and find what the sweep left."""
    past = timezone.now() - timedelta(seconds=300)
    with transaction.atomic():
        for model, pk in rows:
            list(model.objects.select_for_update().filter(pk=pk))
            model.objects.filter(pk=pk).update(heartbeat_at=past)
        Clip.objects.filter(pk=rows[0][1]).update(updated_at=past)
        time.sleep(0.2)  # a beat is waiting now
        yield


def test_a_heartbeat_beats_on_after_its_database_connection_was_cut(team):
    clip = states.clip_claim(ClipFactory(team=team).pk)
    with states.heartbeat(
        Clip.objects.filter(pk=clip.pk, status="processing"), name="clip", interval=0.05
    ) as beat:
        assert wait_for(lambda: _heartbeat_at(clip) is not None, 5)
        assert wait_for(lambda: _cut_other_connections() >= 1, 5)
        cut_at = timezone.now()
        assert wait_for(lambda: _heartbeat_at(clip) > cut_at + timedelta(seconds=0.2), 10), (
            "the heartbeat stopped with its connection"
        )
        assert not beat.lost.is_set()


def test_a_run_whose_clip_the_sweep_took_stops_and_only_the_new_run_charges(
    team, settings, analysis_queue
):
    settings.CLYPAI_STALE_SECONDS = 60
    clip = ClipFactory(team=team, start_time=10.0, end_time=40.0, duration=30.0)
    first = states.clip_claim(clip.pk)
    with states.heartbeat(
        Clip.objects.filter(pk=clip.pk, status="processing", attempts=first.attempts),
        name="first run",
        interval=0.05,
    ) as beat:
        # Its beats stop reaching the database for longer than the sweep waits (as when
        # the database is unreachable from its machine): the sweep gives the clip away.
        with _beats_held_up((Clip, clip.pk)):
            assert clips_sweep().requeued_stale == [clip.pk]
            second = states.clip_claim(clip.pk)
        assert second is not None and second.attempts == first.attempts + 1

        assert wait_for(beat.lost.is_set, 5), "the first run never learnt it lost its clip"
        with pytest.raises(states.WorkTaken):
            beat.check()

    # Whatever the first run still tries changes nothing and charges nothing.
    assert states.clip_complete(first, charge_full_render=True) is False
    states.clip_fail(first, message="Clip generation failed: too late")
    assert Clip.objects.get(pk=clip.pk).status == "processing"
    assert _render_seconds(team) == 0

    assert states.clip_complete(second, charge_full_render=True) is True
    assert _render_seconds(team) == pytest.approx(30.0)
    # A re-run cannot charge again.
    Clip.objects.filter(pk=clip.pk).update(status="processing")
    assert states.clip_complete(second, charge_full_render=True) is True
    assert _render_seconds(team) == pytest.approx(30.0)
    assert Clip.objects.get(pk=clip.pk).render_charged


def test_the_clip_heartbeat_follows_the_run_not_the_status(team, settings, analysis_queue):
    settings.CLYPAI_HEARTBEAT_SECONDS = 0.05
    first = states.clip_claim(ClipFactory(team=team).pk)
    with states.clip_heartbeat(first) as beat:
        with _beats_held_up((Clip, first.pk)):
            assert clips_sweep().requeued_stale == [first.pk]
            states.clip_claim(first.pk)  # processing again, by a second worker
        assert wait_for(beat.lost.is_set, 5)


def test_a_full_render_run_taken_by_the_sweep_finishes_nothing_and_refunds_nothing(team, settings):
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_HEARTBEAT_SECONDS = 0.05
    settings.CLYPAI_STALE_SECONDS = 60
    clip = ClipFactory(team=team, status="completed", start_time=0, end_time=20, duration=20)
    full_render_request(clip)
    assert _render_seconds(team) == pytest.approx(20.0)
    first = states.full_render_claim(clip.pk)
    assert first == 0
    with states.full_render_heartbeat(clip.pk, first) as beat:
        with _beats_held_up((Clip, clip.pk), (FullRender, clip.pk)):
            assert clips_sweep().requeued_stale == [clip.pk]
            second = states.full_render_claim(clip.pk)
        assert second == 1
        assert wait_for(beat.lost.is_set, 5)

    states.full_render_finish(clip.pk, error="Render failed: too late", attempt=first)
    assert Clip.objects.get(pk=clip.pk).full_render_status == "processing"
    assert _render_seconds(team) == pytest.approx(20.0)  # nothing given back
    states.full_render_finish(clip.pk, attempt=second)
    assert Clip.objects.get(pk=clip.pk).full_render_status == "done"
    assert _render_seconds(team) == pytest.approx(20.0)
