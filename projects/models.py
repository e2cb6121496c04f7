"""Teams (the tenant), memberships, API keys, projects and monthly usage."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone

from clypai.ids import new_api_key_id, new_project_id, new_team_id


class Plan(models.Model):
    """A named set of monthly limits that staff give teams; a team may override each."""

    id = models.SlugField(primary_key=True, max_length=40)
    name = models.CharField(max_length=80)
    monthly_clip_generations = models.PositiveIntegerField(
        null=True, blank=True, help_text="Clip generations a month; empty: no limit."
    )
    monthly_render_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minutes of full renders a month; empty: no limit."
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="API requests a minute per key; empty: the default."
    )
    max_clip_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Longest clip a request may ask for, in seconds; empty: CLYPAI_MAX_CLIP_SECONDS.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Limits:
    """A team's effective limits: its own overrides, else its plan's; None: no limit."""

    clip_generations: int | None
    render_minutes: int | None
    requests_per_minute: int | None
    clip_seconds: float  # the longest clip a request may ask for (always bounded)


class Team(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_team_id, editable=False)
    name = models.CharField(max_length=120, unique=True)
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )
    # Overrides of the plan's limits; empty means the plan's (no plan: no limit). New
    # teams get CLYPAI_DEFAULT_MONTHLY_CLIP_QUOTA here.
    monthly_clip_quota = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the plan's clip generations a month."
    )
    monthly_render_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the plan's render minutes a month."
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the plan's API requests a minute per key."
    )
    preferred_language = models.CharField(max_length=8, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def limits(self) -> Limits:
        plan = self.plan

        def pick(own, plan_field):
            if own is not None:
                return own
            return getattr(plan, plan_field) if plan is not None else None

        return Limits(
            clip_generations=pick(self.monthly_clip_quota, "monthly_clip_generations"),
            render_minutes=pick(self.monthly_render_minutes, "monthly_render_minutes"),
            requests_per_minute=pick(self.requests_per_minute, "requests_per_minute"),
            clip_seconds=float(
                (plan.max_clip_seconds if plan is not None else None)
                or settings.CLYPAI_MAX_CLIP_SECONDS
            ),
        )


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class ApiKey(models.Model):
    """An API key: `clyp_` + prefix + secret, stored only as a SHA-256 hash."""

    id = models.CharField(primary_key=True, max_length=40, default=new_api_key_id, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120, blank=True, default="")
    # The visible start of the key (`clyp_` and eight characters) for listing.
    prefix = models.CharField(max_length=16, db_index=True)
    hashed_key = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.team})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Project(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_project_id, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(is_default=True),
                name="project_one_default_per_team",
            )
        ]
        indexes = [models.Index(fields=["team", "created_at", "id"])]

    def __str__(self) -> str:
        return self.name


class MonthlyUsage(models.Model):
    """What a team used in one calendar month (UTC); counters only ever go up."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage")
    month = models.DateField(help_text="First day of the month, UTC.")
    clips_created = models.PositiveIntegerField(default=0)
    render_seconds = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "month"], name="usage_unique_team_month")
        ]
        ordering = ["-month"]
        verbose_name_plural = "monthly usage"

    def __str__(self) -> str:
        return f"{self.team} {self.month:%Y-%m}"


def month_start(now=None):
    now = now or timezone.now()
    return now.date().replace(day=1)
