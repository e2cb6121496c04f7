"""Work in background threads of this process: the embedded default (no REDIS_URL).

Without Redis there is no worker process, yet a request must not run a clip's pipeline
itself (a browser, or gunicorn's timeout, cannot wait minutes). `enqueue_now` hands the
task to a small pool of daemon threads here instead, and answers at once. The rows in
PostgreSQL (or SQLite) stay the truth: the queue in memory only carries, as Redis does,
and a task lost with the process is found by the sweep, which this pool also runs every
CLYPAI_SWEEP_INTERVAL_SECONDS.

CLYPAI_JOBS_THREADS says how many threads; 0 runs each task synchronously where it is
queued (`manage.py clip`, and the tests that want a result at once).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# The task of the sweep, by its dotted path: clypai's core knows no app.
SWEEP_TASK = "clips.sweep.sweep_task"


class BackgroundRunner:
    """A FIFO of tasks and `threads` daemon threads draining it; a task id is held
    (queued or running) once at most, as RQ's job ids are."""

    def __init__(self, threads: int, *, sweep_interval: float | None = None):
        self.threads = max(int(threads), 1)
        self._queue: queue.Queue = queue.Queue()
        self._held: set[str] = set()
        self._busy = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._workers = [
            threading.Thread(target=self._drain, name=f"clypai-jobs-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        if sweep_interval:
            threading.Thread(
                target=self._sweep_loop, args=(sweep_interval,), name="clypai-sweep", daemon=True
            ).start()

    def submit(self, task_id: str | None, func: Callable, *args, **kwargs) -> bool:
        """Queue `func(*args, **kwargs)`; False when `task_id` is already held."""
        with self._lock:
            if task_id is not None:
                if task_id in self._held:
                    return False
                self._held.add(task_id)
            self._busy += 1
        # The task runs in the caller's log context (its request id), as RQ's do.
        context = contextvars.copy_context()
        self._queue.put((task_id, context, func, args, kwargs))
        return True

    def counts(self) -> tuple[int, int]:
        """(tasks waiting, tasks running), for the metrics."""
        with self._lock:
            waiting = self._queue.qsize()
            return waiting, max(self._busy - waiting, 0)

    def holds(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._held

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _drain(self) -> None:
        while True:
            task_id, context, func, args, kwargs = self._queue.get()
            try:
                context.run(func, *args, **kwargs)
            except Exception:
                # The row keeps its state; the sweep takes it up again.
                logger.exception("background task %s (%s) failed", task_id, func)
            finally:
                connections.close_all()  # this thread's connections, not another's
                with self._idle:
                    if task_id is not None:
                        self._held.discard(task_id)
                    self._busy -= 1
                    self._idle.notify_all()

    def _sweep_loop(self, interval: float) -> None:
        while True:
            try:
                import_string(SWEEP_TASK)(reschedule=False)
            except Exception:
                logger.exception("background sweep failed")
            finally:
                connections.close_all()
            time.sleep(interval)


_runner: BackgroundRunner | None = None
_runner_lock = threading.Lock()


def runner() -> BackgroundRunner:
    """This process's runner, started on first use with its sweep."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = BackgroundRunner(
                settings.CLYPAI_JOBS_THREADS, sweep_interval=settings.CLYPAI_SWEEP_INTERVAL_SECONDS
            )
        return _runner


def running() -> BackgroundRunner | None:
    """The runner when one was started, else None (nothing queued in this process)."""
    return _runner


def uses_threads() -> bool:
    return settings.CLYPAI_JOBS_INLINE and settings.CLYPAI_JOBS_THREADS > 0


class StartBackgroundWork:
    """Middleware: start the runner (and so its sweep) with the web process's first
    request, so work a previous process left behind is recovered without waiting for a
    new request to queue something."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.started = False

    def __call__(self, request):
        if not self.started:
            self.started = True
            if uses_threads():
                runner()
        return self.get_response(request)
