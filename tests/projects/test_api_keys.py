"""GET/POST /v1/api-keys and DELETE /v1/api-keys/{id}: owners manage their team's keys."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from projects.models import ApiKey, Membership
from projects.services import api_key_create
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # UserFactory's
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
KEY_FIELDS = {"id", "name", "prefix", "active", "createdAt", "lastUsedAt", "revokedAt"}


def jwt_client(user) -> APIClient:
    response = APIClient().post(
        "/v1/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['data']['token']}")
    return client


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def error_of(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is False
    return body["error"]


@pytest.fixture
def owner_api(owner) -> APIClient:
    return jwt_client(owner)


@pytest.fixture
def member(team):
    return MembershipFactory(team=team, role="member").user


# --- listing ------------------------------------------------------------------------


def test_it_lists_the_teams_keys_by_prefix_only(caller, owner_api, team, other_caller):
    second = api_key_create(team=team, name="deploy")
    response = owner_api.get("/v1/api-keys")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    rows = body["data"]
    # Newest first; the Globex key is not there.
    assert [row["id"] for row in rows] == [
        second.api_key.pk,
        ApiKey.objects.get(team=team, name="tests").pk,
    ]
    for row in rows:
        assert set(row) == KEY_FIELDS
        assert re.fullmatch(r"clyp_[A-Za-z0-9]{8}", row["prefix"])
        assert row["active"] is True and row["revokedAt"] is None
        assert ISO_Z.match(row["createdAt"])
    assert rows[0]["name"] == "deploy"
    assert rows[0]["prefix"] == second.raw_key[:13]

    text = response.content.decode()
    for raw in (caller.key, second.raw_key, other_caller.key):
        assert raw not in text
        assert hashlib.sha256(raw.encode()).hexdigest() not in text
        assert raw[13:] not in text
    assert other_caller.key[:13] not in text


def test_it_lets_any_team_caller_list_keys(caller, member):
    # Listing shows nothing secret, so an API key or a plain member may do it.
    for client in (caller.client, jwt_client(member)):
        response = client.get("/v1/api-keys")
        assert response.status_code == 200
        assert [row["prefix"] for row in response.json()["data"]] == [caller.key[:13]]


def test_it_shows_when_a_key_was_last_used(caller):
    response = caller.client.get("/v1/api-keys")
    [row] = response.json()["data"]
    # The listing request itself used the key.
    assert ISO_Z.match(row["lastUsedAt"])


def test_it_refuses_to_list_keys_to_an_anonymous_caller(anon, caller):
    error = error_of(anon.get("/v1/api-keys"), 401)
    assert error["code"] == "unauthorized"


# --- creating -----------------------------------------------------------------------


def test_it_creates_a_key_for_an_owner_with_a_jwt_and_shows_it_once(owner_api, owner, team):
    response = owner_api.post("/v1/api-keys", {"name": "CI"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == KEY_FIELDS | {"key"}
    raw = data["key"]
    assert re.fullmatch(r"clyp_[A-Za-z0-9]{48}", raw)
    assert data["prefix"] == raw[:13]
    assert data["name"] == "CI"
    assert data["active"] is True and data["revokedAt"] is None and data["lastUsedAt"] is None

    row = ApiKey.objects.get(pk=data["id"])
    assert row.team == team
    assert row.created_by == owner
    assert row.hashed_key == hashlib.sha256(raw.encode()).hexdigest()

    # Shown once: the listing afterwards has the prefix, never the key.
    listing = owner_api.get("/v1/api-keys")
    assert data["id"] in [r["id"] for r in listing.json()["data"]]
    assert raw not in listing.content.decode()


def test_it_creates_a_key_that_works(owner_api, team):
    raw = owner_api.post("/v1/api-keys", {}, format="json").json()["data"]["key"]
    for scheme in ("Bearer", "Key"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw}")
        response = client.get("/v1/projects")
        assert response.status_code == 200
        assert [p["id"] for p in response.json()["data"]] == [team.projects.get(is_default=True).pk]


def test_it_creates_a_key_with_an_empty_name_by_default(owner_api):
    response = owner_api.post("/v1/api-keys", {}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["name"] == ""


def test_it_creates_a_key_for_an_owner_with_a_session(owner, team):
    client = APIClient()
    client.force_login(owner)
    response = client.post("/v1/api-keys", {"name": "from the dashboard"}, format="json")
    assert response.status_code == 201, response.content
    raw = response.json()["data"]["key"]
    assert ApiKey.objects.get(hashed_key=hashlib.sha256(raw.encode()).hexdigest()).team == team
    assert key_client(raw).get("/v1/clips").status_code == 200


def test_it_needs_the_csrf_token_for_a_session_post(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    error = error_of(client.post("/v1/api-keys", {"name": "x"}, format="json"), 403)
    assert error["code"] == "forbidden"
    assert ApiKey.objects.count() == 0


def test_it_refuses_to_create_a_key_for_an_api_key_caller(caller):
    error = error_of(caller.client.post("/v1/api-keys", {"name": "more"}, format="json"), 403)
    assert error["code"] == "forbidden"
    assert ApiKey.objects.filter(team=caller.team).count() == 1


def test_it_refuses_to_create_a_key_for_a_plain_member(member, team):
    error = error_of(jwt_client(member).post("/v1/api-keys", {"name": "mine"}, format="json"), 403)
    assert error["code"] == "forbidden"
    assert error["message"] == "Only the team's owners manage API keys"
    assert not ApiKey.objects.filter(team=team).exists()


def test_it_refuses_a_session_member_who_is_not_an_owner(member):
    client = APIClient()
    client.force_login(member)
    error = error_of(client.post("/v1/api-keys", {}, format="json"), 403)
    assert error["code"] == "forbidden"
    assert ApiKey.objects.count() == 0


def test_it_does_not_let_an_owner_of_another_team_act_here(owner, team):
    # Owner of Globex, plain member of Acme: a token for Acme cannot make keys.
    globex = TeamFactory(name="Globex")
    MembershipFactory(team=globex, user=owner, role="owner")
    Membership.objects.filter(team=team, user=owner).update(role="member")
    response = APIClient().post(
        "/v1/auth/token",
        {"username": owner.username, "password": PASSWORD, "teamId": team.pk},
        format="json",
    )
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['data']['token']}")
    error = error_of(client.post("/v1/api-keys", {}, format="json"), 403)
    assert error["code"] == "forbidden"
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 121}, "name"),
        ({"name": 12, "scopes": ["all"]}, "scopes"),
        ({"label": "CI"}, "label"),
    ],
)
def test_it_names_the_field_of_a_bad_create_request(owner_api, body, field):
    error = error_of(owner_api.post("/v1/api-keys", body, format="json"), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert ApiKey.objects.count() == 0


# --- revoking -----------------------------------------------------------------------


def test_it_revokes_a_key(owner_api, caller):
    key_id = ApiKey.objects.get(team=caller.team).pk
    assert caller.client.get("/v1/clips").status_code == 200
    before = timezone.now().replace(microsecond=0)

    response = owner_api.delete(f"/v1/api-keys/{key_id}")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["id"] == key_id
    assert data["active"] is False
    assert ISO_Z.match(data["revokedAt"])
    assert "key" not in data

    row = ApiKey.objects.get(pk=key_id)
    assert row.revoked_at is not None and row.revoked_at >= before
    error = error_of(caller.client.get("/v1/clips"), 401)
    assert error["code"] == "unauthorized"

    listed = {r["id"]: r for r in owner_api.get("/v1/api-keys").json()["data"]}
    assert listed[key_id]["active"] is False
    assert listed[key_id]["revokedAt"] == data["revokedAt"]


def test_it_keeps_the_first_revocation_time_when_revoking_twice(owner_api, caller):
    key_id = ApiKey.objects.get(team=caller.team).pk
    first = owner_api.delete(f"/v1/api-keys/{key_id}").json()["data"]["revokedAt"]
    stored = ApiKey.objects.get(pk=key_id).revoked_at
    again = owner_api.delete(f"/v1/api-keys/{key_id}")
    assert again.status_code == 200
    assert again.json()["data"]["revokedAt"] == first
    assert ApiKey.objects.get(pk=key_id).revoked_at == stored


def test_it_revokes_only_the_named_key(owner_api, caller, team):
    other = api_key_create(team=team, name="keep")
    owner_api.delete(f"/v1/api-keys/{ApiKey.objects.get(team=team, name='tests').pk}")
    assert key_client(other.raw_key).get("/v1/clips").status_code == 200
    assert ApiKey.objects.get(pk=other.api_key.pk).revoked_at is None


def test_it_answers_not_found_for_another_teams_key(owner_api, other_caller):
    other_id = ApiKey.objects.get(team=other_caller.team).pk
    error = error_of(owner_api.delete(f"/v1/api-keys/{other_id}"), 404)
    assert error["code"] == "not_found"
    assert ApiKey.objects.get(pk=other_id).revoked_at is None
    assert other_caller.client.get("/v1/clips").status_code == 200


def test_it_answers_not_found_for_an_unknown_key(owner_api):
    error = error_of(owner_api.delete("/v1/api-keys/key_doesnotexist0000"), 404)
    assert error["code"] == "not_found"


def test_it_refuses_to_revoke_for_an_api_key_caller(caller):
    key_id = ApiKey.objects.get(team=caller.team).pk
    error = error_of(caller.client.delete(f"/v1/api-keys/{key_id}"), 403)
    assert error["code"] == "forbidden"
    assert ApiKey.objects.get(pk=key_id).revoked_at is None


def test_it_refuses_to_revoke_for_a_plain_member(member, caller):
    key_id = ApiKey.objects.get(team=caller.team).pk
    error = error_of(jwt_client(member).delete(f"/v1/api-keys/{key_id}"), 403)
    assert error["code"] == "forbidden"
    assert ApiKey.objects.get(pk=key_id).revoked_at is None


def test_it_refuses_to_revoke_for_an_anonymous_caller(anon, caller):
    key_id = ApiKey.objects.get(team=caller.team).pk
    error = error_of(anon.delete(f"/v1/api-keys/{key_id}"), 401)
    assert error["code"] == "unauthorized"
    assert ApiKey.objects.get(pk=key_id).revoked_at is None
