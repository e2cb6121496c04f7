"""Every answer the tests get from either API, held to its OpenAPI document.

`ResponseCheckMiddleware` is installed for the whole test run (tests/conftest.py): each
response to a request whose method and path name an operation of /v1/openapi.json or
/choppity/v1/openapi.json must have a status code that operation declares, and a JSON
body that validates against the schema declared for that code. What does not is
recorded, and the autouse fixture `openapi_responses` fails the test that caused it. So
the documents cannot drift from the code: every status code and body that any test sees,
for every operation, is one the document promises.

The documents checked are the committed copies beside tests/api/test_openapi_stable.py,
which holds them byte for byte to what the server serves.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from openapi_schema_validator import OAS30ReadValidator

HERE = Path(__file__).parent / "api"
DOCUMENTS = {
    "/v1/": HERE / "openapi-v1.json",
    "/choppity/v1/": HERE / "openapi-choppity.json",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def null_allowed(node):
    """drf-spectacular writes a nullable reference as `{allOf: [$ref], nullable: true}`.
    OpenAPI 3.0.3 leaves `nullable` beside `allOf` ambiguous and strict validators refuse
    null there; read it the way it is meant (and as generated clients read it)."""
    if isinstance(node, list):
        return [null_allowed(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: null_allowed(value) for key, value in node.items()}
    if node.get("nullable") is True and "allOf" in node and "type" not in node:
        rest = {k: v for k, v in node.items() if k not in ("allOf", "nullable")}
        return {**rest, "anyOf": [{"allOf": node["allOf"]}, {"enum": [None]}]}
    return node


def conforms(document: dict, schema: dict, instance) -> list[str]:
    """What is wrong with `instance` against `schema` (a schema of `document`)."""
    validator = OAS30ReadValidator(null_allowed({**schema, "components": document["components"]}))
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(instance)]


@dataclass(frozen=True)
class Operation:
    document: dict
    method: str
    path: str  # as the document writes it
    pattern: re.Pattern
    responses: dict


@cache
def _operations() -> tuple[Operation, ...]:
    found = []
    for path in DOCUMENTS.values():
        document = json.loads(path.read_text())
        for template, item in document["paths"].items():
            regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
            for method, operation in item.items():
                if method in HTTP_METHODS:
                    found.append(
                        Operation(
                            document,
                            method,
                            template,
                            re.compile(f"{regex}$"),
                            operation["responses"],
                        )
                    )
    # Literal paths before templated ones that could also match them.
    return tuple(sorted(found, key=lambda op: op.path.count("{")))


def operation_for(method: str, path: str) -> Operation | None:
    method = method.lower()
    for operation in _operations():
        if operation.method == method and operation.pattern.match(path):
            return operation
    return None


def problems(method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
    """What is wrong with this answer, by its operation's declaration; [] when it matches
    (or no documented operation has this method and path)."""
    operation = operation_for(method, path)
    if operation is None:
        return []
    where = f"{method.upper()} {path} ({operation.path}) answered {status}"
    declared = operation.responses.get(str(status)) or operation.responses.get("default")
    if declared is None:
        return [f"{where}, which the document does not declare ({sorted(operation.responses)})"]
    content = declared.get("content") or {}
    if not content:
        return [f"{where} with a body, where the document declares none"] if body else []
    if not content_type.startswith("application/json"):
        if any(kind.startswith("application/json") for kind in content) and body:
            return [f"{where} as {content_type or 'no content type'}, not JSON"]
        return []
    try:
        instance = json.loads(body)
    except ValueError:
        return [f"{where} with a body that is not JSON: {body[:200]!r}"]
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return []
    return [f"{where}: {error}" for error in conforms(operation.document, schema, instance)]


# What the middleware found, per test (the fixture reads and clears it).
_found: list[str] = []
_lock = threading.Lock()


def found_take() -> list[str]:
    with _lock:
        taken = list(_found)
        _found.clear()
    return taken


class ResponseCheckMiddleware:
    """Outermost middleware in tests: records each answer that its document does not
    declare (status code or body)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        path = request.path
        if path.startswith(tuple(DOCUMENTS)) and not getattr(response, "streaming", False):
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            wrong = problems(
                request.method,
                path,
                response.status_code,
                response.get("Content-Type", ""),
                response.content,
            )
            if wrong:
                with _lock:
                    _found.extend(wrong)
        return response
