"""clypai.background: in-process work in background threads (the embedded default)."""

from __future__ import annotations

import threading

import pytest

from clypai import background
from clypai.queues import enqueue_now, is_live


def test_a_task_runs_in_a_background_thread_once_per_id():
    runner = background.BackgroundRunner(1)
    release, ran = threading.Event(), []
    assert runner.submit(
        "a", lambda: (release.wait(10), ran.append(threading.current_thread().name))
    )
    assert not runner.submit("a", ran.append, "twice")  # held: not queued again
    assert runner.holds("a")
    release.set()
    assert runner.wait_idle(10)
    assert ran == ["clypai-jobs-0"] and not runner.holds("a")


def test_a_failing_task_leaves_the_runner_working():
    runner = background.BackgroundRunner(1)
    runner.submit("bad", lambda: 1 / 0)
    done = []
    runner.submit("good", done.append, 1)
    assert runner.wait_idle(10) and done == [1]


@pytest.fixture
def own_runner(settings):
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_JOBS_THREADS = 1
    runner = background.BackgroundRunner(1)
    previous, background._runner = background._runner, runner
    yield runner
    background._runner = previous


def test_enqueue_hands_the_task_to_the_threads_and_answers_at_once(own_runner):
    release, ran = threading.Event(), []

    def task(value):
        release.wait(10)
        ran.append(value)

    assert enqueue_now("analysis", task, 7, job_id="clip_x") is None
    assert ran == [] and is_live("analysis", "clip_x")
    release.set()
    assert own_runner.wait_idle(10)
    assert ran == [7] and not is_live("analysis", "clip_x")


def test_with_no_threads_enqueue_runs_the_task_where_it_is(settings):
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_JOBS_THREADS = 0
    ran = []
    enqueue_now("analysis", ran.append, 1, job_id="y")
    assert ran == [1]
