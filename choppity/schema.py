"""The Choppity surface's own OpenAPI document, at /choppity/v1/openapi.json.

It is a second product's API, so it gets its own document rather than a corner of
/v1/'s: its own title, its error shape on every 4xx, its enum names. Its operations
appear only while `ChoppitySchemaGenerator` runs, so /v1/openapi.json (and the plain
`manage.py spectacular`) stay exactly the native API; this one is checked with
`manage.py spectacular --generator-class choppity.schema.ChoppitySchemaGenerator
--validate --fail-on-warn`.
"""

from __future__ import annotations

from contextvars import ContextVar

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from clypai.api.schema import limit_headers

PREFIX = "/choppity/v1/"
JOB_STATUSES = ("queued", "processing", "done", "error")

SETTINGS = {
    "TITLE": "ClypAI — Choppity-compatible API",
    "DESCRIPTION": (
        "The Choppity clips API, served unchanged under /choppity/v1/: a client written "
        "for it works by changing only its base URL. Times are Unix milliseconds, "
        "durations seconds with two decimals, scores 0–1. Every error answers "
        '`{"error": {"code": "BAD_REQUEST", "message": "…", "field": "…"}}`.'
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/choppity/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "choppity.schema.add_limits",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChoppityJobStatusEnum": list(JOB_STATUSES),
        "ChoppityQueuedStatusEnum": ["queued"],
        "ChoppityUploadStatusEnum": ["ready", "pending"],
    },
}

_generating: ContextVar[bool] = ContextVar("choppity_schema", default=False)


class ChoppitySchemaGenerator(SchemaGenerator):
    """Generates the document of /choppity/v1/ alone, with its own settings."""

    def _get_paths_and_endpoints(self):
        return [e for e in super()._get_paths_and_endpoints() if e[0].startswith(PREFIX)]

    def get_schema(self, request=None, public=False):
        from drf_spectacular.plumbing import _load_enum_name_overrides

        token = _generating.set(True)
        # drf-spectacular caches the enum overrides of whichever settings came first in this
        # process: clear the cache on the way in and out so /v1/'s and ours never mix.
        _load_enum_name_overrides.cache_clear()
        try:
            with patched_settings(SETTINGS):
                return super().get_schema(request=request, public=public)
        finally:
            _load_enum_name_overrides.cache_clear()
            _generating.reset(token)


class ChoppityAutoSchema(AutoSchema):
    """The views' schema: present in the Choppity document only."""

    def get_operation(self, *args, **kwargs):
        if not _generating.get():
            return None
        return super().get_operation(*args, **kwargs)


class ErrorObject(serializers.Serializer):
    code = serializers.CharField(
        help_text="BAD_REQUEST, UNAUTHORIZED, NOT_FOUND (the document's table); also "
        "CONFLICT, PAYLOAD_TOO_LARGE, QUOTA_EXCEEDED, METHOD_NOT_ALLOWED, "
        "UNSUPPORTED_MEDIA_TYPE, INTERNAL_ERROR."
    )
    message = serializers.CharField(help_text="For people; may change.")
    field = serializers.CharField(
        required=False, help_text="The request field at fault, e.g. `source.url`."
    )
    details = serializers.DictField(
        required=False, help_text="For programs, e.g. a quota's used and limit."
    )

    class Meta:
        ref_name = "ChoppityErrorObject"


class ErrorOut(serializers.Serializer):
    error = ErrorObject()

    class Meta:
        ref_name = "ChoppityError"


_EXAMPLES = {
    400: (
        "BAD_REQUEST",
        {
            "code": "BAD_REQUEST",
            "message": "Give source.url or source.upload_id, not both",
            "field": "source",
        },
    ),
    401: ("UNAUTHORIZED", {"code": "UNAUTHORIZED", "message": "Invalid or revoked API key"}),
    404: ("NOT_FOUND", {"code": "NOT_FOUND", "message": "Job not found"}),
    409: (
        "CONFLICT",
        {
            "code": "CONFLICT",
            "message": "Clip cannot be rendered while its status is processing; "
            "wait until its preview is ready",
            "details": {"status": "processing"},
        },
    ),
    413: (
        "PAYLOAD_TOO_LARGE",
        {
            "code": "PAYLOAD_TOO_LARGE",
            "message": "File is larger than the upload limit",
            "details": {"limit": 5368709120},
        },
    ),
    429: (
        "QUOTA_EXCEEDED",
        {
            "code": "QUOTA_EXCEEDED",
            "message": "Monthly render minutes exceeded",
            "details": {
                "used_minutes": 59.5,
                "requested_minutes": 0.97,
                "limit_minutes": 60,
                "reset_at": 1746057600000,
            },
        },
    ),
}

_DESCRIPTIONS = {
    400: "Missing source, both url and upload_id provided, malformed URL, invalid language "
    "code, or another invalid field (`error.field` names it).",
    401: "Missing or invalid credential.",
    404: "The id doesn't exist on your team (or is not a valid id).",
    409: "The clip is not ready for this yet.",
    413: "The upload (or the request body) is larger than the limit.",
    415: "The body is not of a media type this operation takes.",
    429: "A monthly allowance (clip generations, render minutes) is used up "
    "(QUOTA_EXCEEDED), or too many requests (TOO_MANY_REQUESTS: too many a minute, or too "
    "much of the team's work queued or running at once); `Retry-After` says when to try "
    "again.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    responses = {}
    for code in codes:
        name, error = _EXAMPLES[code]
        responses[code] = OpenApiResponse(
            response=ErrorOut,
            description=_DESCRIPTIONS[code],
            examples=[
                OpenApiExample(
                    name, value={"error": error}, response_only=True, status_codes=[str(code)]
                )
            ],
        )
    return responses


_RETRY_AFTER = (
    "Seconds to wait before trying again: until the rate-limit window ends, or until the "
    "monthly allowance resets (`reset_at`)."
)
_SHARED_DESCRIPTIONS = {
    409: "An Idempotency-Key reused with another request (IDEMPOTENCY_CONFLICT), or the "
    "clip is not ready for this yet (CONFLICT).",
    429: _DESCRIPTIONS[429],
}


def _error_response(code: int) -> dict:
    return {
        "description": _SHARED_DESCRIPTIONS.get(code) or _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChoppityError"}}},
    }


def add_limits(result, generator, request, public):
    """drf-spectacular postprocessing hook of this document: what every operation shares
    because of clypai.api.limits and its request's body, in this surface's error shape
    (the /v1/ document's `clypai.api.schema.add_limits`, for /choppity/v1/)."""
    headers, retry_after = limit_headers(result, retry_after=_RETRY_AFTER)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("429", _error_response(429))
            if method == "post":
                operation.setdefault("parameters", []).append(
                    {
                        "in": "header",
                        "name": "Idempotency-Key",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[\\x21-\\x7e]+$",
                        },
                        "description": "Do this POST at most once: the same key and body "
                        "within 24 hours return the first response (`Idempotent-Replayed: "
                        "true`); another body with the key is 409 IDEMPOTENCY_CONFLICT.",
                    }
                )
                for code in (400, 409, 413):
                    responses.setdefault(str(code), _error_response(code))
            if "requestBody" in operation:
                responses.setdefault("415", _error_response(415))
            for code, response in responses.items():
                response.setdefault("headers", {}).update(headers)
                if code == "429":
                    response["headers"].update(retry_after)
    return result
