"""What every API request goes through after authentication: the caller's rate limit
and, on a POST with an `Idempotency-Key`, at-most-once execution.

Rate limits (Redis, a fixed window per caller):
    every response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset
    (Unix seconds when the window ends); over the limit, 429 `rate_limited` with
    Retry-After (seconds). The caller is its API key (or its user and team with a JWT or
    a session; its address when anonymous: REMOTE_ADDR, or behind
    CLYPAI_TRUSTED_PROXY_COUNT proxies the address they put in X-Forwarded-For). Its
    limit is the team's plan's (or the team's own override), else
    CLYPAI_RATE_LIMIT_PER_MINUTE. Without Redis (the embedded
    mode) nothing is limited; when Redis fails, requests pass and the failure is logged.

Idempotency keys, as Stripe's API has them:
    the first POST with a key does the work; a later one with the same key and the same
    request (method, path and body; JSON compared by value) within 24 hours gets the
    first response again, status and body, with `Idempotent-Replayed: true`; with another
    request, 409 `idempotency_conflict`. Only a successful (2xx) response is kept: a
    request refused by validation (or any error) saves nothing, and the key may be used
    again. Requests with the same key at the same time do the work once: the one that
    inserted the key's row runs, the others wait for its response (up to
    CLYPAI_IDEMPOTENCY_WAIT_SECONDS, then 409 `idempotency_in_progress`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from .errors import Conflict, InvalidRequest

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as Stripe's keys
_REPLAYED_HEADERS = ("Location", "Content-Location")
RATE_LIMIT_WINDOW_SECONDS = 60


def caller_scope(request) -> str:
    """Who is calling, for limits: the API key, else the user and team, else the address."""
    principal = getattr(request, "auth", None)
    api_key = getattr(principal, "api_key", None)
    if api_key is not None:
        return f"key:{api_key.pk}"
    user = getattr(principal, "user", None)
    if user is not None:
        return f"user:{user.pk}:{principal.team.pk}"
    return f"ip:{client_address(request)}"


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind CLYPAI_TRUSTED_PROXY_COUNT proxies the
    address that many entries from the end of X-Forwarded-For (what the outermost trusted
    proxy saw; the entries before it are the client's to write, and are not believed)."""
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.CLYPAI_TRUSTED_PROXY_COUNT
    if not count:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if not forwarded:
        return remote
    candidate = forwarded[-min(count, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # a proxy that writes something else: keep to the peer
        return remote


# Rate limits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_at: int  # Unix seconds

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def _redis():
    if not settings.REDIS_URL:
        return None
    import django_rq

    return django_rq.get_connection("default")


def rate_limit_for(request) -> int | None:
    principal = getattr(request, "auth", None)
    team = getattr(principal, "team", None)
    if team is None:
        return settings.CLYPAI_RATE_LIMIT_ANON_PER_MINUTE
    own = team.limits().requests_per_minute
    return own if own is not None else settings.CLYPAI_RATE_LIMIT_PER_MINUTE


def rate_limit_hit(*, scope: str, limit: int, window: int, now: float | None = None):
    """Count one request of `scope` in the current window: its state and whether it is
    over the limit. None when there is no Redis to count in."""
    connection = _redis()
    if connection is None:
        return None
    now = time.time() if now is None else now
    slot = int(now // window)
    key = f"clypai:ratelimit:{scope}:{window}:{slot}"
    pipe = connection.pipeline()
    pipe.incr(key)
    pipe.expire(key, window + 5)
    count = pipe.execute()[0]
    reset_at = (slot + 1) * window
    state = RateLimitState(limit=limit, remaining=max(limit - count, 0), reset_at=reset_at)
    return state, count > limit


class RateLimitThrottle(BaseThrottle):
    """DRF's hook for the limit: the state goes on the request for the headers."""

    def allow_request(self, request, view) -> bool:
        self._wait = None
        limit = rate_limit_for(request)
        if limit is None:
            return True
        window = RATE_LIMIT_WINDOW_SECONDS
        try:
            hit = rate_limit_hit(scope=caller_scope(request), limit=limit, window=window)
        except Exception:  # a limiter outage must not take the API down
            logger.warning("rate limit check failed; request let through", exc_info=True)
            return True
        if hit is None:
            return True
        state, over = hit
        request._request.clypai_rate_limit = state
        if over:
            self._wait = max(math.ceil(state.reset_at - time.time()), 1)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


# Idempotency ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdempotencyClaim:
    record_id: int


def _fingerprint(request) -> str:
    django_request = request._request
    digest = hashlib.sha256()
    digest.update(f"{request.method} {django_request.path}\n".encode())
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        # An upload's boundary differs on every send and its body may be gigabytes:
        # the path and length stand for it.
        digest.update(f"multipart {request.META.get('CONTENT_LENGTH', '')}".encode())
        return digest.hexdigest()
    body = django_request.body
    try:
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        pass  # not JSON: compared byte for byte
    digest.update(body)
    return digest.hexdigest()


def _replay(record) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.status_code,
        content_type=record.content_type or "application/json",
    )
    for name, value in (record.response_headers or {}).items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def idempotency_begin(request) -> IdempotencyClaim | HttpResponse | None:
    """Before the handler of a POST: None (no key), a claim (this request does the work)
    or the first request's response to send again. Raises InvalidRequest for a malformed
    key and Conflict for a key used with another request or still running elsewhere."""
    from clypai.models import IdempotencyRecord

    if request.method != "POST" or getattr(request, "auth", None) is None:
        return None
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not _KEY.fullmatch(key):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            field=IDEMPOTENCY_HEADER,
        )
    scope = caller_scope(request)
    fingerprint = _fingerprint(request)
    ttl = timedelta(seconds=settings.CLYPAI_IDEMPOTENCY_TTL_SECONDS)
    lock_ttl = timedelta(seconds=settings.CLYPAI_IDEMPOTENCY_LOCK_SECONDS)
    give_up = time.monotonic() + settings.CLYPAI_IDEMPOTENCY_WAIT_SECONDS
    pause = 0.02
    while True:
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    scope=scope, key=key, fingerprint=fingerprint, created_at=now, locked_at=now
                )
            return IdempotencyClaim(record.pk)
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if record is None:
            continue  # its first request failed and let go of it meanwhile
        if record.created_at < now - ttl:
            # Expired: a new request may take the key.
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.fingerprint != fingerprint:
            raise Conflict(
                "This Idempotency-Key was already used with a different request; "
                "use a new key for a new request",
                code="idempotency_conflict",
                field=IDEMPOTENCY_HEADER,
            )
        if record.status_code is not None:
            return _replay(record)
        if record.locked_at < now - lock_ttl:
            # Its request died without an answer (a killed process): take it over.
            if IdempotencyRecord.objects.filter(
                pk=record.pk, status_code__isnull=True, locked_at=record.locked_at
            ).update(locked_at=now):
                return IdempotencyClaim(record.pk)
            continue
        if time.monotonic() >= give_up:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry later",
                code="idempotency_in_progress",
                field=IDEMPOTENCY_HEADER,
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def idempotency_finish(claim: IdempotencyClaim, response) -> None:
    """After the handler: keep a successful response for replays; let go of the key
    otherwise, so that a corrected request may use it."""
    from clypai.models import IdempotencyRecord

    if not 200 <= response.status_code < 300 or getattr(response, "streaming", False):
        idempotency_release(claim)
        return
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    headers = {name: response[name] for name in _REPLAYED_HEADERS if response.has_header(name)}
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(
        status_code=response.status_code,
        content_type=response.get("Content-Type", "application/json")[:120],
        response_headers=headers,
        response_body=bytes(response.content),
    )


def idempotency_release(claim: IdempotencyClaim) -> None:
    from clypai.models import IdempotencyRecord

    IdempotencyRecord.objects.filter(pk=claim.record_id, status_code__isnull=True).delete()


def idempotency_purge(*, now=None) -> int:
    """Delete the keys older than their 24 hours (the sweep calls this)."""
    from clypai.models import IdempotencyRecord

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CLYPAI_IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


class _Replay(Exception):
    def __init__(self, response):
        self.response = response


class ApiLimitsMixin:
    """For the base view of each API surface: rate-limit headers on every response and
    Idempotency-Key handling around each POST's handler."""

    _idempotency_claim: IdempotencyClaim | None = None

    def initial(self, request, *args, **kwargs):
        self._idempotency_claim = None
        super().initial(request, *args, **kwargs)  # authentication, permissions, rate limit
        outcome = idempotency_begin(request)
        if isinstance(outcome, IdempotencyClaim):
            self._idempotency_claim = outcome
        elif outcome is not None:
            raise _Replay(outcome)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        claim, self._idempotency_claim = self._idempotency_claim, None
        if claim is not None:
            idempotency_release(claim)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request._request, "clypai_rate_limit", None)
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        claim, self._idempotency_claim = self._idempotency_claim, None
        if claim is not None:
            idempotency_finish(claim, response)
        return response
