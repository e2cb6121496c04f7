"""The database connection of a long-running worker thread, across a server restart.

Django opens a new connection only between requests (`close_old_connections`); a
worker's run is one long request, so once PostgreSQL restarts (or fails over) every
query of the run fails on its cut connection, even with the server back."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)


def connection_ensure(timeout: float | None = None) -> None:
    """Make this thread's database connection one that answers: one the server cut is
    closed and opened anew, waiting for the server up to `timeout` seconds (default:
    half of CLYPAI_STALE_SECONDS; a run away longer has lost its work to the sweep
    anyway), after which the error is raised. Inside a transaction nothing is done: its
    work is lost with its connection, and its caller must see the error."""
    if connection.in_atomic_block:
        return
    timeout = settings.CLYPAI_STALE_SECONDS / 2 if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        try:
            if connection.connection is not None and not connection.is_usable():
                logger.warning("the database connection was cut; connecting again")
                _close()
            connection.ensure_connection()
            return
        except DatabaseError:
            _close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def database_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or cut the connection (not
    that a query was wrong): the work is not at fault."""
    return isinstance(exc, OperationalError | InterfaceError)


def _close() -> None:
    try:
        connection.close()
    except Exception:  # a cut connection may fail to close; it is dropped all the same
        logger.debug("closing a cut connection failed", exc_info=True)
