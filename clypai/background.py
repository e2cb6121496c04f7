"""Work in background threads of this process: the embedded default (no REDIS_URL).

Without Redis there is no worker process, yet a request must not run a clip's pipeline
itself (a browser, or gunicorn's timeout, cannot wait minutes). `enqueue_now` hands the
task to a small pool of daemon threads here instead, and answers at once. The rows in
PostgreSQL (or SQLite) stay the truth: the queue in memory only carries, as Redis does,
and a task lost with the process is found by the sweep, which this pool also runs every
CLYPAI_SWEEP_INTERVAL_SECONDS.

Stopping as an RQ worker does (`clypai.observability.Worker`): once the web process is
told to stop (gunicorn's SIGTERM, `clypai/gunicorn_conf.py`) no further task starts; a
running one gets the grace period to finish, then its work is handed back, back to
waiting at once. A pool starting queues again all work waiting for a task (`STARTUP_TASK`),
whatever its age: the queue in memory that held it ended with the previous process, so
nothing waits for the sweep's CLYPAI_STALE_SECONDS.

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

from clypai.observability import HAND_BACK

logger = logging.getLogger(__name__)

# The task of the sweep, by its dotted path: clypai's core knows no app.
SWEEP_TASK = "clips.sweep.sweep_task"
STARTUP_TASK = "clips.sweep.waiting_requeue"
# The seconds a stopping web process gets past the grace to hand its job threads' work
# back (serve adds them to gunicorn's graceful timeout).
HAND_BACK_MARGIN_SECONDS = 5.0


class BackgroundRunner:
    """A FIFO of tasks and `threads` daemon threads draining it; a task id is held
    (queued or running) once at most, as RQ's job ids are."""

    def __init__(self, threads: int, *, sweep_interval: float | None = None):
        self.threads = max(int(threads), 1)
        self._queue: queue.Queue = queue.Queue()
        self._held: set[str] = set()
        self._busy = 0
        self._stopping = False
        self._running: dict[int, tuple] = {}  # thread ident: (task id, context, func, args)
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

    def stop(self) -> None:
        """Start no further task: what is queued stays waiting in the database, for the
        next process's pool (`STARTUP_TASK`)."""
        with self._lock:
            self._stopping = True

    def running_tasks(self) -> list[tuple]:
        """(task id, log context, func, args) of each task running now."""
        with self._lock:
            return list(self._running.values())

    def _drain(self) -> None:
        me = threading.get_ident()
        while True:
            task_id, context, func, args, kwargs = self._queue.get()
            with self._lock:
                start = not self._stopping
                if start:
                    self._running[me] = (task_id, context, func, args)
            try:
                if start:
                    context.run(func, *args, **kwargs)
            except Exception:
                # The row keeps its state; the sweep takes it up again.
                logger.exception("background task %s (%s) failed", task_id, func)
            finally:
                connections.close_all()  # this thread's connections, not another's
                with self._idle:
                    self._running.pop(me, None)
                    if task_id is not None:
                        self._held.discard(task_id)
                    self._busy -= 1
                    self._idle.notify_all()

    def _sweep_loop(self, interval: float) -> None:
        try:
            import_string(STARTUP_TASK)()
        except Exception:
            logger.exception("queueing the work waiting since the last start failed")
        while True:
            try:
                import_string(SWEEP_TASK)(reschedule=False)
            except Exception:
                logger.exception("background sweep failed")
            finally:
                connections.close_all()
            time.sleep(interval)


# The queue whose tasks get threads of their own: a webhook endpoint that is slow to
# answer holds one of those, never one that clips need.
OWN_THREADS = "webhooks"

_runner: BackgroundRunner | None = None
_webhook_runner: BackgroundRunner | None = None
_runner_lock = threading.Lock()


def runner(queue: str = "") -> BackgroundRunner:
    """This process's runner for the tasks of `queue`, started on first use: webhook
    deliveries have their own (CLYPAI_WEBHOOK_THREADS), every other queue shares the
    main one (CLYPAI_JOBS_THREADS), which also runs the sweep."""
    global _runner, _webhook_runner
    with _runner_lock:
        if queue == OWN_THREADS:
            if _webhook_runner is None:
                _webhook_runner = BackgroundRunner(settings.CLYPAI_WEBHOOK_THREADS)
            return _webhook_runner
        if _runner is None:
            _runner = BackgroundRunner(
                settings.CLYPAI_JOBS_THREADS, sweep_interval=settings.CLYPAI_SWEEP_INTERVAL_SECONDS
            )
        return _runner


def running(queue: str = "") -> BackgroundRunner | None:
    """The runner of `queue` when one was started, else None (nothing queued here)."""
    return _webhook_runner if queue == OWN_THREADS else _runner


def stop_requested() -> None:
    """The process was told to stop (SIGTERM): its pools start no further task."""
    for pool in (_runner, _webhook_runner):
        if pool is not None:
            pool.stop()


def hand_back(*, wait: float) -> list[str]:
    """The process is stopping: give the running tasks `wait` seconds to finish, then
    hand the work of those still running back (`HAND_BACK`, as a stopping RQ worker
    does: back to waiting, one more lost worker) so the next start queues it at once.
    The ids of the tasks handed back."""
    stop_requested()
    pool = _runner
    if pool is None or pool.wait_idle(wait):
        return []
    handed = []
    for task_id, context, func, args in pool.running_tasks():
        name = f"{func.__module__}.{func.__qualname__}"
        # Its log context (request, clip or job id) on the lines the hand-back logs.
        if context.copy().run(_hand_back_one, name, args):
            handed.append(task_id or name)
    return handed


def _hand_back_one(name: str, args) -> bool:
    # The task's own heartbeat may move the row between the hand-back's read and its
    # conditional update: a second try then takes it.
    try:
        for _ in range(3):
            if import_string(HAND_BACK)(name, list(args)):
                logger.warning(
                    "stopped %s %s before it finished; its work waits for the next start",
                    name,
                    args,
                )
                return True
            time.sleep(0.05)
    except Exception:
        logger.exception("could not hand back %s %s; the sweep will find it", name, args)
    finally:
        connections.close_all()
    return False


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
