"""Writes for teams, memberships, API keys, projects and usage.

Services raise the errors of clypai.api.errors (InvalidRequest, NotFound, Conflict,
QuotaExceeded): each carries a stable code, a message and the field at fault, so the
API, the dashboard and the CLI all report the same thing.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from clypai.api.errors import Conflict, InvalidRequest, QuotaExceeded
from clypai.ids import random_base62
from clypai.lib.shared_redis import shared_redis

from .models import ApiKey, Membership, MonthlyUsage, Project, Team, month_start

logger = logging.getLogger(__name__)

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


def _member_email(email: str) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidRequest(f"{email!r} is not an e-mail address", field="email") from exc
    return email


def _member_password_set(user, password: str) -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidRequest(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.save()


@dataclass(frozen=True)
class MemberChange:
    """What member_ensure did: made the user or the team, added the membership, changed
    the role (role_before is the role held before, None when not in the team) or the
    password."""

    user: Any
    team: Team
    membership: Membership
    user_created: bool
    team_created: bool
    role_before: str | None
    password_changed: bool

    @property
    def changed(self) -> bool:
        return (
            self.user_created or self.role_before != self.membership.role or self.password_changed
        )


@transaction.atomic
def member_ensure(
    *, email: str, team_name: str, role: str | None = None, password: str | None = None
) -> MemberChange:
    """Make the dashboard user signing in with `email` a member of the team named
    `team_name` (made now when there is none, with this user as its owner).

    A new user needs `password`; an existing one keeps theirs unless one is given. A
    user not yet in the team joins it with `role` (default: owner of a new team, member
    of an existing one); one already in it gets `role` when given, else keeps theirs.
    Their other teams are left as they are."""
    email = _member_email(email)
    User = get_user_model()
    user = User.objects.filter(username__iexact=email).first()
    user_created = user is None
    if user_created:
        if not password:
            raise InvalidRequest("A new user needs a password", field="password")
        user = User(username=email, email=email)
    if password:
        _member_password_set(user, password)
    team = Team.objects.filter(name__iexact=(team_name or "").strip()).first()
    team_created = team is None
    if team_created:
        team = team_create(name=team_name)
    held = Membership.objects.filter(team=team, user=user).first()
    role_before = held.role if held else None
    if held is None or role:
        new_role = role or (Membership.Role.OWNER if team_created else Membership.Role.MEMBER)
        held = membership_add(team=team, user=user, role=new_role)
    return MemberChange(
        user=user,
        team=team,
        membership=held,
        user_created=user_created,
        team_created=team_created,
        role_before=role_before,
        password_changed=bool(password) and not user_created,
    )


@transaction.atomic
def member_create(*, email: str, password: str, team_name: str, role: str | None = None):
    """A new dashboard user signing in with `email` and `password`, member of the team
    named `team_name` (made now when there is none, with this user as its owner). `role`:
    owner or member; by default owner of a new team, member of an existing one. An
    existing user is a conflict (member_ensure adds one to another team).
    Returns (user, team, team_created)."""
    email = _member_email(email)
    if get_user_model().objects.filter(username__iexact=email).exists():
        raise Conflict(f"A user with the e-mail {email} already exists", field="email")
    if not password:
        raise InvalidRequest("A new user needs a password", field="password")
    change = member_ensure(email=email, team_name=team_name, role=role, password=password)
    return change.user, change.team, change.team_created


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
    api_keys_changed()
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


# API keys seen by this process, with their team and plan: a request with a key seen
# in the last CLYPAI_API_KEY_CACHE_SECONDS asks Redis one GET instead of PostgreSQL one
# three-table query (bench/api_load.py). The cache holds only while the keys'
# generation in Redis is the one it was filled under: revoking a key, or changing a key,
# team or plan anywhere, bumps it once committed (and empties this process's cache at
# once), so every process drops what it holds. Without Redis, or when it does not
# answer, every request asks PostgreSQL.
KEYS_GENERATION = "clypai:api-keys:generation"
_KEYS_MAX = 10_000
_keys: dict[str, tuple[int, float, ApiKey]] = {}  # hashed key -> (generation, until, key)
_keys_lock = threading.Lock()


def _keys_generation() -> int | None:
    client = shared_redis()
    if client is None or settings.CLYPAI_API_KEY_CACHE_SECONDS <= 0:
        return None
    try:
        return int(client.get(KEYS_GENERATION) or 0)
    except Exception:  # Redis down: PostgreSQL answers, as without a cache
        logger.warning("could not read the API keys' generation", exc_info=True)
        return None


def api_keys_changed() -> None:
    """A key, team or plan changed: this process forgets its keys now, every process
    once the change is committed (the generation in Redis moves on)."""
    api_key_cache_clear()

    def bump():
        api_key_cache_clear()  # what a request read before the commit
        client = shared_redis()
        if client is None:
            return
        try:
            client.incr(KEYS_GENERATION)
        except Exception:  # other processes hold theirs up to CLYPAI_API_KEY_CACHE_SECONDS
            logger.warning("could not move the API keys' generation on", exc_info=True)

    transaction.on_commit(bump)


def api_key_cache_clear() -> None:
    with _keys_lock:
        _keys.clear()


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, its last-used time refreshed; None otherwise.
    The caller gets a copy of its own (with its team): changing it changes no cache."""
    if not raw_key.startswith(API_KEY_PREFIX) or len(raw_key) > 200:
        return None
    hashed = hash_api_key(raw_key)
    generation = _keys_generation()
    held = _keys.get(hashed) if generation is not None else None
    if held is not None and held[0] == generation and held[1] > time.monotonic():
        api_key = held[2]
    else:
        api_key = (
            ApiKey.objects.select_related("team", "team__plan")
            .filter(hashed_key=hashed, revoked_at__isnull=True)
            .first()
        )
        if api_key is None:
            return None
        if generation is not None:
            with _keys_lock:
                if len(_keys) >= _KEYS_MAX:
                    _keys.clear()
                until = time.monotonic() + settings.CLYPAI_API_KEY_CACHE_SECONDS
                _keys[hashed] = (generation, until, api_key)
    now = timezone.now()
    touch_after = settings.CLYPAI_API_KEY_TOUCH_SECONDS
    # Write at most once a minute per key, not on every request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= touch_after:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return copy.deepcopy(api_key)


def project_create(*, team: Team, name: str, description: str = "") -> Project:
    return Project.objects.create(team=team, name=name, description=description)


def project_update(*, project: Project, **fields) -> Project:
    for key in ("name", "description"):
        if key in fields and fields[key] is not None:
            setattr(project, key, fields[key])
    project.save()
    return project


def project_delete(*, project: Project) -> None:
    """Delete a project without clips, with its finished jobs (a finished job whose
    clips were moved to other projects goes to the project of its best one instead). A
    project with clips or with jobs in progress, or the team's default, stays (409)."""
    if project.is_default:
        raise Conflict("The team's default project cannot be deleted", code="project_is_default")
    if project.clips.exists():
        raise Conflict(
            "Project still has clips; delete or move them first",
            code="project_not_empty",
            details={"clipCount": project.clips.count()},
        )
    # A job on its way (no clip of it yet) holds the project; a finished one whose clips
    # are all gone is history, deleted with it.
    active = project.jobs.filter(status__in=("queued", "processing"))
    if active.exists():
        raise Conflict(
            "Project has jobs in progress; delete it once they have finished",
            code="project_not_empty",
            details={"clipCount": 0, "jobCount": active.count()},
        )
    with transaction.atomic():
        # A job whose clips were all moved to other projects follows them there: deleting
        # it would delete those clips with it (a job's clips go with the job).
        for job in project.jobs.filter(clips__isnull=False).distinct():
            job.project_id = job.clips.order_by("rank", "created_at").first().project_id
            job.save(update_fields=["project", "updated_at"])
        project.jobs.all().delete()
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


def _usage_row(team: Team, month) -> MonthlyUsage:
    """The team's usage row for `month`, locked until the transaction ends.

    ON CONFLICT DO NOTHING makes the first use of a month safe under concurrency: a
    second inserter waits for the first to commit, then finds its row.
    """
    MonthlyUsage.objects.bulk_create([MonthlyUsage(team=team, month=month)], ignore_conflicts=True)
    return MonthlyUsage.objects.select_for_update().get(team=team, month=month)


def usage_lock(*, team: Team) -> MonthlyUsage:
    """Lock the team's usage row of this month until the transaction ends: what every
    request that counts or queues the team's work holds, so that the checks it makes
    (quotas, work in flight) see every request before it and none after it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("usage_lock must run inside the transaction it guards")
    return _usage_row(team, month_start())


def _reset_at(now: datetime) -> str:
    return next_month_start(now).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quota_exceeded(message: str, *, details: dict, now: datetime) -> QuotaExceeded:
    """429 with `Retry-After`: the seconds until the quota resets (many clients retry a
    429 only when told when)."""
    wait = max(math.ceil((next_month_start(now) - now).total_seconds()), 1)
    return QuotaExceeded(message, details=details, headers={"Retry-After": str(wait)})


def usage_reserve_clips(*, team: Team, count: int = 1) -> MonthlyUsage:
    """Count `count` clip generations against the team's monthly limit, or raise
    QuotaExceeded (429, details used/limit/resetAt as the API document shows).

    Must run inside the transaction that creates the clips, so a refused or rolled-back
    request counts nothing. The row lock makes concurrent requests queue, not overshoot:
    twenty creates at once against a limit of ten admit exactly ten.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("usage_reserve_clips must run inside the creating transaction")
    now = timezone.now()
    usage = _usage_row(team, month_start(now))
    limit = Team.objects.select_related("plan").get(pk=team.pk).limits().clip_generations
    if limit is not None and usage.clips_created + count > limit:
        raise _quota_exceeded(
            "Monthly clip generation quota exceeded",
            details={"used": usage.clips_created, "limit": limit, "resetAt": _reset_at(now)},
            now=now,
        )
    MonthlyUsage.objects.filter(pk=usage.pk).update(clips_created=F("clips_created") + count)
    usage.refresh_from_db()
    return usage


def usage_refund_clips(*, team_id: str, created_at: datetime, count: int = 1) -> None:
    """Give back generations counted in the month of `created_at` (a failed clip or job).

    The caller makes sure it refunds once (a conditional update of its own row)."""
    MonthlyUsage.objects.filter(team_id=team_id, month=month_start(created_at)).update(
        clips_created=Greatest(F("clips_created") - count, 0)
    )


def _render_minutes_exceeded(
    *, used_seconds: float, limit: int, now: datetime, requested_seconds: float | None = None
) -> QuotaExceeded:
    """Render minutes over the limit: used and limit in minutes, as clip generations'."""
    details = {"used": round(used_seconds / 60, 2), "limit": limit}
    if requested_seconds is not None:
        details["requested"] = round(requested_seconds / 60, 2)
    details["resetAt"] = _reset_at(now)
    return _quota_exceeded("Monthly render minutes exceeded", details=details, now=now)


def usage_check_render_minutes(*, team: Team) -> None:
    """Raise QuotaExceeded when the team has no render minutes left this month; for
    requests whose render length is not known yet (a /v1 clip picks its own range)."""
    now = timezone.now()
    limit = Team.objects.select_related("plan").get(pk=team.pk).limits().render_minutes
    if limit is None:
        return
    used = (
        MonthlyUsage.objects.filter(team=team, month=month_start(now))
        .values_list("render_seconds", flat=True)
        .first()
        or 0.0
    )
    if used >= limit * 60 - 1e-6:
        raise _render_minutes_exceeded(used_seconds=used, limit=limit, now=now)


def usage_reserve_render(*, team: Team, seconds: float) -> MonthlyUsage:
    """Count a full render of `seconds` against the team's monthly render minutes, or
    raise QuotaExceeded (429) when it would pass the limit (None: no limit).

    Like usage_reserve_clips: inside the transaction that queues the render, under the
    usage row's lock, so a refused or rolled-back request counts nothing.
    """
    now = timezone.now()
    usage = _usage_row(team, month_start(now))
    limit = Team.objects.select_related("plan").get(pk=team.pk).limits().render_minutes
    seconds = max(float(seconds or 0.0), 0.0)
    if limit is not None and usage.render_seconds + seconds > limit * 60 + 1e-6:
        raise _render_minutes_exceeded(
            used_seconds=usage.render_seconds, limit=limit, now=now, requested_seconds=seconds
        )
    MonthlyUsage.objects.filter(pk=usage.pk).update(render_seconds=F("render_seconds") + seconds)
    usage.refresh_from_db()
    return usage


def usage_charge_render(*, team_id: str, seconds: float, at: datetime | None = None) -> None:
    """Count a render that has been made (a /v1 clip's own full render), without a limit
    check: its request was checked when it was made, and the work is done."""
    seconds = max(float(seconds or 0.0), 0.0)
    month = month_start(at or timezone.now())
    with transaction.atomic():
        MonthlyUsage.objects.bulk_create(
            [MonthlyUsage(team_id=team_id, month=month)], ignore_conflicts=True
        )
        MonthlyUsage.objects.filter(team_id=team_id, month=month).update(
            render_seconds=F("render_seconds") + seconds
        )


def usage_settle_render(
    *, team_id: str, reserved: float, actual: float, reserved_at: datetime | None
) -> None:
    """Settle a render reserved at `reserved` seconds (in the month of `reserved_at`) to
    the `actual` seconds it made: the difference is charged, or given back. No limit
    check: the reservation was checked, and the work is done."""
    delta = max(float(actual or 0.0), 0.0) - max(float(reserved or 0.0), 0.0)
    if delta > 1e-9:
        usage_charge_render(team_id=team_id, seconds=delta, at=reserved_at)
    elif delta < -1e-9:
        usage_refund_render(
            team_id=team_id, seconds=-delta, charged_at=reserved_at or timezone.now()
        )


def usage_refund_render(*, team_id: str, seconds: float, charged_at: datetime) -> None:
    """Give back render seconds counted in the month of `charged_at` (a failed render)."""
    MonthlyUsage.objects.filter(team_id=team_id, month=month_start(charged_at)).update(
        render_seconds=Greatest(F("render_seconds") - max(float(seconds or 0.0), 0.0), 0.0)
    )
