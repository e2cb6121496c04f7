"""Reads for clips: the orders a list of them may take (the /v1/ viewsets scope the rows
to the caller's team)."""

from __future__ import annotations

from clypai.api.pagination import SortField

CLIP_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
    # Pending clips have no duration yet: they sort as -1, before every real one.
    "duration": SortField("duration", "duration", "float", null_as=-1.0),
}
