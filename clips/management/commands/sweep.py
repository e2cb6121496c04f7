import json
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from clips.sweep import SWEEP_TASK_ID, sweep_loop, sweep_pass, sweep_task
from clypai.queues import get_queue

logger = logging.getLogger("clips.sweep")


class Command(BaseCommand):
    help = (
        "Queue again work that was lost (clips, jobs, full renders, re-renders, exports, "
        "webhook deliveries): waiting work no worker picked up and work whose worker "
        "stopped beating; purge what expired. One pass, or --loop: the process `make run` "
        "and compose start, which survives a failed pass and goes on."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="sweep every --interval seconds")
        parser.add_argument(
            "--interval", type=float, default=settings.CLYPAI_SWEEP_INTERVAL_SECONDS
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="instead, start the self-rescheduling sweep job on RQ (workers need "
            "--with-scheduler); starting it twice keeps one",
        )

    def handle(self, *args, loop=False, interval=30.0, schedule=False, **options):
        if schedule:
            queue = get_queue("default")
            existing = queue.fetch_job(SWEEP_TASK_ID)
            if existing is None or existing.get_status() not in ("queued", "scheduled", "started"):
                queue.enqueue(sweep_task, job_id=SWEEP_TASK_ID)
            self.stdout.write(
                f"sweep job scheduled every {settings.CLYPAI_SWEEP_INTERVAL_SECONDS:g} s"
            )
            return

        if not loop:
            # One pass: its error is the command's (exit status 1), for cron and scripts,
            # which read what it did on its standard output.
            self.stdout.write(json.dumps(sweep_pass()))
            return
        sweep_loop(interval=interval, on_pass=_log_pass)


def _log_pass(done: dict) -> None:
    """The loop's passes are log lines like any other process's (one JSON object a line
    under CLYPAI_LOG_FORMAT=json), with what the pass did in `sweep`."""
    logger.info(
        "sweep pass: requeued %d waiting and %d stale, %d failed",
        len(done["requeuedPending"]),
        len(done["requeuedStale"]),
        len(done["failed"]),
        extra={"sweep": done},
    )
