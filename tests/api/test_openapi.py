"""GET /v1/openapi.json and /docs/: the API described as it is served."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern
from openapi_spec_validator import validate as validate_spec

from clypai import api_router
from tests.factories import ClipFactory, ProjectFactory
from tests.openapi_check import conforms

pytestmark = pytest.mark.django_db

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def document(anon) -> dict:
    response = anon.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    return response.json()


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def json_schema(document: dict, response: dict) -> dict:
    return resolve(document, response["content"]["application/json"]["schema"])


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def router_routes() -> dict[str, set[str]]:
    """Each /v1/ route of clypai/api_router.py, as an OpenAPI path, with its methods."""
    routes = {}
    for pattern in api_router.urlpatterns:
        assert isinstance(pattern, URLPattern)
        path = "/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        view = pattern.callback
        # A viewset's route maps methods to actions; a plain view has a handler per method.
        methods = view.actions if hasattr(view, "actions") else dir(view.view_class)
        routes[path] = {m for m in HTTP_METHODS if m in methods}
    return routes


def test_it_serves_a_valid_openapi_3_document_without_credentials(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "ClypAI API"
    validate_spec(document)  # raises on an invalid document


def test_every_route_appears_with_its_methods(document):
    routes = router_routes()
    assert len(routes) == len(api_router.urlpatterns) >= 16
    assert "/v1/usage" in routes
    for path, methods in routes.items():
        assert path in document["paths"], path
        documented = {m for m in document["paths"][path] if m in HTTP_METHODS}
        assert documented == methods, (path, documented, methods)
    assert set(document["paths"]) == set(routes)


def test_clip_create_documents_its_request_body(document):
    operation = document["paths"]["/v1/clips"]["post"]
    body = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    properties = body["properties"]
    for name in (
        "projectId",
        "name",
        "sourceVideoUrl",
        "sourceUploadId",
        "startTime",
        "endTime",
        "config",
    ):
        assert name in properties, name
    assert properties["startTime"]["type"] == "number"
    assert properties["startTime"]["minimum"] == 0
    assert properties["endTime"]["type"] == "number"

    config = resolve(document, properties["config"])
    aspect = resolve(document, config["properties"]["aspectRatio"])
    assert aspect["enum"] == ["16:9", "9:16", "1:1", "4:5"]
    max_duration = config["properties"]["maxDuration"]
    assert max_duration["minimum"] == 15
    assert max_duration["maximum"] == 300
    assert max_duration["nullable"] is True
    platform = config["properties"]["platform"]
    platform_enums = [resolve(document, s).get("enum") for s in platform.get("oneOf", [platform])]
    assert ["youtube", "tiktok", "instagram", "twitter", "linkedin"] in platform_enums
    for flag in ("enableCaptions", "reframing", "hookDetection"):
        assert config["properties"][flag]["type"] == "boolean"


def test_every_4xx_answer_is_the_error_envelope(document):
    seen = 0
    for path, method, operation in operations(document):
        codes = [c for c in operation["responses"] if c.startswith("4")]
        assert "401" in codes or path == "/v1/auth/token", (path, method)
        for code in codes:
            schema = json_schema(document, operation["responses"][code])
            assert set(schema["required"]) == {"success", "error"}
            assert set(schema["properties"]) == {"success", "error"}
            assert schema["properties"]["success"]["type"] == "boolean"
            error = resolve(document, schema["properties"]["error"])
            assert set(error["properties"]) == {"code", "message", "field", "details"}
            assert set(error["required"]) == {"code", "message"}
            assert error["properties"]["details"]["type"] == "object"
            seen += 1
    assert seen >= 40


def test_every_2xx_answer_is_an_envelope_with_success_and_data(document):
    for path, method, operation in operations(document):
        codes = [c for c in operation["responses"] if c.startswith("2")]
        assert codes, (path, method)
        for code in codes:
            schema = json_schema(document, operation["responses"][code])
            assert {"success", "data"} <= set(schema["properties"]), (path, method, code)
            assert schema["properties"]["success"]["type"] == "boolean"
            assert {"success", "data"} <= set(schema["required"]), (path, method, code)


def test_list_answers_document_their_pagination(document):
    schema = json_schema(document, document["paths"]["/v1/clips"]["get"]["responses"]["200"])
    assert schema["properties"]["data"]["type"] == "array"
    pagination = resolve(document, schema["properties"]["pagination"])
    assert set(pagination["properties"]) == {"hasMore", "nextCursor"}


def test_operations_name_their_security_schemes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Bearer clyp_…`.",
    }
    assert schemes["keyAuth"]["in"] == "header"
    assert schemes["keyAuth"]["name"] == "Authorization"
    assert schemes["jwtAuth"]["bearerFormat"] == "JWT"
    clips = document["paths"]["/v1/clips"]["get"]["security"]
    assert {"bearerAuth": []} in clips and {"keyAuth": []} in clips
    assert {} not in clips  # credentials are required
    # Getting a token needs no credentials: no requirement there, nor one for the document.
    assert "security" not in document
    assert document["paths"]["/v1/auth/token"]["post"].get("security", [{}]) == [{}]


def test_real_answers_match_the_documented_schemas(document, api, team):
    """A created clip, a fetched one, a list and an error, checked against the document."""
    project = ProjectFactory(team=team)
    create = document["paths"]["/v1/clips"]["post"]["responses"]
    created = api.post(
        "/v1/clips",
        {
            "projectId": project.pk,
            "name": "Product Demo Highlight",
            "sourceVideoUrl": "https://example.com/video.mp4",
            "config": {"aspectRatio": "9:16", "platform": "tiktok", "maxDuration": 60},
        },
        format="json",
    )
    assert created.status_code == 201
    assert (
        conforms(document, create["201"]["content"]["application/json"]["schema"], created.json())
        == []
    )

    bad = api.post(
        "/v1/clips",
        {"sourceVideoUrl": "https://example.com/v.mp4", "config": {"aspectRatio": "3:2"}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "config.aspectRatio"
    assert (
        conforms(document, create["400"]["content"]["application/json"]["schema"], bad.json()) == []
    )

    clip = ClipFactory(
        team=team,
        status="completed",
        metadata={
            "hooks": [{"time": 2.3, "text": "Watch", "confidence": 0.9}],
            "sentiment": "positive",
            "topics": ["demo"],
        },
    )
    detail = document["paths"]["/v1/clips/{clip_id}"]["get"]["responses"]["200"]
    fetched = api.get(f"/v1/clips/{clip.pk}")
    assert fetched.status_code == 200
    assert conforms(document, detail["content"]["application/json"]["schema"], fetched.json()) == []

    listing = document["paths"]["/v1/clips"]["get"]["responses"]["200"]
    listed = api.get("/v1/clips?limit=1")
    assert listed.status_code == 200
    assert conforms(document, listing["content"]["application/json"]["schema"], listed.json()) == []

    # And a wrong answer is caught, so the checks above mean something.
    wrong = {**fetched.json(), "data": {**fetched.json()["data"], "status": "sleeping"}}
    assert conforms(document, detail["content"]["application/json"]["schema"], wrong) != []


def test_the_docs_page_answers_html_that_loads_the_schema(anon):
    response = anon.get("/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<html" in html.lower()
    assert "swagger" in html.lower()
    assert "/v1/openapi.json" in html


def test_the_docs_page_loads_swagger_ui_from_this_server_not_a_cdn(anon, client):
    import re

    html = anon.get("/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    scripts = [s for s in sources if s.endswith(".js")]
    assert scripts and all(s.startswith("/") for s in scripts), scripts
    assert "cdn" not in html.lower()
    for script in scripts:
        from django.contrib.staticfiles import finders

        assert finders.find(script.split("/static/", 1)[-1]), script


def test_it_documents_idempotency_keys_and_rate_limits(document):
    assert "ErrorEnvelope" in document["components"]["schemas"]
    create = document["paths"]["/v1/clips"]["post"]
    names = [p["name"] for p in create.get("parameters", []) if p["in"] == "header"]
    assert names == ["Idempotency-Key"]
    assert "429" in create["responses"]
    assert set(create["responses"]["201"]["headers"]) >= {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    listing = document["paths"]["/v1/clips"]["get"]
    assert "429" in listing["responses"]
    assert not [p for p in listing.get("parameters", []) if p["name"] == "Idempotency-Key"]
    usage = document["paths"]["/v1/usage"]["get"]
    assert "200" in usage["responses"]
