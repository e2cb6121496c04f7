"""Webhook tests: a real HTTP receiver on loopback, real RQ workers, and a sandbox.

No packet leaves the machine: the `sandbox` fixture (autouse) records every socket
connect and DNS lookup in the process and refuses any past loopback; names resolve only
through `sandbox.names`. The receiver listens on 127.0.0.1, which the delivery guard
refuses unless CLYPAI_URL_ALLOWLIST names it: the `receiver` fixture does.
"""

from __future__ import annotations

import pytest

from clypai.queues import get_queue
from tests.sandbox import Sandbox, install

from .support import Receiver


@pytest.fixture(autouse=True)
def sandbox(monkeypatch) -> Sandbox:
    return install(monkeypatch)


@pytest.fixture
def receiver(settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhooks_queue(settings):
    """The "webhooks" queue on real Redis (this run's database), emptied around a test;
    tiny retry delays so schedules run in seconds."""
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_WEBHOOK_RETRY_SCHEDULE = [0.2, 0.4, 0.8]
    settings.CLYPAI_WEBHOOK_TIMEOUT_SECONDS = 5.0
    queue = get_queue("webhooks")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()
