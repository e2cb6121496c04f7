"""This process's Redis client for the small shared state of the web (counters, the API
keys' generation): one client, and so one connection pool, per URL, not one per call."""

from __future__ import annotations

import functools

from django.conf import settings


def shared_redis():
    """The client for the queues' Redis, or None when there is none (embedded default)."""
    if not settings.REDIS_URL:
        return None
    return _client(settings.RQ_QUEUES["default"]["URL"])


@functools.lru_cache(maxsize=8)
def _client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
