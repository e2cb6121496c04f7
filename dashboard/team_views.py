"""The dashboard's team pages: API keys, brand kits, webhooks and usage. As in
`dashboard.views`, a view parses, calls a service or selector, and renders."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve
from django.utils import dateformat, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from brandkits import services as kit_services
from brandkits.models import BrandKit
from clypai.api.authentication import SESSION_TEAM_KEY
from clypai.api.errors import ApiError
from projects import services as project_services
from projects.models import ApiKey, Membership
from projects.selectors import usage_get
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .forms import (
    ApiKeyForm,
    BrandKitForm,
    TeamSwitchForm,
    WebhookEditForm,
    WebhookForm,
    add_service_error,
)
from .selectors import Bar
from .team import team_view

# The current team ----------------------------------------------------------------------

# Pages that list a team's things: after a switch the member stays on the same one (a
# page of one object, of the team left, would be a 404).
_SECTION_PAGES = {
    "projects",
    "clips_new",
    "brand_kits",
    "api_keys",
    "webhooks",
    "usage",
    "password_change",
}


def _section_after_switch(path: str, request) -> str:
    if not path or not url_has_allowed_host_and_scheme(
        path, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return "dashboard:projects"
    try:
        name = resolve(path.split("?")[0]).url_name
    except Resolver404:
        return "dashboard:projects"
    return f"dashboard:{name}" if name in _SECTION_PAGES else "dashboard:projects"


@require_POST
@team_view
def team_switch(request):
    """Make another of the member's teams the current one: every page, and the /v1/ API
    in this session, act for it from now on."""
    memberships = Membership.objects.select_related("team").filter(user=request.user)
    form = TeamSwitchForm(request.POST, memberships=memberships)
    if not form.is_valid():
        messages.error(request, "Choose one of your teams.")
        return redirect("dashboard:projects")
    chosen = memberships.get(team_id=form.cleaned_data["team"])
    request.session[SESSION_TEAM_KEY] = chosen.team_id
    messages.success(request, f"You are working in {chosen.team.name}.")
    return redirect(_section_after_switch(form.cleaned_data["next"], request))


# API keys ----------------------------------------------------------------------------


# A secret made by a form is shown once: kept in the session for the page the form
# redirects to, which takes it out.
_SHOW_ONCE = "dashboard_show_once"


def _show_once(request, kind: str, **values) -> None:
    request.session[_SHOW_ONCE] = {"kind": kind, **values}


def _shown_once(request, kind: str) -> dict | None:
    found = request.session.get(_SHOW_ONCE)
    if not found or found.get("kind") != kind:
        return None
    del request.session[_SHOW_ONCE]
    return found


def _no_store(response):
    response["Cache-Control"] = "no-store"  # the page may hold a whole secret
    return response


@team_view
def api_keys(request):
    """The team's keys by prefix; a new key is shown whole once, on the page its form
    leads to, and never again."""
    status = 200
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            created = project_services.api_key_create(
                team=request.team, name=form.cleaned_data["name"], created_by=request.user
            )
            _show_once(request, "api_key", name=created.api_key.name, key=created.raw_key)
            return redirect("dashboard:api_keys")
        status = 400
    else:
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(team=request.team).order_by("revoked_at", "-created_at")
    return _no_store(
        render(
            request,
            "dashboard/api_keys.html",
            {"form": form, "keys": keys, "created": _shown_once(request, "api_key")},
            status=status,
        )
    )


@require_POST
@team_view
def api_key_revoke(request, key_id: str):
    api_key = get_object_or_404(ApiKey, pk=key_id, team=request.team)
    project_services.api_key_revoke(api_key=api_key)
    messages.success(request, f"Revoked the key {api_key.prefix}…")
    return redirect("dashboard:api_keys")


# Brand kits ----------------------------------------------------------------------------


@require_safe
@team_view
def brand_kits(request):
    kits = BrandKit.objects.filter(team=request.team).order_by("-is_default", "name")
    return render(request, "dashboard/brand_kits.html", {"kits": kits})


def _kit_save(request, kit: BrandKit | None):
    if request.method == "POST":
        form = BrandKitForm(request.POST, request.FILES, kit=kit)
        if form.is_valid():
            try:
                with transaction.atomic():
                    if kit is None:
                        kit = kit_services.brand_kit_create(
                            team=request.team, data=form.service_data()
                        )
                    else:
                        kit_services.brand_kit_update(brand_kit=kit, data=form.service_data())
                    if form.cleaned_data["logo"]:
                        kit_services.brand_kit_set_logo(
                            brand_kit=kit, file=form.cleaned_data["logo"]
                        )
                    if form.cleaned_data["is_default"] != kit.is_default:
                        kit_services.brand_kit_set_default(
                            brand_kit=kit, default=form.cleaned_data["is_default"]
                        )
            except ApiError as exc:
                add_service_error(
                    form,
                    exc,
                    {"file": "logo", "name": "name", "captionStyle.fontFamily": "font_family"},
                )
            else:
                messages.success(request, f"Saved the brand kit {kit.name}.")
                return redirect("dashboard:brand_kit", kit_id=kit.pk)
        status = 400
    else:
        form = BrandKitForm(initial=BrandKitForm.initial_for(kit) if kit else None, kit=kit)
        status = 200
    return render(request, "dashboard/brand_kit.html", {"form": form, "kit": kit}, status=status)


@team_view
def brand_kit_new(request):
    return _kit_save(request, None)


@team_view
def brand_kit_detail(request, kit_id: str):
    return _kit_save(request, get_object_or_404(BrandKit, pk=kit_id, team=request.team))


@require_POST
@team_view
def brand_kit_default(request, kit_id: str):
    kit = get_object_or_404(BrandKit, pk=kit_id, team=request.team)
    kit_services.brand_kit_set_default(brand_kit=kit)
    messages.success(request, f"{kit.name} is now the default brand kit.")
    return redirect("dashboard:brand_kits")


# Webhooks ------------------------------------------------------------------------------


@team_view
def webhooks(request):
    """The team's endpoints; a new one's secret is shown once, on the page its form
    leads to."""
    status = 200
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            try:
                created = webhook_services.endpoint_create(
                    team=request.team,
                    url=form.cleaned_data["url"],
                    events=form.cleaned_data["events"],
                    description=form.cleaned_data["description"],
                    format=form.cleaned_data["format"],
                )
            except ApiError as exc:
                add_service_error(form, exc, {"url": "url", "events": "events", "format": "format"})
            else:
                _show_once(request, "webhook", url=created.url, secret=created.secret)
                return redirect("dashboard:webhooks")
        status = 400
    else:
        form = WebhookForm()
    endpoints = WebhookEndpoint.objects.filter(team=request.team).order_by("-created_at")
    return _no_store(
        render(
            request,
            "dashboard/webhooks.html",
            {"form": form, "endpoints": endpoints, "created": _shown_once(request, "webhook")},
            status=status,
        )
    )


def _endpoint(request, endpoint_id: str) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=endpoint_id, team=request.team)


@team_view
def webhook_detail(request, endpoint_id: str):
    """An endpoint: its delivery log, and a form that changes its URL, events, format
    and whether it is enabled."""
    endpoint = _endpoint(request, endpoint_id)
    status = 200
    if request.method == "POST":
        form = WebhookEditForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            changes = {
                "url": data["url"],
                "events": data["events"],
                "format": data["format"],
                "description": data["description"],
            }
            if data["enabled"] != endpoint.enabled:
                changes["enabled"] = data["enabled"]
            try:
                webhook_services.endpoint_update(endpoint=endpoint, **changes)
            except ApiError as exc:
                add_service_error(form, exc, {"url": "url", "events": "events", "format": "format"})
            else:
                messages.success(request, "Saved the endpoint.")
                return redirect("dashboard:webhook", endpoint_id=endpoint.pk)
        status = 400
        endpoint.refresh_from_db()
    else:
        form = WebhookEditForm(initial=WebhookEditForm.initial_for(endpoint))
    deliveries = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .order_by("-created_at")[:50]
    )
    return _no_store(
        render(
            request,
            "dashboard/webhook.html",
            {
                "endpoint": endpoint,
                "deliveries": deliveries,
                "form": form,
                "rotated": _shown_once(request, "webhook_rotated"),
            },
            status=status,
        )
    )


@require_POST
@team_view
def webhook_rotate(request, endpoint_id: str):
    """A new signing secret, shown once; the old one signs beside it for a while."""
    endpoint = webhook_services.endpoint_rotate_secret(endpoint=_endpoint(request, endpoint_id))
    _show_once(
        request,
        "webhook_rotated",
        secret=endpoint.secret,
        previous_until=dateformat.format(
            timezone.localtime(endpoint.previous_secret_expires_at), "M j, Y, H:i T"
        ),
    )
    return redirect("dashboard:webhook", endpoint_id=endpoint.pk)


@require_POST
@team_view
def webhook_delete(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    webhook_services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Deleted the endpoint {endpoint.url}.")
    return redirect("dashboard:webhooks")


@require_POST
@team_view
def webhook_redeliver(request, endpoint_id: str, delivery_id: str):
    delivery = get_object_or_404(
        WebhookDelivery.objects.select_related("endpoint"),
        pk=delivery_id,
        endpoint_id=endpoint_id,
        endpoint__team=request.team,
    )
    try:
        webhook_services.delivery_redeliver(delivery=delivery)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Sending {delivery.event.type} again.")
    return redirect("dashboard:webhook", endpoint_id=endpoint_id)


@require_POST
@team_view
def webhook_test(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    try:
        webhook_services.endpoint_test(endpoint=endpoint)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "A test event is on its way.")
    return redirect("dashboard:webhook", endpoint_id=endpoint_id)


# Usage ---------------------------------------------------------------------------------


@require_safe
@team_view
def usage(request):
    report = usage_get(team=request.team)
    bars = [
        Bar(
            "Clips this month",
            report.clip_generations.used,
            report.clip_generations.limit,
            "clips",
        ),
        Bar(
            "Render minutes this month",
            report.render_minutes.used,
            report.render_minutes.limit,
            "minutes",
        ),
    ]
    return render(request, "dashboard/usage.html", {"report": report, "bars": bars})
