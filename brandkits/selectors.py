"""Reads for brand kits, scoped to one team."""

from __future__ import annotations

from clypai.api.errors import NotFound
from clypai.api.pagination import Page, SortField, paginate
from projects.models import Team

from .models import BrandKit

BRAND_KIT_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
}


def brand_kit_get(*, team: Team, brand_kit_id: str) -> BrandKit:
    brand_kit = BrandKit.objects.filter(team=team, pk=brand_kit_id).first()
    if brand_kit is None:
        raise NotFound("Brand kit not found")
    return brand_kit


def brand_kit_list(
    *, team: Team, sort: SortField, descending: bool, limit: int, cursor: str | None
) -> Page:
    return paginate(
        BrandKit.objects.filter(team=team),
        sort=sort,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )
