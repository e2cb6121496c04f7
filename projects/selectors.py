"""Reads for projects and the team's usage (the /v1/ viewsets scope rows to the caller's
team)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from clypai.api.pagination import SortField

from .models import MonthlyUsage, Plan, Team, month_start

PROJECT_SORTS = {
    "createdAt": SortField("createdAt", "created_at", "datetime"),
    "updatedAt": SortField("updatedAt", "updated_at", "datetime"),
    "name": SortField("name", "name", "str"),
}


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
