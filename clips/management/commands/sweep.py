import json

from django.conf import settings
from django.core.management.base import BaseCommand

from clips.sweep import SWEEP_TASK_ID, sweep_loop, sweep_pass, sweep_task
from clypai.queues import get_queue


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

        def report(done: dict) -> None:
            self.stdout.write(json.dumps(done))
            self.stdout.flush()

        if not loop:
            # One pass: its error is the command's (exit status 1), for cron and scripts.
            report(sweep_pass())
            return
        sweep_loop(interval=interval, on_pass=report)
