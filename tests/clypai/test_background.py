"""clypai.background: in-process work in background threads (the embedded default)."""

from __future__ import annotations

import threading
import time

import pytest

from clypai import background
from clypai.observability import current, log_context
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


def test_a_webhook_delivery_stuck_on_a_slow_endpoint_never_holds_a_thread_clips_need(
    settings,
):
    """Issue 16, finding 7. Before: one pool for everything, so with one thread a slow
    endpoint held up every clip behind it."""
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_JOBS_THREADS = 1
    settings.CLYPAI_WEBHOOK_THREADS = 1
    previous = background._runner, background._webhook_runner
    background._runner = background._webhook_runner = None
    try:
        endpoint_slow, clip_done = threading.Event(), threading.Event()
        enqueue_now("webhooks", endpoint_slow.wait, 30, job_id="whd_1-1")
        assert is_live("webhooks", "whd_1-1") and not is_live("analysis", "whd_1-1")
        enqueue_now("analysis", clip_done.set, job_id="clip_y")
        assert clip_done.wait(5), "the clip waited behind the webhook delivery"
        assert background.running("webhooks") is not background.running()
        endpoint_slow.set()
        assert background.running("webhooks").wait_idle(10)
    finally:
        background._runner, background._webhook_runner = previous


HANDED: list = []


def record_hand_back(task_name, args) -> bool:
    """Stands in for the sweep's hand-back: what the stopping pool gave back, and in
    which log context."""
    HANDED.append((task_name, args, current().get("request_id")))
    return True


def slow_task(seconds: float) -> None:
    time.sleep(seconds)


def test_a_stopping_pool_starts_nothing_more_and_hands_back_what_still_runs(
    own_runner, monkeypatch
):
    monkeypatch.setattr(background, "HAND_BACK", f"{__name__}.record_hand_back")
    HANDED.clear()
    started = []
    with log_context(request_id="req-stop"):
        own_runner.submit("long", slow_task, 30.0)
    own_runner.submit("next", started.append, "next")
    time.sleep(0.2)  # "long" is running, "next" waits behind it
    assert background.hand_back(wait=0.3) == ["long"]
    assert HANDED == [(f"{__name__}.slow_task", [30.0], "req-stop")]
    assert started == []  # stopping: the queued task never started


def test_a_stopping_pool_whose_tasks_finish_in_the_grace_hands_back_nothing(
    own_runner, monkeypatch
):
    monkeypatch.setattr(background, "HAND_BACK", f"{__name__}.record_hand_back")
    HANDED.clear()
    own_runner.submit("short", slow_task, 0.2)
    assert background.hand_back(wait=10) == [] and HANDED == []
