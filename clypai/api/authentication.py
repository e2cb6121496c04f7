"""Who is calling, and for which team.

Three ways in, all ending in a `Principal` on `request.auth`:
- `Authorization: Bearer clyp_…` or `Authorization: Key clyp_…`: an API key of a team;
- `Authorization: Bearer <JWT>` from POST /v1/auth/token: a user acting for one team;
- the dashboard's session: a logged-in user and the team chosen in the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from clypai.observability import bind
from projects.models import ApiKey, Membership, Team
from projects.services import API_KEY_PREFIX, api_key_authenticate

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "clypai-api"
SESSION_TEAM_KEY = "clypai_team_id"


@dataclass(frozen=True)
class Principal:
    team: Team
    user: object | None = None
    api_key: ApiKey | None = None
    via: str = "api_key"


def _credential(request, schemes: tuple[str, ...]) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1").strip()
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in schemes:
        return None
    value = value.strip()
    if not value or " " in value:
        raise exceptions.AuthenticationFailed("Malformed Authorization header")
    return value


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Bearer clyp_…` or `Key clyp_…`."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        scheme = header.partition(" ")[0].lower()
        value = _credential(request, ("bearer", "key"))
        if value is None:
            return None
        if scheme == "bearer" and not value.startswith(API_KEY_PREFIX):
            return None  # a JWT: the next authenticator's
        api_key = api_key_authenticate(raw_key=value)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key")
        return (None, Principal(team=api_key.team, api_key=api_key, via="api_key"))

    def authenticate_header(self, request):
        return 'Bearer realm="clypai"'


def jwt_issue(*, user, team: Team) -> tuple[str, timezone.datetime]:
    """A signed access token for `user` acting for `team`, and when it expires."""
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.CLYPAI_JWT_TTL_SECONDS)
    payload = {
        "sub": str(user.pk),
        "team": team.pk,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "aud": JWT_AUDIENCE,
        "typ": "access",
    }
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=JWT_ALGORITHM), expires_at


class JWTAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if header.partition(" ")[0].lower() != "bearer":
            return None
        token = _credential(request, ("bearer",))
        if token is None or token.startswith(API_KEY_PREFIX):
            return None
        try:
            payload = jwt.decode(
                token,
                settings.SECRET_KEY,
                algorithms=[JWT_ALGORITHM],
                audience=JWT_AUDIENCE,
                options={"require": ["exp", "sub", "team", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise exceptions.AuthenticationFailed("Token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise exceptions.AuthenticationFailed("Invalid token") from exc
        try:
            membership = (
                Membership.objects.select_related("team", "user")
                .filter(user_id=payload["sub"], team_id=payload["team"], user__is_active=True)
                .first()
            )
        except (TypeError, ValueError) as exc:  # signed, but claims of the wrong type: not a 500
            raise exceptions.AuthenticationFailed("Invalid token") from exc
        if membership is None:
            raise exceptions.AuthenticationFailed("Token's user is no longer a team member")
        return (membership.user, Principal(team=membership.team, user=membership.user, via="jwt"))

    def authenticate_header(self, request):
        return 'Bearer realm="clypai"'


class TeamSessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's session, with the team chosen in it (or the user's first)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        memberships = Membership.objects.select_related("team").filter(user=user)
        chosen = request._request.session.get(SESSION_TEAM_KEY)
        membership = (memberships.filter(team_id=chosen).first() if chosen else None) or (
            memberships.first()
        )
        if membership is None:
            return None
        return (user, Principal(team=membership.team, user=user, via="session"))


class IsTeamMember(permissions.BasePermission):
    """Every /v1/ endpoint acts for exactly one team."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, Principal):
            return False
        bind(team=request.auth.team.pk)  # the request's log lines, and the work it queues
        return True


def user_for_credentials(*, username: str, password: str):
    """The active user with these credentials, or None (constant work either way)."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        User().set_password(password)  # same cost as a real check: no timing oracle
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user
