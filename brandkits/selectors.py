"""Reads for brand kits: the orders a list of them may take (the /v1/ viewsets scope the
rows to the caller's team)."""

from __future__ import annotations

from clypai.api.pagination import SortField

BRAND_KIT_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
}
