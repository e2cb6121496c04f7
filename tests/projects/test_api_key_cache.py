"""A web process answers for an API key it saw lately without asking PostgreSQL
(bench/api_load.py: the key's three-table query was a quarter of a list request), and
drops it the moment a key, team or plan changes, in this process or any other (the
keys' generation in Redis)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects import services
from projects.models import ApiKey
from projects.services import KEYS_GENERATION, api_key_authenticate, api_key_revoke


@pytest.fixture
def redis_db(settings):
    from clypai.lib.shared_redis import shared_redis

    client = shared_redis()
    assert client is not None, "the suite runs with Redis"
    client.delete(KEYS_GENERATION)
    return client


def _queries(call):
    with CaptureQueriesContext(connection) as seen:
        result = call()
    return result, [q["sql"] for q in seen.captured_queries]


@pytest.mark.django_db
def test_a_key_seen_lately_is_answered_without_postgresql(caller, redis_db):
    first, asked = _queries(lambda: api_key_authenticate(raw_key=caller.key))
    assert first is not None and first.team == caller.team and len(asked) >= 1
    again, asked = _queries(lambda: api_key_authenticate(raw_key=caller.key))
    assert asked == []
    assert again.pk == first.pk and again.team.pk == caller.team.pk
    # Each caller gets a copy: a view that changes its team changes no other request's.
    again.team.name = "changed by one request"
    assert api_key_authenticate(raw_key=caller.key).team.name == caller.team.name


@pytest.mark.django_db
def test_a_revoked_key_is_refused_at_once(caller, redis_db, django_capture_on_commit_callbacks):
    assert api_key_authenticate(raw_key=caller.key) is not None
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=ApiKey.objects.get(team=caller.team))
    assert api_key_authenticate(raw_key=caller.key) is None
    assert int(redis_db.get(KEYS_GENERATION)) == 1  # the other processes drop theirs


@pytest.mark.django_db
def test_a_change_made_by_another_process_reaches_this_one_through_redis(caller, redis_db):
    assert api_key_authenticate(raw_key=caller.key) is not None
    # Another web process revokes it: the row changes, and its commit moves the
    # generation on. This process hears of it only through Redis.
    ApiKey.objects.filter(team=caller.team).update(revoked_at="2026-01-01T00:00:00Z")
    assert api_key_authenticate(raw_key=caller.key) is not None  # still held, as designed
    redis_db.incr(KEYS_GENERATION)
    assert api_key_authenticate(raw_key=caller.key) is None


@pytest.mark.django_db
def test_a_team_s_new_limits_apply_to_its_next_request(caller, redis_db):
    assert api_key_authenticate(raw_key=caller.key).team.requests_per_minute != 7
    team = caller.team
    team.requests_per_minute = 7
    team.save()
    assert api_key_authenticate(raw_key=caller.key).team.requests_per_minute == 7


@pytest.mark.django_db
def test_the_cache_can_be_turned_off_and_holds_only_its_time(caller, redis_db, settings):
    settings.CLYPAI_API_KEY_CACHE_SECONDS = 0
    api_key_authenticate(raw_key=caller.key)
    _, asked = _queries(lambda: api_key_authenticate(raw_key=caller.key))
    assert asked  # asked PostgreSQL again
    settings.CLYPAI_API_KEY_CACHE_SECONDS = 30
    api_key_authenticate(raw_key=caller.key)
    hashed = next(iter(services._keys))
    generation, _, key = services._keys[hashed]
    services._keys[hashed] = (generation, 0.0, key)  # its time is over
    _, asked = _queries(lambda: api_key_authenticate(raw_key=caller.key))
    assert asked


@pytest.mark.django_db
def test_without_redis_every_request_asks_postgresql(caller, settings):
    settings.REDIS_URL = ""
    api_key_authenticate(raw_key=caller.key)
    _, asked = _queries(lambda: api_key_authenticate(raw_key=caller.key))
    assert asked
