"""Opaque keyset cursors: `pagination.hasMore` and `pagination.nextCursor`.

A cursor holds the sort it was made for and the last row's sort value and id; the next
page is the rows strictly after that (value, id) pair in the same order. Rows inserted
meanwhile never shift a page, and the unique id tie-breaker means no row is skipped or
repeated among equal values.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from .errors import InvalidRequest
from .responses import ok

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class SortField:
    api_name: str
    column: str
    kind: str  # "str" | "float" | "datetime"
    null_as: Any = None  # what a NULL sorts as, so NULLs page like values


@dataclass(frozen=True)
class Page:
    rows: list
    has_more: bool
    next_cursor: str | None

    def pagination(self) -> dict[str, Any]:
        return {"hasMore": self.has_more, "nextCursor": self.next_cursor}


def _encode(payload: dict) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("Invalid pagination cursor", field="cursor") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("Invalid pagination cursor", field="cursor")
    return payload


def query_param(params, name: str) -> str | None:
    """A query parameter's value, None when it is not given. An empty one is refused, as
    Stripe does: `?cursor=` reads like a client's unset variable, not a choice."""
    value = params.get(name)
    if value == "":
        raise InvalidRequest(f"{name} must not be empty (leave it out instead)", field=name)
    return value


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError as exc:
        raise InvalidRequest("limit must be an integer between 1 and 100", field="limit") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest("limit must be an integer between 1 and 100", field="limit")
    return limit


def _to_json(value: Any, kind: str) -> Any:
    if kind == "datetime":
        return value.isoformat()
    return value


def _from_json(value: Any, kind: str) -> Any:
    if kind == "datetime":
        if not isinstance(value, str):
            raise ValueError("bad datetime")
        return datetime.fromisoformat(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("bad number")
        return float(value)
    if not isinstance(value, str) or "\x00" in value:
        # PostgreSQL text cannot hold NUL: such a value would fail in the query, not here.
        raise ValueError("bad string")
    return value


def paginate(
    queryset: QuerySet,
    *,
    sort: SortField,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> Page:
    """One page of `queryset` in (sort, id) order after `cursor`: one query, limit+1 rows."""
    key = (
        Coalesce(F(sort.column), Value(sort.null_as))
        if sort.null_as is not None
        else F(sort.column)
    )
    queryset = queryset.annotate(_sort_key=key)
    if cursor:
        payload = _decode(cursor)
        if payload.get("s") != sort.api_name or payload.get("d") != descending:
            raise InvalidRequest(
                "Cursor belongs to another sortBy/sortOrder; start again without it",
                field="cursor",
            )
        try:
            last_value = _from_json(payload.get("v"), sort.kind)
            last_id = payload["i"]
            if not isinstance(last_id, str) or "\x00" in last_id:
                raise ValueError("bad id")
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidRequest("Invalid pagination cursor", field="cursor") from exc
        if descending:
            after = Q(_sort_key__lt=last_value) | Q(_sort_key=last_value, pk__lt=last_id)
        else:
            after = Q(_sort_key__gt=last_value) | Q(_sort_key=last_value, pk__gt=last_id)
        queryset = queryset.filter(after)
    order = ("-_sort_key", "-pk") if descending else ("_sort_key", "pk")
    rows = list(queryset.order_by(*order)[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = _encode(
            {
                "s": sort.api_name,
                "d": descending,
                "v": _to_json(last._sort_key, sort.kind),
                "i": last.pk,
            }
        )
    return Page(rows=rows, has_more=has_more, next_cursor=next_cursor)


def parse_sort(
    params, fields: dict[str, SortField], default: str = "createdAt"
) -> tuple[SortField, bool]:
    sort_by = query_param(params, "sortBy") or default
    if sort_by not in fields:
        raise InvalidRequest(f"sortBy must be one of: {', '.join(fields)}", field="sortBy")
    order = (query_param(params, "sortOrder") or "desc").lower()
    if order not in ("asc", "desc"):
        raise InvalidRequest("sortOrder must be asc or desc", field="sortOrder")
    return fields[sort_by], order == "desc"


CREATED_AT = SortField("createdAt", "created_at", "datetime")


class KeysetPagination(BasePagination):
    """The paginator of every /v1/ list: `limit` (default 20, at most 100) and `cursor`,
    and `sortBy`/`sortOrder` among the view's `sorts` (a view without them lists newest
    first). The page goes out in the envelope with its `pagination` object.

    It adds nothing to the OpenAPI document: each list names its query parameters in its
    own @extend_schema, and its envelope holds `pagination`."""

    page: Page | None = None

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list:
        params = request.query_params
        sorts = getattr(view, "sorts", None)
        sort, descending = (CREATED_AT, True) if sorts is None else parse_sort(params, sorts)
        self.page = paginate(
            queryset,
            sort=sort,
            descending=descending,
            limit=parse_limit(query_param(params, "limit")),
            cursor=query_param(params, "cursor"),
        )
        return self.page.rows

    def get_paginated_response(self, data) -> Response:
        return ok(data, pagination=self.page.pagination())
