"""OpenAPI pieces: the envelope around every response and the error objects."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers

_cache: dict[str, serializers.Serializer] = {}

# How to authenticate, one extension per authentication class (drf-spectacular warns
# about, and leaves out, any class without one).
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `Bearer clyp_…`.",
}
_KEY = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "An API key as `Key clyp_…`, the Choppity document's form.",
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "clypai.api.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "keyAuth"]

    def get_security_requirement(self, auto_schema):
        return [{"bearerAuth": []}, {"keyAuth": []}]  # either header form, not both

    def get_security_definition(self, auto_schema):
        return [_BEARER, _KEY]


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "clypai.api.authentication.JWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from POST /v1/auth/token: `Bearer <token>`.",
        }


class TeamSessionScheme(OpenApiAuthenticationExtension):
    target_class = "clypai.api.authentication.TeamSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class ErrorObject(serializers.Serializer):
    code = serializers.CharField(
        help_text="invalid_request, unauthorized, forbidden, not_found, conflict, "
        "clip_not_ready, quota_exceeded, rate_limited, payload_too_large, "
        "processing_failed, …"
    )
    message = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The request field at fault.")
    details = serializers.DictField(required=False)


class ErrorEnvelope(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    error = ErrorObject()


class PaginationObject(serializers.Serializer):
    hasMore = serializers.BooleanField()
    nextCursor = serializers.CharField(allow_null=True)


def envelope(serializer_class, *, many: bool = False, paginated: bool = False):
    """`{"success": true, "data": <serializer>}` (and `pagination` for lists)."""
    name = f"{serializer_class.__name__.removesuffix('Out')}{'List' if many else ''}Envelope"
    if name not in _cache:
        fields = {
            "success": serializers.BooleanField(help_text="Always true."),
            "data": serializer_class(many=many),
        }
        if paginated:
            fields["pagination"] = PaginationObject()
        serializer = inline_serializer(name=name, fields=fields)
        # One object even around a list: drf-spectacular would make a viewset's `list`
        # answer an array of envelopes.
        extend_schema_serializer(many=False)(type(serializer))
        _cache[name] = serializer
    return _cache[name]


ERROR_EXAMPLES = {
    400: OpenApiExample(
        "invalid_request",
        value={
            "success": False,
            "error": {
                "code": "invalid_request",
                "message": "Source video URL is not accessible",
                "field": "sourceVideoUrl",
            },
        },
        response_only=True,
        status_codes=["400"],
    ),
    401: OpenApiExample(
        "unauthorized",
        value={
            "success": False,
            "error": {"code": "unauthorized", "message": "Invalid or revoked API key"},
        },
        response_only=True,
        status_codes=["401"],
    ),
    404: OpenApiExample(
        "not_found",
        value={"success": False, "error": {"code": "not_found", "message": "Not found"}},
        response_only=True,
        status_codes=["404"],
    ),
    409: OpenApiExample(
        "conflict",
        value={
            "success": False,
            "error": {
                "code": "clip_not_ready",
                "message": "Clip cannot be exported while its status is pending",
                "details": {"status": "pending"},
            },
        },
        response_only=True,
        status_codes=["409"],
    ),
    413: OpenApiExample(
        "payload_too_large",
        value={
            "success": False,
            "error": {
                "code": "payload_too_large",
                "message": "File is larger than the upload limit",
                "details": {"limit": 5368709120},
            },
        },
        response_only=True,
        status_codes=["413"],
    ),
    422: OpenApiExample(
        "processing_failed",
        value={
            "success": False,
            "error": {
                "code": "processing_failed",
                "message": "Clip generation failed: Unsupported video codec",
                "details": {"codec": "h265", "supportedCodecs": ["h264", "vp9"]},
            },
        },
        response_only=True,
        status_codes=["422"],
    ),
    429: OpenApiExample(
        "quota_exceeded",
        value={
            "success": False,
            "error": {
                "code": "quota_exceeded",
                "message": "Monthly clip generation quota exceeded",
                "details": {"used": 100, "limit": 100, "resetAt": "2024-02-01T00:00:00Z"},
            },
        },
        response_only=True,
        status_codes=["429"],
    ),
}

_DESCRIPTIONS = {
    400: "Invalid request: `error.field` names the field at fault.",
    401: "Missing, invalid or revoked credentials.",
    403: "Authenticated, but not allowed.",
    404: "Not found (also for another team's objects).",
    409: "The object is not in a state that allows this.",
    413: "The request body (or the upload) is larger than the limit.",
    422: "Processing failed (`processing_failed`): `message` says why, `details` the "
    "same for programs.",
    415: "The body is not of a media type this operation takes (JSON, or multipart where "
    "it takes a file).",
    429: "Monthly quota exceeded (`quota_exceeded`: clip generations, or render minutes, "
    "which full renders, exports and re-renders after an edit count), or too many requests "
    "(`rate_limited`: too many a minute, or too much of the team's work queued or running "
    "at once); `Retry-After` says when to try again.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(
            response=ErrorEnvelope,
            description=_DESCRIPTIONS.get(code, "Error"),
            examples=[ERROR_EXAMPLES[code]] if code in ERROR_EXAMPLES else None,
        )
        for code in codes
    }


_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current one-minute window.",
    "X-RateLimit-Remaining": "Requests left in the current window.",
    "X-RateLimit-Reset": "Unix time (seconds) when the window ends.",
}


_RETRY_AFTER = (
    "Seconds to wait before trying again: until the rate-limit window ends, or until the "
    "monthly quota resets (`resetAt`)."
)


def limit_headers(result: dict, *, retry_after: str = _RETRY_AFTER) -> tuple[dict, dict]:
    """The rate-limit headers every answer carries, and `Retry-After` that each 429 adds,
    declared once in `components.headers` of the document `result`; references to them
    (for every response, for 429s)."""
    components = result.setdefault("components", {}).setdefault("headers", {})
    for name, text in _RATE_LIMIT_HEADERS.items():
        components[name] = {"description": text, "schema": {"type": "integer"}}
    components["Retry-After"] = {
        "description": retry_after,
        "schema": {"type": "integer", "minimum": 1},
    }
    every = {name: {"$ref": f"#/components/headers/{name}"} for name in _RATE_LIMIT_HEADERS}
    return every, {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}


def _error_response(code: int) -> dict:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


def add_limits(result, generator, request, public):
    """drf-spectacular postprocessing hook for the /v1/ document: what every operation
    shares because of clypai.api.limits and the request's body (rate-limit headers, and
    429 with Retry-After; on each POST an optional Idempotency-Key, 400 when it is
    malformed, 409 when it is reused with another body; 413 for a body over the size
    limit and 415 for one that is not of the media types the operation takes)."""
    headers, retry_after = limit_headers(result)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            if not operation.get("security") == [] or method == "post":
                responses.setdefault("429", _error_response(429))
            if method == "post" and operation.get("security") != []:
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
                        "description": (
                            "Do this POST at most once: the same key and body within 24 "
                            "hours return the first response (`Idempotent-Replayed: true`); "
                            "another body with the key is 409 `idempotency_conflict`."
                        ),
                    }
                )
                # A malformed key is refused before anything else; a reused one with
                # another body is a conflict.
                for code in (400, 409):
                    responses.setdefault(str(code), _error_response(code))
            # A body is read by the operations that take one, and by any POST that
            # carries an Idempotency-Key (its fingerprint): either may be too large.
            if method == "post" or "requestBody" in operation:
                responses.setdefault("413", _error_response(413))
            if "requestBody" in operation:
                responses.setdefault("415", _error_response(415))
            for code, response in responses.items():
                if "$ref" in response:
                    continue
                response.setdefault("headers", {}).update(headers)
                if code == "429":
                    response["headers"].update(retry_after)
    return result
