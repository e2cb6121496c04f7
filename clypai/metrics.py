"""Prometheus metrics (prometheus-client), served at /metrics by `clypai.health`.

| metric | kind | labels |
| --- | --- | --- |
| `clypai_http_request_duration_seconds` | histogram | view (the URL route), method, status |
| `clypai_queue_jobs` | gauge, read from Redis at scrape time | queue, state (queued, started, scheduled, deferred, failed) |
| `clypai_stage_seconds` | histogram | stage (ingest, probe, audio, transcribe, scenes, select, render, export) |
| `clypai_failures_total` | counter | stage, code (a StageError's code, internal_error, worker_lost) |
| `clypai_webhook_deliveries_total` | counter | outcome (succeeded, retrying, failed, gone) |

Under `manage.py serve` (gunicorn workers, RQ workers and their work horses) every process
writes its samples to PROMETHEUS_MULTIPROC_DIR, which /metrics adds up. RQ forks a work
horse per task, so the files of processes that ended are folded into one archive file
per kind as /metrics is read (`fold_dead_processes`), keeping the folder small.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "clypai_http_request_duration_seconds",
    "Time to answer a request, by view (the URL route that matched)",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STAGE_SECONDS = Histogram(
    "clypai_stage_seconds",
    "Time a pipeline stage took for one clip, job or export",
    ["stage"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
FAILURES = Counter(
    "clypai_failures",
    "Work that failed, by the stage it failed in and the error's code",
    ["stage", "code"],
)
WEBHOOK_DELIVERIES = Counter(
    "clypai_webhook_delivery_attempts",
    "Webhook delivery attempts by outcome (retrying: it failed and another is scheduled)",
    ["outcome"],
)

QUEUE_STATES = ("queued", "started", "scheduled", "deferred", "failed")


def view_name(request) -> str:
    """A request's view for the metrics: its URL route (bounded), not its path."""
    answered_by = getattr(request, "clypai_view", None)  # /healthz, /readyz, /metrics
    if answered_by:
        return answered_by
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return match.route or match.view_name or "<unnamed>"


def request_observe(*, view: str, method: str, status: int, seconds: float) -> None:
    try:
        REQUEST_SECONDS.labels(view=view, method=method, status=str(status)).observe(seconds)
    except Exception:  # metrics must never break an answer
        logger.debug("could not record a request's metrics", exc_info=True)


def failure(*, stage: str, code: str) -> None:
    FAILURES.labels(stage=stage or "unknown", code=code or "unknown").inc()


def webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


class StageClock:
    """Times the stages of one run: `enter(stage)` ends the previous stage (its time goes
    to clypai_stage_seconds) and starts the next; `stop()` ends the last one. `current`
    is the stage the run is in, for the failures counter."""

    def __init__(self):
        self.current: str | None = None
        self._since = 0.0

    def enter(self, stage: str) -> None:
        self.stop()
        self.current, self._since = stage, time.monotonic()

    def stop(self) -> None:
        if self.current is not None:
            STAGE_SECONDS.labels(stage=self.current).observe(time.monotonic() - self._since)
        self._since = time.monotonic()


@contextmanager
def stage_clock() -> Iterator[StageClock]:
    clock = StageClock()
    try:
        yield clock
    finally:
        clock.stop()


class QueueCollector:
    """clypai_queue_jobs{queue, state}: read from RQ's lists and registries when scraped.
    With Redis down it reports clypai_queue_up 0 (and no counts) rather than failing."""

    def collect(self):
        from django.conf import settings

        from clypai.queues import QUEUES, get_queue

        jobs = GaugeMetricFamily(
            "clypai_queue_jobs", "RQ tasks per queue and state", labels=["queue", "state"]
        )
        up = GaugeMetricFamily("clypai_queue_up", "Whether Redis answered for the queue counts")
        if settings.CLYPAI_JOBS_INLINE:
            from clypai import background

            runner = background.running()
            queued, busy = runner.counts() if runner is not None else (0, 0)
            jobs.add_metric(["background", "queued"], queued)
            jobs.add_metric(["background", "started"], busy)
            yield jobs
            return
        try:
            counts = []
            for name in QUEUES:
                queue = get_queue(name)
                counts += [
                    (name, "queued", queue.count),
                    (name, "started", queue.started_job_registry.count),
                    (name, "scheduled", queue.scheduled_job_registry.count),
                    (name, "deferred", queue.deferred_job_registry.count),
                    (name, "failed", queue.failed_job_registry.count),
                ]
        except Exception:
            logger.warning("queue counts unavailable: Redis did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        for name, state, count in counts:
            jobs.add_metric([name, state], count)
        up.add_metric([], 1)
        yield jobs
        yield up


# Multiprocess mode -----------------------------------------------------------------------

FOLDED_KINDS = ("counter", "histogram", "summary")


def multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fold_dead_processes(folder: Path) -> int:
    """Add the samples of every ended process's counter, histogram and summary files into
    `<kind>_archive.db` and delete them; how many files were folded. Under a lock, so
    two scrapes at once fold each file once."""
    from prometheus_client.mmap_dict import MmapedDict

    folded = 0
    with open(folder / ".fold.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for kind in FOLDED_KINDS:
            archive = None
            for path in folder.glob(f"{kind}_*.db"):
                pid = path.stem.rsplit("_", 1)[-1]
                if not pid.isdigit() or _alive(int(pid)):
                    continue
                if archive is None:
                    archive = MmapedDict(str(folder / f"{kind}_archive.db"))
                for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
                    old, _ = archive.read_value(key)
                    archive.write_value(key, old + value, 0.0)
                path.unlink()
                folded += 1
            if archive is not None:
                archive.close()
    return folded


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format: this process's (or, in multiprocess mode,
    every process's) and the queue counts read now."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    queues = CollectorRegistry(auto_describe=False)
    queues.register(QueueCollector())
    folder = multiprocess_dir()
    if folder is None:
        return generate_latest(REGISTRY) + generate_latest(queues), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    try:
        fold_dead_processes(folder)
    except OSError:
        logger.warning("could not fold ended processes' metrics", exc_info=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry) + generate_latest(queues), CONTENT_TYPE_LATEST
