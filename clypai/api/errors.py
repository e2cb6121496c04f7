"""The /v1/ error objects and the one exception handler that builds them.

Shapes, exactly as seeds/clypai-clips-api.txt shows:
    {"success": false, "error": {"code": "invalid_request", "message": "…", "field": "…"}}
    {"success": false, "error": {"code": "processing_failed", "message": "…", "details": {…}}}
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from clypai.api.validation import first_validation_error

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error answered in the envelope: a stable code, a message, a field or details."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail=message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.field = field
        self.details = details
        self.headers = headers or {}

    def as_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.details is not None:
            error["details"] = self.details
        return error


class InvalidRequest(ApiError):
    code = "invalid_request"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field: str | None = None, details: dict | None = None):
        super().__init__(message, field=field, details=details)


class NotFound(ApiError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class Conflict(ApiError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class QuotaExceeded(ApiError):
    code = "quota_exceeded"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def error_body(error: dict[str, Any]) -> dict[str, Any]:
    return {"success": False, "error": error}


def body_too_large() -> PayloadTooLarge:
    """A request body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's RequestDataTooBig)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return PayloadTooLarge(
        f"The request body is larger than the limit of {limit} bytes", details={"limit": limit}
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's exception handler for /v1/: every error in the envelope."""
    headers: dict[str, str] = {}
    if isinstance(exc, RequestDataTooBig):
        exc = body_too_large()
    if isinstance(exc, ApiError):
        body, code = exc.as_error(), exc.status_code
        headers.update(exc.headers)
    elif isinstance(exc, exceptions.ValidationError):
        field, message = first_validation_error(exc.detail)
        body = {"code": "invalid_request", "message": message}
        if field:
            body["field"] = field
        code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.ParseError):
        body = {"code": "invalid_request", "message": f"Malformed request body: {exc.detail}"}
        code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        body = {"code": "unauthorized", "message": str(exc.detail)}
        code = status.HTTP_401_UNAUTHORIZED
        request = context.get("request")
        authenticators = getattr(request, "authenticators", None) or []
        if authenticators:
            header = authenticators[0].authenticate_header(request)
            if header:
                headers["WWW-Authenticate"] = header
    elif isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        body = {"code": "forbidden", "message": str(getattr(exc, "detail", "Forbidden"))}
        code = status.HTTP_403_FORBIDDEN
    elif isinstance(exc, (exceptions.NotFound, Http404)):
        body = {"code": "not_found", "message": "Not found"}
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, exceptions.MethodNotAllowed):
        body = {"code": "method_not_allowed", "message": str(exc.detail)}
        code = status.HTTP_405_METHOD_NOT_ALLOWED
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        view = context.get("view")
        accepted = sorted({p.media_type for p in getattr(view, "parser_classes", None) or []})
        sent = (getattr(context.get("request"), "content_type", "") or "").split(";")[0]
        body = {
            "code": "unsupported_media_type",
            "message": f"Send the body as {' or '.join(accepted) or 'JSON'}"
            + (f", not {sent}" if sent else ""),
        }
        code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    elif isinstance(exc, exceptions.NotAcceptable):
        body = {"code": "not_acceptable", "message": str(exc.detail)}
        code = status.HTTP_406_NOT_ACCEPTABLE
    elif isinstance(exc, exceptions.Throttled):
        wait = math.ceil(exc.wait) if exc.wait is not None else None
        body = {
            "code": "rate_limited",
            "message": "Too many requests: slow down and retry after the time given",
            "details": {"retryAfter": wait},
        }
        code = status.HTTP_429_TOO_MANY_REQUESTS
        if wait is not None:
            headers["Retry-After"] = str(wait)
    elif isinstance(exc, exceptions.APIException):
        body = {
            "code": str(exc.get_codes()) if isinstance(exc.get_codes(), str) else "error",
            "message": str(exc.detail),
        }
        code = exc.status_code
    else:
        return None
    return Response(error_body(body), status=code, headers=headers or None)
