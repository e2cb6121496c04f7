"""The /v1/ success envelope and the way it writes times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rest_framework import status
from rest_framework.response import Response


def ok(
    data: Any, *, status_code: int = status.HTTP_200_OK, headers: dict | None = None, **extra: Any
) -> Response:
    return Response({"success": True, "data": data, **extra}, status=status_code, headers=headers)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, whole seconds, as the document shows."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
