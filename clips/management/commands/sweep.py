import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from clips.sweep import SWEEP_TASK_ID, clips_sweep, sweep_task
from clypai.queues import get_queue


class Command(BaseCommand):
    help = (
        "Queue again clips whose work was lost: pending ones no worker picked up and "
        "processing ones whose worker stopped beating. One pass, or --loop."
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
        while True:
            report = clips_sweep()
            self.stdout.write(
                json.dumps(
                    {
                        "requeuedPending": report.requeued_pending,
                        "requeuedStale": report.requeued_stale,
                        "failed": report.failed,
                    }
                )
            )
            if not loop:
                return
            time.sleep(interval)
