"""Per-key rate limits counted in Redis: headers on every answer, 429 rate_limited beyond."""

from __future__ import annotations

import secrets
import time
import uuid

import pytest
from rest_framework.test import APIClient

from clypai.api import limits
from projects.models import Plan
from projects.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited(team):
    team.plan = Plan.objects.create(id="tight", name="Tight", requests_per_minute=3)
    team.save()
    return team


def client_for(team) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(team=team).raw_key}")
    return client


def test_every_answer_carries_the_limit_headers(api):
    response = api.get("/v1/projects")
    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "600"
    assert int(response["X-RateLimit-Remaining"]) == 599
    reset = int(response["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    second = api.get("/v1/projects")
    assert int(second["X-RateLimit-Remaining"]) == 598


def test_past_the_plans_limit_a_key_gets_429_rate_limited_with_retry_after(limited):
    client = client_for(limited)
    for remaining in (2, 1, 0):
        response = client.get("/v1/projects")
        assert response.status_code == 200
        assert response["X-RateLimit-Remaining"] == str(remaining)
    refused = client.get("/v1/projects")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["details"] == {"retryAfter": retry_after}
    assert refused["X-RateLimit-Limit"] == "3"
    assert refused["X-RateLimit-Remaining"] == "0"
    # A refused POST does nothing.
    assert client.post("/v1/projects", {"name": "x"}, format="json").status_code == 429
    assert not limited.projects.filter(name="x").exists()


def test_each_key_has_its_own_count(limited):
    first, second = client_for(limited), client_for(limited)
    for _ in range(3):
        first.get("/v1/projects")
    assert first.get("/v1/projects").status_code == 429
    assert second.get("/v1/projects").status_code == 200


def test_the_window_resets(limited):
    """The next window starts from zero (checked on the counter, without waiting)."""
    now = time.time()
    scope = f"key:test-window-{uuid.uuid4()}"
    for _ in range(3):
        state, over = limits.rate_limit_hit(scope=scope, limit=3, window=60, now=now)
    assert not over and state.remaining == 0
    state, over = limits.rate_limit_hit(scope=scope, limit=3, window=60, now=now)
    assert over
    state, over = limits.rate_limit_hit(scope=scope, limit=3, window=60, now=now + 60)
    assert not over and state.remaining == 2


def test_the_choppity_api_is_limited_in_its_own_shape(limited):
    chop = APIClient()
    chop.credentials(HTTP_AUTHORIZATION=f"Key {api_key_create(team=limited).raw_key}")
    for _ in range(3):
        assert (
            chop.get("/choppity/v1/clips/00000000-0000-0000-0000-000000000000").status_code == 404
        )
    refused = chop.get("/choppity/v1/clips/00000000-0000-0000-0000-000000000000")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TOO_MANY_REQUESTS"
    assert int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Remaining"] == "0"


def test_anonymous_token_requests_are_limited_per_address(settings, db):
    settings.CLYPAI_RATE_LIMIT_ANON_PER_MINUTE = 2
    # Fresh addresses, so an earlier run's count in this minute does not weigh here
    # (from the OS: hypothesis seeds `random` in the tests that use it).
    number = secrets.randbelow(254 * 256 - 1)
    first, second = (f"127.{1 + n // 256}.{n % 256}.7" for n in (number, number + 1))
    client = APIClient(REMOTE_ADDR=first)
    body = {"username": "nobody", "password": "wrong"}
    for _ in range(2):
        assert client.post("/v1/auth/token", body, format="json").status_code == 401
    refused = client.post("/v1/auth/token", body, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    other = APIClient(REMOTE_ADDR=second)
    assert other.post("/v1/auth/token", body, format="json").status_code == 401


def test_behind_a_trusted_proxy_anonymous_requests_are_limited_per_client(settings, db):
    settings.CLYPAI_RATE_LIMIT_ANON_PER_MINUTE = 2
    settings.CLYPAI_TRUSTED_PROXY_COUNT = 1
    number = secrets.randbelow(254 * 256 - 1)
    first, second = (f"10.{1 + n // 256}.{n % 256}.9" for n in (number, number + 1))
    proxy = "127.0.0.1"  # every request reaches the app from the proxy
    body = {"username": "nobody", "password": "wrong"}

    def post(forwarded_for: str):
        client = APIClient(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded_for)
        return client.post("/v1/auth/token", body, format="json").status_code

    # The client writes what it likes before the address the proxy appends: not believed.
    assert post(f"203.0.113.1, {first}") == 401
    assert post(f"203.0.113.2, {first}") == 401
    assert post(f"203.0.113.3, {first}") == 429
    # Another client behind the same proxy has its own count.
    assert post(second) == 401


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings, db):
    settings.CLYPAI_RATE_LIMIT_ANON_PER_MINUTE = 2
    settings.CLYPAI_TRUSTED_PROXY_COUNT = 0
    number = secrets.randbelow(254 * 256 - 1)
    address = f"127.{1 + number // 256}.{number % 256}.11"
    body = {"username": "nobody", "password": "wrong"}
    statuses = [
        APIClient(REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"10.0.0.{k}")
        .post("/v1/auth/token", body, format="json")
        .status_code
        for k in range(3)
    ]
    assert statuses == [401, 401, 429]  # a forged header does not buy more requests


def test_the_client_address_is_the_one_the_trusted_proxies_saw(settings, rf):
    settings.CLYPAI_TRUSTED_PROXY_COUNT = 2
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4, 10.0.0.1")
    assert limits.client_address(request) == "1.2.3.4"
    # fewer entries than proxies: the first; none, or garbage: the peer
    assert limits.client_address(rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "1.2.3.4"
    assert limits.client_address(rf.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"
    garbage = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="evil, 10.0.0.1")
    assert limits.client_address(garbage) == "10.0.0.2"


def test_when_redis_fails_requests_pass(api, monkeypatch):
    """A real client to a closed port: the limiter's outage is logged, not served."""
    import redis

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(limits, "_redis", lambda: dead)
    response = api.get("/v1/projects")
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


def test_the_counters_keep_one_redis_connection_across_requests(api, settings):
    # Each request used to make a new Redis client (django_rq.get_connection), and so a
    # new TCP connection: found by bench/api_load.py.
    settings.REDIS_URL = settings.RQ_QUEUES["default"]["URL"]
    assert api.get("/v1/projects").status_code == 200
    client = limits._redis()
    before = client.connection_pool._created_connections  # earlier tests' threads' too
    for _ in range(20):
        assert api.get("/v1/projects").status_code == 200
    assert client is limits._redis()
    assert client.connection_pool._created_connections - before <= 1  # not one per request
