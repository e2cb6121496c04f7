"""Both OpenAPI documents, byte for byte as committed beside this file.

Moving code about must not change what clients are told. After a deliberate change to
an API, write the new documents and review their diff:
    CLYPAI_OPENAPI_WRITE=1 make test PYTEST_ARGS=tests/api/test_openapi_stable.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DOCUMENTS = {
    "/v1/openapi.json": HERE / "openapi-v1.json",
    "/choppity/v1/openapi.json": HERE / "openapi-choppity.json",
}


@pytest.mark.django_db
@pytest.mark.parametrize("url", DOCUMENTS)
def test_the_openapi_document_is_the_committed_one(anon, url):
    served = anon.get(url).content
    if os.environ.get("CLYPAI_OPENAPI_WRITE") == "1":
        DOCUMENTS[url].write_bytes(served)
        pytest.skip(f"wrote {DOCUMENTS[url].name}")
    committed = DOCUMENTS[url].read_bytes()
    assert json.loads(served) == json.loads(committed)  # pytest shows where they differ
    assert served == committed  # and the same bytes: key order, spacing
