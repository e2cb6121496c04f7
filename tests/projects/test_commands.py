"""`manage.py createteam` and `manage.py createapikey`."""

from __future__ import annotations

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from projects.models import ApiKey, Membership, Project, Team
from tests.factories import ClipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def clips_with(raw_key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client.get("/v1/clips")


# --- createteam ---------------------------------------------------------------------


def test_it_creates_a_team_and_prints_its_id(settings):
    settings.CLYPAI_DEFAULT_MONTHLY_CLIP_QUOTA = None
    out, _ = run("createteam", "Initech")
    team_id = out.strip()
    assert re.fullmatch(r"team_[A-Za-z0-9]{16}", team_id)
    assert out == f"{team_id}\n"
    team = Team.objects.get(pk=team_id)
    assert team.name == "Initech"
    assert team.monthly_clip_quota is None
    assert not team.memberships.exists()


def test_it_gives_a_new_team_its_default_project():
    team_id = run("createteam", "Initech")[0].strip()
    [project] = Project.objects.filter(team_id=team_id)
    assert project.is_default is True
    assert project.name == "Default project"


def test_it_applies_the_default_quota_or_the_one_given(settings):
    settings.CLYPAI_DEFAULT_MONTHLY_CLIP_QUOTA = 50
    default_id = run("createteam", "Initech")[0].strip()
    given_id = run("createteam", "Hooli", "--quota", "7")[0].strip()
    assert Team.objects.get(pk=default_id).monthly_clip_quota == 50
    assert Team.objects.get(pk=given_id).monthly_clip_quota == 7


def test_it_makes_the_named_user_the_owner():
    user = UserFactory(username="milton")
    team_id = run("createteam", "Initech", "--owner", "milton")[0].strip()
    membership = Membership.objects.get(team_id=team_id)
    assert membership.user == user
    assert membership.role == Membership.Role.OWNER


def test_it_refuses_an_unknown_owner_and_creates_nothing():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("createteam", "Initech", "--owner", "nobody")
    assert not Team.objects.filter(name="Initech").exists()


@pytest.mark.parametrize("duplicate", ["Initech", "initech", "  Initech  "])
def test_it_refuses_a_duplicate_team_name(duplicate):
    first = run("createteam", "Initech")[0].strip()
    with pytest.raises(CommandError, match="already exists"):
        run("createteam", duplicate)
    assert list(Team.objects.values_list("pk", flat=True)) == [first]
    assert Project.objects.filter(team_id=first).count() == 1


def test_it_refuses_a_blank_team_name():
    with pytest.raises(CommandError, match="Team name is required"):
        run("createteam", "   ")
    assert not Team.objects.exists()


# --- createapikey -------------------------------------------------------------------


def test_it_prints_the_new_key_alone_on_the_last_line():
    team = TeamFactory(name="Initech")
    out, err = run("createapikey", "--team", "Initech")
    last = out.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"clyp_[A-Za-z0-9]{48}", last)
    row = ApiKey.objects.get(team=team)
    assert row.hashed_key == hashlib.sha256(last.encode()).hexdigest()
    assert row.prefix == last[:13]
    # The note about storing it goes to stderr, naming only the prefix.
    assert row.prefix in err and last not in err


def test_it_makes_a_key_that_authenticates():
    team = TeamFactory(name="Initech")
    clip = ClipFactory(team=team)
    ClipFactory(team=TeamFactory(name="Hooli"))
    out, _ = run("createapikey", "--team", "Initech")
    key = out.strip().splitlines()[-1]
    response = clips_with(key)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["data"]] == [clip.pk]


def test_it_makes_a_key_that_createteam_and_the_api_agree_on():
    team_id = run("createteam", "Initech")[0].strip()
    key = run("createapikey", "--team", "Initech")[0].strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {key}")
    response = client.get("/v1/projects")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["data"]] == [
        Project.objects.get(team_id=team_id, is_default=True).pk
    ]


def test_it_finds_the_team_by_id_and_labels_the_key():
    team = TeamFactory(name="Initech")
    out, _ = run("createapikey", "--team", team.pk, "--name", "ci")
    key = out.strip().splitlines()[-1]
    row = ApiKey.objects.get(team=team)
    assert row.name == "ci"
    assert clips_with(key).status_code == 200


def test_it_makes_a_different_key_each_time():
    TeamFactory(name="Initech")
    first = run("createapikey", "--team", "Initech")[0].strip()
    second = run("createapikey", "--team", "Initech")[0].strip()
    assert first != second
    assert clips_with(first).status_code == 200 and clips_with(second).status_code == 200


def test_it_refuses_an_unknown_team_and_creates_no_key():
    TeamFactory(name="Initech")
    with pytest.raises(CommandError, match="no team named 'Nope'"):
        run("createapikey", "--team", "Nope")
    assert not ApiKey.objects.exists()


def test_it_requires_the_team_option():
    with pytest.raises(CommandError, match="--team"):
        run("createapikey")
