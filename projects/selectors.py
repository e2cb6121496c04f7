"""Reads for projects and API keys, scoped to one team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count
from django.utils import timezone

from clypai.api.errors import NotFound
from clypai.api.pagination import Page, SortField, paginate

from .models import ApiKey, MonthlyUsage, Plan, Project, Team, month_start

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


@dataclass(frozen=True)
class Allowance:
    used: float
    limit: float | None

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


@dataclass(frozen=True)
class UsageReport:
    plan: Plan | None
    period_start: datetime
    reset_at: datetime
    clip_generations: Allowance
    render_minutes: Allowance
    requests_per_minute: int


def usage_get(*, team: Team, now: datetime | None = None) -> UsageReport:
    """The team's plan, what it used this month (UTC) against its limits, and when the
    counters reset."""
    from django.conf import settings

    from .services import next_month_start

    now = now or timezone.now()
    team = Team.objects.select_related("plan").get(pk=team.pk)
    limits = team.limits()
    month = month_start(now)
    row = MonthlyUsage.objects.filter(team=team, month=month).first()
    return UsageReport(
        plan=team.plan,
        period_start=datetime(month.year, month.month, 1, tzinfo=UTC),
        reset_at=next_month_start(now),
        clip_generations=Allowance(
            used=row.clips_created if row else 0, limit=limits.clip_generations
        ),
        render_minutes=Allowance(
            used=round((row.render_seconds if row else 0.0) / 60, 2), limit=limits.render_minutes
        ),
        requests_per_minute=(
            limits.requests_per_minute
            if limits.requests_per_minute is not None
            else settings.CLYPAI_RATE_LIMIT_PER_MINUTE
        ),
    )
