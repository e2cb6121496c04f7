"""Writes for teams, memberships, API keys, projects and usage.

Services raise the errors of clypai.api.errors (InvalidRequest, NotFound, Conflict,
QuotaExceeded): each carries a stable code, a message and the field at fault, so the
API, the dashboard and the CLI all report the same thing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from clypai.api.errors import Conflict, InvalidRequest, QuotaExceeded
from clypai.ids import random_base62

from .models import ApiKey, Membership, MonthlyUsage, Project, Team, month_start

API_KEY_PREFIX = "clyp_"
_KEY_LOOKUP_CHARS = 8
_KEY_SECRET_CHARS = 40  # 62**40 ≈ 2**238 of entropy


def hash_api_key(raw_key: str) -> str:
    # Keys are long and random, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def team_create(*, name: str, owner=None, monthly_clip_quota: int | None = None) -> Team:
    """Create a team with its default project; with `owner`, make that user its owner."""
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("Team name is required", field="name")
    if Team.objects.filter(name__iexact=name).exists():
        raise Conflict(f"A team named {name!r} already exists", field="name")
    team = Team.objects.create(
        name=name,
        monthly_clip_quota=(
            monthly_clip_quota
            if monthly_clip_quota is not None
            else settings.CLYPAI_DEFAULT_MONTHLY_CLIP_QUOTA
        ),
    )
    Project.objects.create(team=team, name="Default project", is_default=True)
    if owner is not None:
        Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def membership_add(*, team: Team, user, role: str = Membership.Role.MEMBER) -> Membership:
    """Add a user to a team (or change their role there)."""
    if role not in Membership.Role.values:
        raise InvalidRequest(
            f"role must be one of {', '.join(Membership.Role.values)}", field="role"
        )
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership


def user_create(*, username: str, password: str, email: str = ""):
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise Conflict(f"A user named {username!r} already exists", field="username")
    return User.objects.create_user(username=username, password=password, email=email)


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    raw_key: str  # shown once; only its hash is stored


def api_key_create(*, team: Team, name: str = "", created_by=None) -> NewApiKey:
    """Create an API key. The full key is returned once and never stored."""
    for _ in range(5):
        lookup = random_base62(_KEY_LOOKUP_CHARS)
        raw_key = f"{API_KEY_PREFIX}{lookup}{random_base62(_KEY_SECRET_CHARS)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    team=team,
                    name=name[:120],
                    prefix=f"{API_KEY_PREFIX}{lookup}",
                    hashed_key=hash_api_key(raw_key),
                    created_by=created_by,
                )
            return NewApiKey(api_key=api_key, raw_key=raw_key)
        except IntegrityError:  # pragma: no cover - a 2**238 collision
            continue
    raise RuntimeError("could not create a unique API key")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; requests with it fail from now on. Revoking twice is harmless."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, its last-used time refreshed; None otherwise."""
    if not raw_key.startswith(API_KEY_PREFIX) or len(raw_key) > 200:
        return None
    api_key = (
        ApiKey.objects.select_related("team")
        .filter(hashed_key=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    touch_after = settings.CLYPAI_API_KEY_TOUCH_SECONDS
    # Write at most once a minute per key, not on every request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= touch_after:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def project_create(*, team: Team, name: str, description: str = "") -> Project:
    return Project.objects.create(team=team, name=name, description=description)


def project_update(*, project: Project, **fields) -> Project:
    for key in ("name", "description"):
        if key in fields and fields[key] is not None:
            setattr(project, key, fields[key])
    project.save()
    return project


def project_delete(*, project: Project) -> None:
    """Delete an empty project. A project with clips, or the team's default, stays."""
    if project.is_default:
        raise Conflict("The team's default project cannot be deleted", code="project_is_default")
    if project.clips.exists():
        raise Conflict(
            "Project still has clips; delete or move them first",
            code="project_not_empty",
            details={"clipCount": project.clips.count()},
        )
    project.delete()


def default_project(*, team: Team) -> Project:
    project = Project.objects.filter(team=team, is_default=True).first()
    if project is None:
        try:
            with transaction.atomic():
                project = Project.objects.create(team=team, name="Default project", is_default=True)
        except IntegrityError:
            project = Project.objects.get(team=team, is_default=True)
    return project


def next_month_start(now: datetime) -> datetime:
    """Midnight UTC on the first day of the month after `now`: when quotas reset."""
    if now.month == 12:
        return datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return datetime(now.year, now.month + 1, 1, tzinfo=UTC)


def usage_reserve_clips(*, team: Team, count: int = 1) -> MonthlyUsage:
    """Count `count` new clips against the team's monthly quota, or raise QuotaExceeded.

    Must run inside the transaction that creates the clips, so a refused or rolled-back
    request counts nothing. The row lock makes concurrent requests queue, not overshoot.
    """
    now = timezone.now()
    month = month_start(now)
    MonthlyUsage.objects.get_or_create(team=team, month=month)
    usage = MonthlyUsage.objects.select_for_update().get(team=team, month=month)
    limit = team.monthly_clip_quota
    if limit is not None and usage.clips_created + count > limit:
        raise QuotaExceeded(
            "Monthly clip generation quota exceeded",
            details={
                "used": usage.clips_created,
                "limit": limit,
                "resetAt": next_month_start(now).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    MonthlyUsage.objects.filter(pk=usage.pk).update(clips_created=F("clips_created") + count)
    usage.refresh_from_db()
    return usage


def usage_reserve_render(*, team: Team, seconds: float) -> MonthlyUsage:
    """Count a full render of `seconds` against the team's monthly render minutes, or
    raise QuotaExceeded (429) when it would pass `Team.monthly_render_minutes` (None:
    no limit).

    Like usage_reserve_clips: inside the transaction that queues the render, under the
    usage row's lock, so a refused or rolled-back request counts nothing.
    """
    now = timezone.now()
    month = month_start(now)
    MonthlyUsage.objects.get_or_create(team=team, month=month)
    usage = MonthlyUsage.objects.select_for_update().get(team=team, month=month)
    limit = team.monthly_render_minutes
    seconds = max(float(seconds or 0.0), 0.0)
    if limit is not None and usage.render_seconds + seconds > limit * 60 + 1e-6:
        raise QuotaExceeded(
            "Monthly render minutes exceeded",
            details={
                "usedMinutes": round(usage.render_seconds / 60, 2),
                "requestedMinutes": round(seconds / 60, 2),
                "limitMinutes": limit,
                "resetAt": next_month_start(now).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    MonthlyUsage.objects.filter(pk=usage.pk).update(render_seconds=F("render_seconds") + seconds)
    usage.refresh_from_db()
    return usage
