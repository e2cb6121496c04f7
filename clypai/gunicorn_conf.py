"""gunicorn's settings beyond its command line, for the web process `manage.py serve`
starts (`--config python:clypai.gunicorn_conf`; compose and the image start it through
`manage.py serve --web-only`, so with the same flags and this same file).

- `logconfig_dict`: gunicorn's own lines (its start and stop, worker boots, errors) go
  through the app's handler and formatter, so with CLYPAI_LOG_FORMAT=json every line is
  one JSON object. Its access log stays quiet: the app logs each request itself, with
  its request id (`clypai.observability.RequestIdMiddleware`).
- The embedded default (no Redis: jobs run in the web process's threads,
  `clypai.background`): the pool starts with the worker, so work the previous process
  handed back or left queued starts at once. On SIGTERM no further task starts; a task
  still running once the grace (CLYPAI_STOP_GRACE_SECONDS) is over is handed back, as
  a stopping RQ worker hands back its own.
"""

from __future__ import annotations

import os
import signal
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clypai.settings")

from django.conf import settings  # noqa: E402

from clypai.observability import gunicorn_logging  # noqa: E402

logconfig_dict = gunicorn_logging(settings.LOGGING)

_stopping_since: list[float] = []


def post_worker_init(worker) -> None:
    """In each worker once the app is loaded: start the job pool (embedded mode), and
    note when SIGTERM comes, which stops the pool taking new tasks at once."""
    from clypai import background

    if not background.uses_threads():
        return
    background.runner()
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        _stopping_since.append(time.monotonic())
        background.stop_requested()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server, worker) -> None:
    """As a worker ends (its requests answered): the running tasks get what is left of
    the grace, then are handed back (gunicorn's graceful timeout, which serve sets,
    leaves HAND_BACK_MARGIN_SECONDS more for that before it kills the worker)."""
    from clypai import background

    if not background.uses_threads() or background.running() is None:
        return
    spent = time.monotonic() - _stopping_since[0] if _stopping_since else 0.0
    background.hand_back(wait=max(settings.CLYPAI_STOP_GRACE_SECONDS - spent, 0.0))
