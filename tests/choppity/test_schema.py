"""/choppity/v1/openapi.json: the surface as it is served, with its one error shape."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern
from openapi_spec_validator import validate as validate_spec

from choppity import urls as choppity_urls
from clips.models import Job
from tests.api.test_openapi import HTTP_METHODS, conforms, operations, resolve

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(anon) -> dict:
    response = anon.get("/choppity/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def schema_of(operation: dict, code: str) -> dict:
    return operation["responses"][code]["content"]["application/json"]["schema"]


def test_it_is_a_valid_openapi_document_of_exactly_the_choppity_routes(document):
    validate_spec(document)
    routes = {}
    for pattern in choppity_urls.urlpatterns:
        view = getattr(pattern.callback, "view_class", None)
        if isinstance(pattern, URLPattern) and view and view.__module__.startswith("choppity"):
            path = "/choppity/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
            routes[path] = {m for m in HTTP_METHODS if hasattr(view, m)}
    assert set(routes) == {
        "/choppity/v1/clips",
        "/choppity/v1/clips/{jobId}",
        "/choppity/v1/clips/{clipId}/renders",
        "/choppity/v1/renders/{renderId}",
        "/choppity/v1/uploads",
    }
    assert {
        path: {m for m in item if m in HTTP_METHODS} for path, item in document["paths"].items()
    } == routes


def test_every_4xx_answer_is_the_documents_error_shape(document):
    seen = set()
    for path, method, operation in operations(document):
        codes = {c for c in operation["responses"] if c.startswith("4")}
        assert "401" in codes, (path, method)
        for code in codes:
            schema = resolve(document, schema_of(operation, code))
            assert set(schema["properties"]) == set(schema["required"]) == {"error"}
            error = resolve(document, schema["properties"]["error"])
            assert set(error["properties"]) == {"code", "message", "field", "details"}
            assert set(error["required"]) == {"code", "message"}
            seen.add(code)
    assert seen == {"400", "401", "404", "409", "413", "415", "429"}


def test_the_native_document_leaves_this_surface_out(anon, document):
    native = anon.get("/v1/openapi.json").json()
    assert not [p for p in native["paths"] if p.startswith("/choppity")]
    assert document["info"]["title"] != native["info"]["title"]
    assert {"keyAuth": []} in document["paths"]["/choppity/v1/clips"]["post"]["security"]


def test_spectacular_validates_it_without_warnings(tmp_path):
    out = tmp_path / "choppity.yaml"
    call_command(
        "spectacular",
        "--generator-class",
        "choppity.schema.ChoppitySchemaGenerator",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(out),
    )
    assert "/choppity/v1/clips/{jobId}:" in out.read_text()


def test_real_answers_match_the_documented_schemas(document, chop, team, job_factory):
    def check(path, method, code, response):
        assert response.status_code == int(code), response.content
        schema = schema_of(document["paths"][path][method], code)
        assert conforms(document, schema, response.json()) == []

    check(
        "/choppity/v1/clips",
        "post",
        "202",
        chop.post(
            "/choppity/v1/clips",
            {"source": {"url": "https://example.com/podcast.mp4"}},
            format="json",
        ),
    )
    check(
        "/choppity/v1/clips",
        "post",
        "400",
        chop.post("/choppity/v1/clips", {"source": {"url": "nope"}}, format="json"),
    )
    job = job_factory(team, clips=2, previews=1)
    check("/choppity/v1/clips/{jobId}", "get", "200", chop.get(f"/choppity/v1/clips/{job.pk}"))
    check("/choppity/v1/clips/{jobId}", "get", "404", chop.get("/choppity/v1/clips/nope"))
    failed = job_factory(team, status=Job.Status.ERROR, error="boom")
    check("/choppity/v1/clips/{jobId}", "get", "200", chop.get(f"/choppity/v1/clips/{failed.pk}"))
    clip = job.clips.get(rank=1)
    check(
        "/choppity/v1/clips/{clipId}/renders",
        "post",
        "202",
        chop.post(f"/choppity/v1/clips/{clip.uuid}/renders"),
    )
    check(
        "/choppity/v1/clips/{clipId}/renders",
        "post",
        "409",
        chop.post(f"/choppity/v1/clips/{job.clips.get(rank=2).uuid}/renders"),
    )
    check(
        "/choppity/v1/renders/{renderId}",
        "get",
        "200",
        chop.get(f"/choppity/v1/renders/{clip.uuid}"),
    )
    check(
        "/choppity/v1/clips/{jobId}",
        "get",
        "401",
        chop.__class__().get(f"/choppity/v1/clips/{job.pk}"),
    )

    # And a wrong answer is caught, so the checks above mean something.
    body = chop.get(f"/choppity/v1/clips/{job.pk}").json()
    schema = schema_of(document["paths"]["/choppity/v1/clips/{jobId}"]["get"], "200")
    assert conforms(document, schema, {**body, "status": "completed"}) != []
    assert conforms(document, schema, {**body, "clips": [{"id": "x"}]}) != []
