"""Reads for clips and uploads, always scoped to one team."""

from __future__ import annotations

from django.db.models import QuerySet

from clypai.api.errors import InvalidRequest, NotFound
from clypai.api.pagination import Page, SortField, paginate
from projects.models import Project, Team

from .models import Clip, Export, Upload

CLIP_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
    # Pending clips have no duration yet: they sort as -1, before every real one.
    "duration": SortField("duration", "duration", "float", null_as=-1.0),
}


def clip_get(*, team: Team, clip_id: str) -> Clip:
    clip = Clip.objects.filter(team=team, pk=clip_id).first()
    if clip is None:
        raise NotFound("Clip not found")
    return clip


def clip_list(
    *,
    team: Team,
    project_id: str | None = None,
    status: str | None = None,
    sort: SortField,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> Page:
    """One page of the team's clips: a single query whatever the page size."""
    queryset: QuerySet = Clip.objects.filter(team=team)
    if project_id:
        if not Project.objects.filter(team=team, pk=project_id).exists():
            raise InvalidRequest("Unknown project", field="projectId")
        queryset = queryset.filter(project_id=project_id)
    if status:
        queryset = queryset.filter(status=status)
    queryset = queryset.only(
        "id", "project_id", "name", "status", "duration", "created_at", "updated_at"
    )
    return paginate(queryset, sort=sort, descending=descending, limit=limit, cursor=cursor)


def upload_get(*, team: Team, upload_id: str) -> Upload:
    upload = Upload.objects.filter(team=team, pk=upload_id).first()
    if upload is None:
        raise NotFound("Upload not found")
    return upload


def export_get(*, team: Team, export_id: str) -> Export:
    export = Export.objects.select_related("clip").filter(clip__team=team, pk=export_id).first()
    if export is None:
        raise NotFound("Export not found")
    return export
