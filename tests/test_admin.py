"""The Django admin for projects, brand kits and clips: every page opens, search works."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from brandkits.models import BrandKit
from clips.models import Analysis, Clip, Export, Job, Source, Upload
from projects.models import ApiKey, Membership, MonthlyUsage, Plan, Project, Team
from projects.services import api_key_create
from tests.factories import (
    BrandKitFactory,
    ClipFactory,
    MembershipFactory,
    ProjectFactory,
    TeamFactory,
    UploadFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ADMIN_APPS = {"projects", "brandkits", "clips"}


def _source(tag: str) -> Source:
    return Source.objects.create(
        sha256=tag.ljust(64, "0"), file=f"sources/{tag}.mp4", size_bytes=1024, duration=12.5
    )


def _pair_team():
    return TeamFactory(name="Zephyr Works"), TeamFactory(name="Quokka Labs")


# For each model: build two rows and give a search term that finds the first only.
def _teams():
    wanted, other = _pair_team()
    return wanted, other, "Zephyr"


def _memberships():
    wanted = MembershipFactory(user=UserFactory(username="zephyrine"), team=TeamFactory())
    other = MembershipFactory(user=UserFactory(username="quentin"), team=TeamFactory())
    return wanted, other, "zephyrine"


def _api_keys():
    wanted_team, other_team = _pair_team()
    wanted = api_key_create(team=wanted_team, name="zephyr deploy").api_key
    other = api_key_create(team=other_team, name="quokka deploy").api_key
    return wanted, other, wanted.prefix


def _projects():
    team = TeamFactory()
    return ProjectFactory(team=team, name="Zephyr launch"), ProjectFactory(team=team), "Zephyr"


def _monthly_usage():
    wanted_team, other_team = _pair_team()
    wanted = MonthlyUsage.objects.create(team=wanted_team, month=date(2025, 1, 1), clips_created=3)
    other = MonthlyUsage.objects.create(team=other_team, month=date(2025, 1, 1), clips_created=4)
    return wanted, other, "Zephyr"


def _plans():
    wanted = Plan.objects.create(id="zephyr-pro", name="Zephyr Pro", monthly_clip_generations=500)
    other = Plan.objects.create(id="starter", name="Starter", monthly_clip_generations=10)
    return wanted, other, "Zephyr"


def _brand_kits():
    team = TeamFactory()
    return BrandKitFactory(team=team, name="Zephyr brand"), BrandKitFactory(team=team), "Zephyr"


def _sources():
    wanted = _source("abcdef")
    return wanted, _source("123456"), wanted.pk


def _uploads():
    team = TeamFactory()
    wanted = UploadFactory(team=team, filename="zephyr-keynote.mp4")
    return wanted, UploadFactory(team=team, filename="other.mp4"), "zephyr-keynote"


def _clips():
    team = TeamFactory()
    wanted = ClipFactory(
        team=team,
        name="Zephyr highlight",
        source=_source("fedcba"),
        upload=UploadFactory(team=team),
        brand_kit=BrandKitFactory(team=team),
    )
    Export.objects.create(clip=wanted, format="mp4", quality="high", platform="tiktok")
    return wanted, ClipFactory(team=team, name="Other"), "Zephyr"


def _exports():
    team = TeamFactory()
    wanted = Export.objects.create(clip=ClipFactory(team=team), format="mp4", quality="high")
    other = Export.objects.create(clip=ClipFactory(team=team), format="webm", quality="low")
    return wanted, other, wanted.clip_id


def _jobs():
    wanted_team, other_team = _pair_team()
    wanted = Job.objects.create(team=wanted_team, project=ProjectFactory(team=wanted_team))
    ClipFactory(team=wanted_team, job=wanted, rank=1, name="Zephyr first")
    other = Job.objects.create(team=other_team, project=ProjectFactory(team=other_team))
    return wanted, other, "Zephyr"


def _analyses():
    source = _source("a1b2c3")
    wanted = Analysis.objects.create(
        source=source,
        kind=Analysis.Kind.TRANSCRIPT,
        key="faster-whisper:zephyr:en",
        result={"language": "en", "text": "Hello", "segments": []},
    )
    other = Analysis.objects.create(
        source=source, kind=Analysis.Kind.SCENES, key="content:v1", result=[{"start": 0}]
    )
    return wanted, other, "zephyr"


BUILDERS: dict[type, Callable[[], tuple[object, object, str]]] = {
    Team: _teams,
    Membership: _memberships,
    ApiKey: _api_keys,
    Project: _projects,
    MonthlyUsage: _monthly_usage,
    Plan: _plans,
    BrandKit: _brand_kits,
    Source: _sources,
    Upload: _uploads,
    Clip: _clips,
    Export: _exports,
    Job: _jobs,
    Analysis: _analyses,
}


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_it_covers_every_registered_model_of_our_apps():
    registered = {model for model in admin.site._registry if model._meta.app_label in ADMIN_APPS}
    assert registered == set(BUILDERS)


def test_it_passes_djangos_admin_checks():
    call_command("check", "--tag", "admin", "--fail-level", "WARNING")


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m._meta.label)
def test_it_opens_the_changelist(admin_client, model):
    wanted, other, _ = BUILDERS[model]()
    response = admin_client.get(_url(model, "changelist"))
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    assert {wanted.pk, other.pk} <= shown


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m._meta.label)
def test_it_searches_the_changelist(admin_client, model):
    wanted, other, term = BUILDERS[model]()
    response = admin_client.get(_url(model, "changelist"), {"q": term})
    assert response.status_code == 200
    shown = [obj.pk for obj in response.context["cl"].result_list]
    assert shown == [wanted.pk]
    assert other.pk not in shown


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m._meta.label)
def test_it_searches_with_a_term_that_finds_nothing(admin_client, model):
    BUILDERS[model]()
    response = admin_client.get(_url(model, "changelist"), {"q": "no-such-thing-xyzzy"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m._meta.label)
def test_it_opens_the_change_page(admin_client, model):
    wanted, _, _ = BUILDERS[model]()
    response = admin_client.get(_url(model, "change", wanted.pk))
    assert response.status_code == 200
    assert response.context["original"].pk == wanted.pk
    assert str(wanted) in response.content.decode()


@pytest.mark.parametrize(
    "model",
    [m for m in BUILDERS if m not in (ApiKey, Analysis)],
    ids=lambda m: m._meta.label,
)
def test_it_opens_the_add_page(admin_client, model):
    response = admin_client.get(_url(model, "add"))
    assert response.status_code == 200
    assert response.context["add"] is True


def test_it_does_not_allow_adding_an_api_key(admin_client):
    response = admin_client.get(_url(ApiKey, "add"))
    assert response.status_code == 403
    response = admin_client.post(_url(ApiKey, "add"), {"team": TeamFactory().pk, "name": "x"})
    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_it_keeps_key_material_read_only_on_the_change_page(admin_client):
    api_key = api_key_create(team=TeamFactory(), name="ci").api_key
    hashed = api_key.hashed_key
    response = admin_client.post(
        _url(ApiKey, "change", api_key.pk),
        {
            "team": api_key.team_id,
            "name": "renamed",
            "hashed_key": "0" * 64,
            "prefix": "clyp_hijacked",
            "revoked_at": "",
        },
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.name == "renamed"
    assert api_key.hashed_key == hashed
    assert api_key.prefix != "clyp_hijacked"


def test_it_saves_a_team_from_its_change_page(admin_client):
    team = TeamFactory(name="Zephyr Works")
    member = MembershipFactory(team=team, role="member")
    prefix = "memberships"
    response = admin_client.post(
        _url(Team, "change", team.pk),
        {
            "name": "Zephyr Works Ltd",
            "monthly_clip_quota": "25",
            "monthly_render_minutes": "",
            "preferred_language": "en",
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "1",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
            f"{prefix}-0-id": member.pk,
            f"{prefix}-0-team": team.pk,
            f"{prefix}-0-user": member.user_id,
            f"{prefix}-0-role": "owner",
        },
    )
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    team.refresh_from_db()
    member.refresh_from_db()
    assert (team.name, team.monthly_clip_quota, team.preferred_language) == (
        "Zephyr Works Ltd",
        25,
        "en",
    )
    assert member.role == "owner"


def test_it_revokes_the_selected_api_keys(admin_client):
    team = TeamFactory()
    first = api_key_create(team=team, name="first").api_key
    second = api_key_create(team=team, name="second").api_key
    kept = api_key_create(team=team, name="kept").api_key
    earlier = timezone.now() - timedelta(days=3)
    already = api_key_create(team=team, name="already").api_key
    ApiKey.objects.filter(pk=already.pk).update(revoked_at=earlier)

    response = admin_client.post(
        _url(ApiKey, "changelist"),
        {"action": "revoke_keys", "_selected_action": [first.pk, second.pk, already.pk]},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert "Revoked 2 API key(s)." in messages

    for api_key in (first, second):
        api_key.refresh_from_db()
        assert api_key.revoked_at is not None
    kept.refresh_from_db()
    already.refresh_from_db()
    assert kept.revoked_at is None
    assert already.revoked_at == earlier


def test_it_makes_revoked_keys_stop_working(admin_client):
    created = api_key_create(team=TeamFactory(), name="ci")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {created.raw_key}")
    assert api.get("/v1/clips").status_code == 200
    admin_client.post(
        _url(ApiKey, "changelist"),
        {"action": "revoke_keys", "_selected_action": [created.api_key.pk]},
    )
    assert api.get("/v1/clips").status_code == 401


@pytest.mark.parametrize(("active", "expected"), [("yes", ["live"]), ("no", ["dead"])])
def test_it_filters_api_keys_by_whether_they_are_active(admin_client, active, expected):
    team = TeamFactory()
    api_key_create(team=team, name="live")
    dead = api_key_create(team=team, name="dead").api_key
    ApiKey.objects.filter(pk=dead.pk).update(revoked_at=timezone.now())
    response = admin_client.get(_url(ApiKey, "changelist"), {"active": active})
    assert [k.name for k in response.context["cl"].result_list] == expected


def test_it_sends_a_non_staff_user_to_the_login_page(client):
    client.force_login(UserFactory())
    response = client.get(_url(Team, "changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
