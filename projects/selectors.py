"""Reads for projects and API keys, scoped to one team."""

from __future__ import annotations

from django.db.models import Count

from clypai.api.errors import NotFound
from clypai.api.pagination import Page, SortField, paginate

from .models import ApiKey, Project, Team

PROJECT_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
}


def project_get(*, team: Team, project_id: str) -> Project:
    project = (
        Project.objects.annotate(clip_count=Count("clips")).filter(team=team, pk=project_id).first()
    )
    if project is None:
        raise NotFound("Project not found")
    return project


def project_list(
    *, team: Team, sort: SortField, descending: bool, limit: int, cursor: str | None
) -> Page:
    queryset = Project.objects.filter(team=team).annotate(clip_count=Count("clips"))
    return paginate(queryset, sort=sort, descending=descending, limit=limit, cursor=cursor)


def api_key_list(*, team: Team) -> list[ApiKey]:
    return list(ApiKey.objects.filter(team=team).order_by("-created_at", "id"))


def api_key_get(*, team: Team, key_id: str) -> ApiKey:
    api_key = ApiKey.objects.filter(team=team, pk=key_id).first()
    if api_key is None:
        raise NotFound("API key not found")
    return api_key
