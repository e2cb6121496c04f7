"""Generated requests against every operation of the /v1 and /choppity/v1 OpenAPI
documents (schemathesis, on hypothesis), in process through the WSGI app: bodies,
parameters and headers made from the document, valid ones and ones it rules out. No answer may be a server error, and every answer must
match the document: its status codes, content types and bodies; data the document rules
out must be refused. Left out: "what the document allows is accepted", since the
document cannot say everything a field refuses (NUL characters, a cursor's format,
sourceVideoUrl or sourceUploadId)."""

from __future__ import annotations

import gc
import itertools
import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from clypai.wsgi import application
from tests.sandbox import install

EXAMPLES = 20  # per operation, valid and not
# The same requests on every run, so CI passes or fails on the code, not on the draw;
# CLYPAI_FUZZ_RANDOM=1 draws new ones (and more of them with CLYPAI_FUZZ_EXAMPLES) to
# explore.
RANDOM = os.environ.get("CLYPAI_FUZZ_RANDOM") == "1"
EXAMPLES = int(os.environ.get("CLYPAI_FUZZ_EXAMPLES", EXAMPLES))


@pytest.fixture(autouse=True)
def sandbox(monkeypatch):
    return install(monkeypatch)


@pytest.fixture(params=["/v1/openapi.json", "/choppity/v1/openapi.json"])
def api_schema(request, db, settings, client):
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_RATE_LIMIT_PER_MINUTE = 1_000_000
    document = client.get(request.param).json()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = application
    # As Django's test client does: the test's transaction outlives each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield loaded
    gc.collect()  # the temporary files' closers (see below) run here, inside the test
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Uploaded files are moved into storage; their temporary file's closer then finds nothing
# to delete. A WSGI server closes the response (and so the request's files) first;
# schemathesis' in-process client does not, so the closer runs at garbage collection.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_api_answers_every_generated_request_as_documented(api_schema, caller):
    headers = {"Authorization": f"Bearer {caller.key}"}
    failures = []
    for result, mode in itertools.product(api_schema.get_all_operations(), GenerationMode):
        operation = result.ok()

        @given(case=operation.as_strategy(mode))
        @hsettings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=not RANDOM,
        )
        def check(case):
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except BaseException as exc:  # noqa: BLE001  (hypothesis raises an ExceptionGroup)
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
