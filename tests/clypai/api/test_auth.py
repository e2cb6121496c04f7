"""Who may call /v1/: API keys (Bearer or Key), JWTs from /v1/auth/token, and sessions."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clypai.api.authentication import SESSION_TEAM_KEY
from projects.models import ApiKey, Membership
from projects.services import api_key_create, api_key_revoke
from tests.factories import ClipFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # UserFactory's
KEY_SHAPE = re.compile(r"^clyp_[A-Za-z0-9]{48}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def clip_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    return [clip["id"] for clip in body["data"]]


def assert_unauthorized(response) -> dict:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="clypai"'
    return body["error"]


def get_token(username: str, password: str = PASSWORD, **extra):
    return APIClient().post(
        "/v1/auth/token", {"username": username, "password": password, **extra}, format="json"
    )


def token_for(user, team=None) -> str:
    extra = {"teamId": team.pk} if team is not None else {}
    response = get_token(user.username, **extra)
    assert response.status_code == 200, response.content
    return response.json()["data"]["token"]


def forge_jwt(*, user, team, secret: str, exp: datetime, aud: str = "clypai-api", **claims) -> str:
    payload = {
        "sub": str(user.pk),
        "team": team.pk,
        "iat": int((exp - timedelta(hours=1)).timestamp()),
        "exp": int(exp.timestamp()),
        "aud": aud,
        "typ": "access",
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture
def acme_clip(team):
    return ClipFactory(team=team, name="Acme clip")


@pytest.fixture
def globex_clip(db):
    return ClipFactory(team=TeamFactory(name="Globex"), name="Globex clip")


# --- API keys -------------------------------------------------------------------------


def test_it_accepts_an_api_key_as_a_bearer_token(caller, acme_clip, globex_clip):
    response = client_with(f"Bearer {caller.key}").get("/v1/clips")
    assert clip_ids(response) == [acme_clip.pk]


def test_it_accepts_the_same_api_key_in_choppitys_key_form(caller, acme_clip, globex_clip):
    response = client_with(f"Key {caller.key}").get("/v1/clips")
    assert clip_ids(response) == [acme_clip.pk]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "key", "KEY"])
def test_it_reads_the_scheme_case_insensitively(caller, acme_clip, scheme):
    response = client_with(f"{scheme} {caller.key}").get("/v1/clips")
    assert clip_ids(response) == [acme_clip.pk]


def test_it_scopes_an_api_key_to_its_own_team(other_caller, acme_clip, team):
    # The Globex key sees none of Acme's clips, and cannot read one by id.
    assert clip_ids(other_caller.client.get("/v1/clips")) == []
    response = other_caller.client.get(f"/v1/clips/{acme_clip.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_it_rejects_a_request_without_credentials(anon):
    error = assert_unauthorized(anon.get("/v1/clips"))
    assert error["message"] == "Authentication credentials were not provided."


@pytest.mark.parametrize("scheme", ["Bearer", "Key"])
def test_it_rejects_an_unknown_api_key(caller, scheme):
    wrong = caller.key[:-1] + ("A" if caller.key[-1] != "A" else "B")
    error = assert_unauthorized(client_with(f"{scheme} {wrong}").get("/v1/clips"))
    assert error["message"] == "Invalid or revoked API key"


def test_it_rejects_a_key_that_only_shares_the_visible_prefix(caller):
    prefix = ApiKey.objects.get(hashed_key=hashlib.sha256(caller.key.encode()).hexdigest()).prefix
    assert_unauthorized(client_with(f"Bearer {prefix}").get("/v1/clips"))
    assert_unauthorized(client_with(f"Bearer {prefix}{'x' * 40}").get("/v1/clips"))


@pytest.mark.parametrize("scheme", ["Bearer", "Key"])
def test_it_rejects_a_revoked_api_key(caller, scheme):
    api_key = ApiKey.objects.get(team=caller.team)
    assert clip_ids(client_with(f"{scheme} {caller.key}").get("/v1/clips")) == []
    api_key_revoke(api_key=api_key)
    error = assert_unauthorized(client_with(f"{scheme} {caller.key}").get("/v1/clips"))
    assert error["message"] == "Invalid or revoked API key"


def test_it_rejects_a_key_form_credential_that_is_not_an_api_key(owner, team):
    # `Key` carries API keys only: a valid JWT there is still refused.
    token = token_for(owner)
    assert_unauthorized(client_with(f"Key {token}").get("/v1/clips"))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Key",
        "Bearer clyp_abc def",
        "Key clyp_abc def",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
    ],
)
def test_it_rejects_a_malformed_authorization_header(header, caller):
    assert_unauthorized(client_with(header).get("/v1/clips"))


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "clyp_abc"])
def test_it_treats_an_unknown_scheme_as_no_credentials(header):
    error = assert_unauthorized(client_with(header).get("/v1/clips"))
    assert error["message"] == "Authentication credentials were not provided."


def test_it_rejects_an_overlong_key_without_looking_it_up(caller):
    assert_unauthorized(client_with(f"Bearer clyp_{'a' * 300}").get("/v1/clips"))


def test_it_stores_a_key_only_as_its_sha256_hash(team):
    created = api_key_create(team=team, name="ci")
    raw = created.raw_key
    row = ApiKey.objects.get(pk=created.api_key.pk)
    assert row.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert row.prefix == raw[:13] and row.prefix.startswith("clyp_")
    stored = [str(getattr(row, field.attname)) for field in ApiKey._meta.concrete_fields]
    assert not any(raw in value for value in stored)
    # The secret part after the visible prefix appears nowhere either.
    assert not any(raw[13:] in value for value in stored)


def test_it_makes_long_random_keys_that_start_with_clyp(team):
    keys = {api_key_create(team=team).raw_key for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert KEY_SHAPE.match(key), key
        assert len(key) >= 48
    assert len({key[:13] for key in keys}) == 5


def test_it_sets_last_used_at_when_a_key_is_used(caller):
    api_key = ApiKey.objects.get(team=caller.team)
    assert api_key.last_used_at is None
    before = timezone.now()
    assert clip_ids(caller.client.get("/v1/clips")) == []
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert before <= api_key.last_used_at <= timezone.now()


def test_it_refreshes_an_old_last_used_at_but_not_a_recent_one(caller):
    api_key = ApiKey.objects.get(team=caller.team)
    long_ago = timezone.now() - timedelta(hours=2)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=long_ago)
    caller.client.get("/v1/clips")
    api_key.refresh_from_db()
    assert api_key.last_used_at > long_ago + timedelta(hours=1)

    # Within the touch interval a request writes nothing.
    recent = timezone.now() - timedelta(seconds=5)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=recent)
    caller.client.get("/v1/clips")
    api_key.refresh_from_db()
    assert api_key.last_used_at == recent


def test_it_does_not_touch_a_revoked_key(caller):
    api_key = ApiKey.objects.get(team=caller.team)
    api_key_revoke(api_key=api_key)
    caller.client.get("/v1/clips")
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


# --- /v1/auth/token and JWTs ----------------------------------------------------------


def test_it_issues_a_jwt_for_a_users_credentials(owner, team, settings):
    before = datetime.now(UTC).replace(microsecond=0)
    response = get_token(owner.username)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"token", "tokenType", "expiresAt", "teamId"}
    assert data["tokenType"] == "Bearer"
    assert data["teamId"] == team.pk
    assert ISO_Z.match(data["expiresAt"])
    expires_at = datetime.strptime(data["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    ttl = timedelta(seconds=settings.CLYPAI_JWT_TTL_SECONDS)
    assert before + ttl <= expires_at <= datetime.now(UTC) + ttl

    claims = jwt.decode(
        data["token"], settings.SECRET_KEY, algorithms=["HS256"], audience="clypai-api"
    )
    assert claims["sub"] == str(owner.pk)
    assert claims["team"] == team.pk
    assert claims["exp"] == int(expires_at.timestamp())


def test_it_accepts_a_jwt_as_a_bearer_token(owner, team, acme_clip, globex_clip):
    token = token_for(owner)
    assert clip_ids(client_with(f"Bearer {token}").get("/v1/clips")) == [acme_clip.pk]


def test_it_ignores_a_stale_authorization_header_on_the_token_endpoint(owner, team):
    client = client_with("Bearer clyp_revoked_or_wrong")
    response = client.post(
        "/v1/auth/token", {"username": owner.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["data"]["teamId"] == team.pk


def test_it_refuses_a_token_for_a_wrong_password(owner):
    response = get_token(owner.username, password="wrong password")
    assert response.status_code == 401
    body = response.json()
    assert body == {
        "success": False,
        "error": {"code": "unauthorized", "message": "Invalid username or password"},
    }


def test_it_refuses_a_token_for_an_unknown_user_with_the_same_answer(owner):
    unknown = get_token("nobody-by-that-name")
    wrong = get_token(owner.username, password="wrong password")
    assert unknown.status_code == 401
    assert unknown.json() == wrong.json()


def test_it_refuses_a_token_for_an_inactive_user(owner):
    owner.is_active = False
    owner.save()
    response = get_token(owner.username)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_it_refuses_a_token_to_a_user_of_no_team(db):
    user = UserFactory()
    response = get_token(user.username)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_it_asks_a_user_of_several_teams_to_name_one(owner, team):
    MembershipFactory(team=TeamFactory(name="Globex"), user=owner, role="member")
    response = get_token(owner.username)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == "teamId"


def test_it_issues_a_token_for_the_named_team_of_several(owner, team, acme_clip, globex_clip):
    MembershipFactory(team=globex_clip.team, user=owner, role="member")
    response = get_token(owner.username, teamId=globex_clip.team.pk)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["teamId"] == globex_clip.team.pk
    assert clip_ids(client_with(f"Bearer {data['token']}").get("/v1/clips")) == [globex_clip.pk]


def test_it_refuses_a_token_for_a_team_the_user_is_not_in(owner, team, globex_clip):
    response = get_token(owner.username, teamId=globex_clip.team.pk)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == "teamId"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "someone"}, "password"),
        ({"username": "someone", "password": PASSWORD, "scope": "all"}, "scope"),
    ],
)
def test_it_names_the_field_of_a_bad_token_request(db, body, field):
    response = APIClient().post("/v1/auth/token", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field


def test_it_rejects_an_expired_jwt(owner, team, settings):
    token = forge_jwt(
        user=owner,
        team=team,
        secret=settings.SECRET_KEY,
        exp=datetime.now(UTC) - timedelta(minutes=1),
    )
    error = assert_unauthorized(client_with(f"Bearer {token}").get("/v1/clips"))
    assert error["message"] == "Token has expired"


def test_it_accepts_a_well_formed_jwt_made_with_the_servers_secret(
    owner, team, acme_clip, settings
):
    # The same forging helper with a future expiry works: the rejections below are real.
    token = forge_jwt(
        user=owner,
        team=team,
        secret=settings.SECRET_KEY,
        exp=datetime.now(UTC) + timedelta(minutes=5),
    )
    assert clip_ids(client_with(f"Bearer {token}").get("/v1/clips")) == [acme_clip.pk]


def test_it_rejects_a_jwt_signed_with_another_secret(owner, team):
    token = forge_jwt(
        user=owner,
        team=team,
        secret="not-the-servers-secret-" * 3,
        exp=datetime.now(UTC) + timedelta(minutes=5),
    )
    error = assert_unauthorized(client_with(f"Bearer {token}").get("/v1/clips"))
    assert error["message"] == "Invalid token"


def test_it_rejects_a_jwt_for_another_audience(owner, team, settings):
    token = forge_jwt(
        user=owner,
        team=team,
        secret=settings.SECRET_KEY,
        aud="someone-else",
        exp=datetime.now(UTC) + timedelta(minutes=5),
    )
    assert_unauthorized(client_with(f"Bearer {token}").get("/v1/clips"))


def test_it_rejects_an_unsigned_jwt(owner, team):
    payload = {
        "sub": str(owner.pk),
        "team": team.pk,
        "aud": "clypai-api",
        "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    }
    token = jwt.encode(payload, None, algorithm="none")
    assert_unauthorized(client_with(f"Bearer {token}").get("/v1/clips"))


def test_it_rejects_a_jwt_without_a_team(owner, team, settings):
    payload = {
        "sub": str(owner.pk),
        "aud": "clypai-api",
        "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    }
    token = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")
    assert_unauthorized(client_with(f"Bearer {token}").get("/v1/clips"))


@pytest.mark.parametrize(
    ("sub", "team_claim"), [("not-a-user-id", None), (None, ["a", "list"]), (None, {"a": 1})]
)
def test_it_rejects_a_signed_jwt_whose_claims_have_the_wrong_type(
    owner, team, settings, sub, team_claim
):
    payload = {
        "sub": sub if sub is not None else str(owner.pk),
        "team": team_claim if team_claim is not None else team.pk,
        "aud": "clypai-api",
        "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    }
    token = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")
    client = client_with(f"Bearer {token}")
    client.raise_request_exception = False
    assert_unauthorized(client.get("/v1/clips"))


def test_it_rejects_a_jwt_for_a_team_the_user_is_not_in(owner, globex_clip, settings):
    # Correctly signed, but naming a team the user never belonged to.
    token = forge_jwt(
        user=owner,
        team=globex_clip.team,
        secret=settings.SECRET_KEY,
        exp=datetime.now(UTC) + timedelta(minutes=5),
    )
    error = assert_unauthorized(client_with(f"Bearer {token}").get("/v1/clips"))
    assert error["message"] == "Token's user is no longer a team member"


def test_it_rejects_the_jwt_of_a_user_removed_from_the_team(owner, team, acme_clip):
    token = token_for(owner)
    client = client_with(f"Bearer {token}")
    assert clip_ids(client.get("/v1/clips")) == [acme_clip.pk]
    Membership.objects.filter(team=team, user=owner).delete()
    error = assert_unauthorized(client.get("/v1/clips"))
    assert error["message"] == "Token's user is no longer a team member"


def test_it_rejects_the_jwt_of_a_deactivated_user(owner, team):
    client = client_with(f"Bearer {token_for(owner)}")
    assert clip_ids(client.get("/v1/clips")) == []
    owner.is_active = False
    owner.save()
    assert_unauthorized(client.get("/v1/clips"))


# --- the dashboard's session ----------------------------------------------------------


def test_it_accepts_the_session_of_a_team_member(owner, acme_clip, globex_clip):
    client = APIClient()
    client.force_login(owner)
    assert clip_ids(client.get("/v1/clips")) == [acme_clip.pk]


def test_it_uses_the_team_chosen_in_the_session(owner, team, acme_clip, globex_clip):
    MembershipFactory(team=globex_clip.team, user=owner, role="member")
    client = APIClient()
    client.force_login(owner)
    session = client.session
    session[SESSION_TEAM_KEY] = globex_clip.team.pk
    session.save()
    assert clip_ids(client.get("/v1/clips")) == [globex_clip.pk]


def test_it_ignores_a_session_team_the_user_is_not_in(owner, acme_clip, globex_clip):
    client = APIClient()
    client.force_login(owner)
    session = client.session
    session[SESSION_TEAM_KEY] = globex_clip.team.pk
    session.save()
    assert clip_ids(client.get("/v1/clips")) == [acme_clip.pk]


def test_it_refuses_the_session_of_a_user_in_no_team(acme_clip):
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    response = client.get("/v1/clips")
    assert response.status_code in (401, 403)
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[response.status_code]
    assert "data" not in body


def test_it_prefers_a_bad_authorization_header_over_a_good_session(owner, acme_clip):
    # A wrong key is an error even when a session would have let the caller in.
    client = client_with("Bearer clyp_wrong")
    client.force_login(owner)
    assert_unauthorized(client.get("/v1/clips"))
