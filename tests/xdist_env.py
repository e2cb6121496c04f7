"""Loaded before Django's settings (`-p tests.xdist_env` in pyproject's addopts): under
pytest-xdist (`make test` runs the suite on TEST_WORKERS processes) each worker gets a
Redis database of its own, counted down from REDIS_URL's (gw0: 15, gw1: 14, ...), as
pytest-django gives each its own test database (test_clypai_gw0, ...). Tests empty
their Redis database and count queue lengths in it: shared, one worker's flush would
drop the other's jobs."""

from __future__ import annotations

import os

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    _base, _, _db = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15").rpartition("/")
    os.environ["REDIS_URL"] = f"{_base}/{int(_db or 15) - int(_worker[2:])}"
