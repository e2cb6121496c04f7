"""Small filters the dashboard's templates share."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def clock(seconds) -> str:
    """Seconds as m:ss.s (1:05.3), or h:mm:ss for an hour or more."""
    if seconds is None or seconds == "":
        return "–"
    seconds = max(float(seconds), 0.0)
    if seconds >= 3600:
        h, rest = divmod(int(seconds), 3600)
        return f"{h}:{rest // 60:02d}:{rest % 60:02d}"
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


@register.filter
def score100(value) -> str:
    """A 0–1 score as a whole number out of 100."""
    if value is None:
        return "–"
    return str(round(float(value) * 100))


@register.filter
def megabytes(size) -> str:
    if not size:
        return "–"
    if size < 1024 * 1024:
        return f"{max(size // 1024, 1)} KB"
    return f"{size / 1024 / 1024:.1f} MB"


@register.filter
def humanize_feature(name: str) -> str:
    """A score feature's name in words: self_contained → Self contained."""
    return str(name).replace("_", " ").capitalize()


@register.inclusion_tag("dashboard/_team_switch.html", takes_context=True)
def team_switch(context):
    """The nav's team picker, for a member of several teams: the team every page and
    query of the dashboard acts for (kept in the session)."""
    from dashboard.forms import TeamSwitchForm
    from dashboard.team import membership_for
    from projects.models import Membership

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"form": None}
    memberships = list(
        Membership.objects.select_related("team").filter(user=request.user).order_by("team__name")
    )
    if len(memberships) < 2:
        return {"form": None}
    current = getattr(request, "membership", None) or membership_for(request)
    form = TeamSwitchForm(
        memberships=memberships,
        initial={"team": current.team_id if current else "", "next": request.path},
        auto_id="team-switch-%s",
    )
    return {"form": form, "csrf_token": context.get("csrf_token")}
