"""Request ids and the log context: who a log line is about, from the request to the worker.

- `RequestIdMiddleware` takes a sane incoming `X-Request-Id` (a proxy's, a client's) or
  makes one, binds it to the log context for the request and returns it as
  `X-Request-Id`; it logs one line per request when the answer is sent.
- The log context (`request_id`, `clip_id`, `job_id`, `export_id`, `team`) lives in a context
  variable; `log_context(...)` binds fields for a block. `install_record_factory`
  (ClypaiConfig.ready) and `LogContextFilter` (on the console handler) put them on every
  log record, so every line carries them.
- `JsonFormatter` writes one JSON object a line (CLYPAI_LOG_FORMAT=json, the default);
  `TextFormatter` a human line with the context at its end (CLYPAI_LOG_FORMAT=text).
- `ContextJob` (RQ's JOB_CLASS) stores the context in the job's meta when it is
  enqueued and binds it again in the worker while the job runs: a clip created by a
  request is processed with that request's id on every line. Tasks add their clip or
  job id (`clips/tasks.py`).
- `Worker` (RQ's WORKER_CLASS) finishes its current task on SIGTERM (RQ's warm
  shutdown), and when CLYPAI_STOP_GRACE_SECONDS pass first, stops it and hands its
  work back (`HAND_BACK`), queued again at once rather than after the sweep's delay.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.module_loading import import_string
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from rq.job import Job
from rq.worker import Worker as _RQWorker

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("clypai.request")

FIELDS = ("request_id", "clip_id", "job_id", "export_id", "team")
META_KEY = "clypai_log_context"
# What a worker stopping past its grace period calls with (task name, args): the sweep's
# hand-back, by its dotted path (clypai's core knows no app).
HAND_BACK = "clips.sweep.work_hand_back"
# An incoming id is kept when it is short and plain (a UUID, a proxy's hex); anything
# else (a header stuffed with newlines or JSON) is replaced by our own.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "clypai_log_context", default=None
)


def _bound() -> dict:
    return _context.get() or {}


def current() -> dict:
    """The log context bound now (a copy)."""
    return dict(_bound())


@contextmanager
def log_context(**fields) -> Iterator[dict]:
    """Bind `fields` (None or "" leave a field as it is) to the log context for the block."""
    bound = {**_bound(), **{k: str(v) for k, v in fields.items() if v not in (None, "")}}
    token = _context.set(bound)
    try:
        yield bound
    finally:
        _context.reset(token)


def bind(**fields) -> None:
    """Add `fields` to the context until the enclosing `log_context` (or request) ends."""
    _context.set({**_bound(), **{k: str(v) for k, v in fields.items() if v}})


def _add_context(record: logging.LogRecord) -> None:
    found = _bound()
    for name in FIELDS:
        if getattr(record, name, None) is None:
            setattr(record, name, found.get(name))
    if record.request_id is None:  # Django's lines about a request, logged after it
        record.request_id = getattr(getattr(record, "request", None), "request_id", None)


def install_record_factory() -> None:
    """Every record made from now on carries the log context's fields (once)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "clypai_context", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        _add_context(record)
        return record

    factory.clypai_context = True
    logging.setLogRecordFactory(factory)


class LogContextFilter(logging.Filter):
    """On a handler: the context's fields on records made before the factory was installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        _add_context(record)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the context
    fields (null when unbound), and whatever `extra=` a call passed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault(
            "rename_fields", {"levelname": "level", "name": "logger", "exc_info": "exception"}
        )
        fields = " ".join(f"%({name})s" for name in FIELDS)
        super().__init__(f"%(levelname)s %(name)s %(message)s {fields}", **kwargs)

    def add_fields(self, log_record, record, message_dict):
        _add_context(record)
        super().add_fields(log_record, record, message_dict)
        log_record["pid"] = record.process


def gunicorn_logging(config: dict) -> dict:
    """`config` (settings.LOGGING) as gunicorn's `logconfig_dict`: its error log (start,
    stop, worker boots, errors) on the app's own handlers and formatter; its access log
    quiet, since the app logs each request itself with its id (`RequestIdMiddleware`)."""
    merged = copy.deepcopy(config)
    root = merged["root"]
    merged["loggers"] = {
        **merged.get("loggers", {}),
        "gunicorn.error": {
            "level": root["level"],
            "handlers": root["handlers"],
            "propagate": False,
        },
        "gunicorn.access": {"level": "WARNING", "handlers": root["handlers"], "propagate": False},
    }
    return merged


class TextFormatter(logging.Formatter):
    """A human line: time, level, logger, message, then the bound context as key=value."""

    def __init__(self, **kwargs):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        bound = " ".join(
            f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None)
        )
        return f"{line} [{bound}]" if bound else line


def request_id_from(header: str | None) -> str:
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE: the request's id in the log context and in `X-Request-Id`,
    one log line per answered request (method, path, view, status, milliseconds), and
    its latency in the metrics by view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from clypai import metrics

        request_id = request_id_from(request.headers.get("X-Request-Id"))
        request.request_id = request_id
        started = time.monotonic()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            elapsed = time.monotonic() - started
            response["X-Request-Id"] = request_id
            view = metrics.view_name(request)
            metrics.request_observe(
                view=view, method=request.method, status=response.status_code, seconds=elapsed
            )
            # Probes that answer OK come every few seconds: they log at DEBUG.
            quiet = view in ("healthz", "readyz") and response.status_code == 200
            request_logger.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "view": view,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
        return response


class ContextJob(Job):
    """An RQ job that carries the log context of whoever queued it into the worker."""

    @classmethod
    def create(cls, *args, **kwargs):
        job = super().create(*args, **kwargs)
        bound = current()
        if bound:
            job.meta[META_KEY] = bound
        return job

    def perform(self):
        with log_context(**(self.meta.get(META_KEY) or {})):
            return super().perform()


class Worker(_RQWorker):
    """RQ's forking worker, stopping as an operator expects: SIGTERM (or Ctrl-C) lets the
    current task finish (RQ's warm shutdown). If it is still running after
    CLYPAI_STOP_GRACE_SECONDS (or a second signal comes), the task is stopped and its
    work handed back, queued again at once: nothing is lost, and nothing waits for the
    sweep to find the worker's heartbeat stale."""

    def request_stop(self, signum, frame):
        # RQ ignores a second signal within a second of the first: wait at least that.
        grace = max(settings.CLYPAI_STOP_GRACE_SECONDS, 1.5)
        if not getattr(self, "_clypai_grace_timer", None):
            # The second signal RQ waits for, sent to ourselves once the grace is over.
            timer = threading.Timer(grace, os.kill, (os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()
            self._clypai_grace_timer = timer
        super().request_stop(signum, frame)

    def request_force_stop(self, signum, frame):
        job = self.get_current_job() if self.horse_pid else None
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            if job is not None:
                self.hand_back(job)
            raise

    def hand_back(self, job: Job) -> None:
        """The task was stopped: give its work back to be queued again now."""
        with log_context(**(job.meta.get(META_KEY) or {})):
            try:
                handed = import_string(HAND_BACK)(job.func_name, job.args)
            except Exception:
                logger.exception("could not hand back %s; the sweep will find it", job.id)
                return
            if handed:
                logger.warning("stopped %s before it finished; its work is queued again", job.id)
