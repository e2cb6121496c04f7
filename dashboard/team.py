"""The team a signed-in member acts for: the one chosen in the session (as the /v1/ API's
session authentication reads it), else their first."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from clypai.api.authentication import SESSION_TEAM_KEY
from projects.models import Membership


def membership_for(request) -> Membership | None:
    memberships = Membership.objects.select_related("team", "team__plan").filter(user=request.user)
    chosen = request.session.get(SESSION_TEAM_KEY)
    return (memberships.filter(team_id=chosen).first() if chosen else None) or memberships.first()


def team_view(view):
    """A dashboard page: signed in (else to the login page), a member of a team (else
    403), with `request.team` and `request.membership` set."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        membership = membership_for(request)
        if membership is None:
            raise PermissionDenied("You are not a member of any team")
        request.membership = membership
        request.team = membership.team
        return view(request, *args, **kwargs)

    return wrapped
