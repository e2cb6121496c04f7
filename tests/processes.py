"""Real processes for fault tests: `manage.py rqworker` and `manage.py sweep --loop` on the
test database and Redis, and the machine-loss kill (SIGKILL to a process and all below)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

from clypai.lib.processes import descendants  # noqa: F401 (the tests import it from here)

ROOT = Path(__file__).resolve().parents[1]


def process_env(settings, media_root, work_dir, **extra) -> dict:
    """The environment of a process that shares this test's database, Redis and files.
    `extra`: more variables; `application_name` names its PostgreSQL connections."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    name = extra.pop("application_name", None)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{url}?application_name={name}" if name else url,
        REDIS_URL=settings.RQ_QUEUES["analysis"]["URL"],
        CLYPAI_JOBS_INLINE="false",
        MEDIA_ROOT=str(media_root),
        CLYPAI_WORK_DIR=str(work_dir),
        CLYPAI_WHISPER_MODEL="tiny.en",
        CLYPAI_WHISPER_ENGINE="faster-whisper",
        CLYPAI_HEARTBEAT_SECONDS="0.5",
        CLYPAI_TRANSCRIBE_ON_QUEUE=str(settings.CLYPAI_TRANSCRIBE_ON_QUEUE).lower(),
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(env, *args: str, log: Path | None = None) -> subprocess.Popen:
    """`manage.py <args>` in its own session, output to `log` (or nowhere)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=out,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )


def kill_machine(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started, at once: a machine lost."""
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(process: subprocess.Popen) -> None:
    """End a process this test started, whatever state it is in."""
    if process.poll() is None:
        kill_machine(process)
        process.wait(timeout=10)


def wait_for(predicate, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def terminate_backends(application_name: str) -> int:
    """Cut the PostgreSQL connections of the processes named `application_name` (what a
    database restart does to them); how many were cut."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [application_name],
        )
        return cursor.fetchone()[0]
