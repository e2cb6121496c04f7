"""/healthz, /readyz and /metrics: what load balancers, orchestrators and Prometheus ask.

- `/healthz`: the process answers (liveness); it touches nothing else.
- `/readyz`: the database, Redis (when work goes through it) and storage each answer
  within CLYPAI_READY_TIMEOUT_SECONDS; otherwise 503, naming the failing part
  (readiness: take this instance out of rotation, do not restart it).
- `/metrics`: Prometheus' text format (`clypai.metrics`). With CLYPAI_METRICS_TOKEN set
  it asks for `Authorization: Bearer <token>`; unset, it answers loopback clients only.

`HealthMiddleware` answers these three before any other middleware: no session,
authentication, rate limit, HTTPS redirect or ALLOWED_HOSTS check stands in the way of
a probe that calls the pod's address.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connections
from django.http import HttpResponse, JsonResponse

from clypai import metrics

PATHS = ("/healthz", "/readyz", "/metrics")
# A few threads for the checks, so one that hangs costs its timeout, not the answer.
_checks = ThreadPoolExecutor(max_workers=6, thread_name_prefix="clypai-readyz")


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connections["default"].close()  # this check thread's own connection


def _redis() -> None:
    import redis

    timeout = settings.CLYPAI_READY_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.RQ_QUEUES["default"]["URL"], socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def _storage() -> None:
    if isinstance(default_storage, FileSystemStorage):
        location = default_storage.location
        os.makedirs(location, exist_ok=True)  # made on first use, as the storage does
        if not os.path.isdir(location) or not os.access(location, os.W_OK):
            raise OSError(f"{location} is not a writable folder")
        return
    default_storage.exists(".readyz")  # one HEAD request to the bucket


def checks() -> dict:
    """The parts /readyz checks, by name."""
    found = {"database": _database, "storage": _storage}
    if not settings.CLYPAI_JOBS_INLINE:
        found["redis"] = _redis
    return found


def readyz(request):
    timeout = settings.CLYPAI_READY_TIMEOUT_SECONDS
    started = time.monotonic()
    futures = {name: _checks.submit(check) for name, check in checks().items()}
    results, failing = {}, []
    for name, future in futures.items():
        left = max(timeout - (time.monotonic() - started), 0.01)
        try:
            future.result(timeout=left)
        except FutureTimeout:
            results[name] = {"ok": False, "error": f"no answer within {timeout:g} s"}
        except Exception as exc:
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"ok": True}
            continue
        failing.append(name)
    if failing:
        body = {
            "status": "unavailable",
            "failing": failing,
            "message": f"Not ready: {', '.join(failing)} did not answer",
            "checks": results,
        }
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": results})


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def metrics_view(request):
    token = settings.CLYPAI_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = JsonResponse(
                {"error": "unauthorized", "message": "Send Authorization: Bearer <metrics token>"},
                status=401,
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _loopback(request.META.get("REMOTE_ADDR", "")):
        return JsonResponse(
            {
                "error": "forbidden",
                "message": "Metrics answer loopback clients only unless CLYPAI_METRICS_TOKEN is set",
            },
            status=403,
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


VIEWS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}


class HealthMiddleware:
    """Near the top of MIDDLEWARE (after the request id): answers the three paths itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = VIEWS.get(request.path_info)
        if view is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        request.clypai_view = request.path_info.lstrip("/")
        response = view(request)
        response["Cache-Control"] = "no-store"
        return response
