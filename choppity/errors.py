"""The Choppity surface's one error shape, and the exception handler that builds it.

    {"error": {"code": "BAD_REQUEST", "message": "source.url: Must be an http or https URL",
               "field": "source.url"}}

The document names BAD_REQUEST (400), UNAUTHORIZED (401) and NOT_FOUND (404); what else
this surface can answer uses the same shape and the same naming (the HTTP reason in
capitals, or the service's stable code in capitals): QUOTA_EXCEEDED (429), CONFLICT
(409), PAYLOAD_TOO_LARGE (413), METHOD_NOT_ALLOWED (405), UNSUPPORTED_MEDIA_TYPE (415),
NOT_ACCEPTABLE (406), TOO_MANY_REQUESTS (429), INTERNAL_ERROR (500).
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from clypai.api.errors import ApiError, body_too_large
from clypai.api.validation import first_validation_error

logger = logging.getLogger(__name__)

# The native services' stable codes, as this document spells them.
_CODES = {
    "invalid_request": "BAD_REQUEST",
    "unauthorized": "UNAUTHORIZED",
    "not_found": "NOT_FOUND",
    "quota_exceeded": "QUOTA_EXCEEDED",
    "payload_too_large": "PAYLOAD_TOO_LARGE",
    "rate_limited": "TOO_MANY_REQUESTS",
    "clip_not_ready": "CONFLICT",
    "conflict": "CONFLICT",
}


class ChoppityError(exceptions.APIException):
    """An error of this surface: an HTTP status, a code, a message, maybe a field."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict | None = None,
    ):
        super().__init__(detail=message)
        self.status_code, self.code, self.message = status_code, code, message
        self.field, self.details = field, details


def bad_request(message: str, *, field: str | None = None) -> ChoppityError:
    return ChoppityError(400, "BAD_REQUEST", message, field=field)


def not_found(message: str = "Not found") -> ChoppityError:
    return ChoppityError(404, "NOT_FOUND", message)


def error_body(
    code: str, message: str, *, field: str | None = None, details: dict | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if details:
        error["details"] = details
    return {"error": error}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _details(details: dict | None) -> dict | None:
    """A service's details in this document's style: snake_case, times in Unix ms."""
    if not details:
        return None
    out = {}
    for key, value in details.items():
        key = _snake(key)
        if key.endswith("_at") and isinstance(value, str):
            try:
                value = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
            except ValueError:
                pass
        out[key] = value
    return out


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's exception handler for /choppity/v1/: every error, even a crash, in one shape."""
    headers: dict[str, str] = {}
    field = details = None
    if isinstance(exc, RequestDataTooBig):
        exc = body_too_large()
    if isinstance(exc, ChoppityError):
        code, status_code, message = exc.code, exc.status_code, exc.message
        field, details = exc.field, exc.details
    elif isinstance(exc, ApiError):
        code = _CODES.get(exc.code, exc.code.upper())
        status_code, message, field = exc.status_code, exc.message, exc.field
        details = _details(exc.details)
        headers.update(exc.headers)
    elif isinstance(exc, exceptions.ValidationError):
        field, message = first_validation_error(exc.detail)
        code, status_code = "BAD_REQUEST", 400
    elif isinstance(exc, exceptions.ParseError):
        code, status_code, message = "BAD_REQUEST", 400, f"Malformed request body: {exc.detail}"
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        code, status_code, message = "UNAUTHORIZED", 401, str(exc.detail)
        request = context.get("request")
        authenticators = getattr(request, "authenticators", None) or []
        if authenticators:
            headers["WWW-Authenticate"] = authenticators[0].authenticate_header(request)
    elif isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        code, status_code, message = "FORBIDDEN", 403, str(getattr(exc, "detail", "Forbidden"))
    elif isinstance(exc, (exceptions.NotFound, Http404)):
        code, status_code, message = "NOT_FOUND", 404, "Not found"
    elif isinstance(exc, exceptions.MethodNotAllowed):
        code, status_code, message = "METHOD_NOT_ALLOWED", 405, str(exc.detail)
    elif isinstance(exc, exceptions.NotAcceptable):
        code, status_code, message = "NOT_ACCEPTABLE", 406, str(exc.detail)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        code, status_code, message = "UNSUPPORTED_MEDIA_TYPE", 415, str(exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        code, status_code, message = "TOO_MANY_REQUESTS", 429, "Too many requests"
        if exc.wait is not None:
            headers["Retry-After"] = str(math.ceil(exc.wait))
    elif isinstance(exc, exceptions.APIException):
        code = str(exc.default_code).upper()
        status_code, message = exc.status_code, str(exc.detail)
    else:
        # A crash still answers in the document's shape; the traceback goes to the log.
        logger.error("choppity: unhandled error", exc_info=exc)
        code, status_code, message = "INTERNAL_ERROR", 500, "Internal server error"
    body = error_body(code, message, field=field, details=details)
    return Response(body, status=status_code, headers=headers or None)


def unknown_path(request, *args, **kwargs) -> JsonResponse:
    """Any path under /choppity/ that names no endpoint."""
    return JsonResponse(error_body("NOT_FOUND", "Not found"), status=status.HTTP_404_NOT_FOUND)
