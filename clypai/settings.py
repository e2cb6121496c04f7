"""ClypAI settings, read from environment variables (see deploy/.env.example).

Every value has a working default for a single machine: SQLite under var/, files on
local disk under MEDIA_ROOT, jobs run in-process when REDIS_URL is unset.
"""

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CLYPAI_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    """A variable's value; NAME_FILE names a file holding it (for secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int | None) -> int | None:
    value = env(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def envfloat(name: str, default: float) -> float:
    value = env(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from exc


def envlist(name: str, default: str = "") -> list[str]:
    value = env(name, default) or ""
    return [item.strip() for item in value.split(",") if item.strip()]


# deploy/.env.example's SECRET_KEY: a copy of the example must not run in production.
SECRET_KEY_PLACEHOLDER = "change-me-to-a-long-random-string"
SECRET_KEY_MIN_LENGTH = 50


def _secret_key(debug: bool) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/.

    With DEBUG off, a key from the environment must not be the example's placeholder (or
    any "change-me") and must be at least SECRET_KEY_MIN_LENGTH characters: it signs
    sessions, JWTs and file links.
    """
    value = env("SECRET_KEY")
    if value:
        if not debug:
            if value == SECRET_KEY_PLACEHOLDER or value.lower().startswith("change-me"):
                raise ImproperlyConfigured(
                    "SECRET_KEY is the placeholder of deploy/.env.example: set a random one "
                    '(python -c "import secrets; print(secrets.token_urlsafe(50))"), '
                    "or leave it unset to have one generated into CLYPAI_VAR_DIR"
                )
            if len(value) < SECRET_KEY_MIN_LENGTH:
                raise ImproperlyConfigured(
                    f"SECRET_KEY must be at least {SECRET_KEY_MIN_LENGTH} characters with "
                    f"DEBUG off (it has {len(value)}): set a random one "
                    '(python -c "import secrets; print(secrets.token_urlsafe(50))")'
                )
        return value
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value


def _proxy_ssl_header() -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER from "X-Forwarded-Proto: https" (the header a TLS proxy
    sets, and its value on HTTPS requests); unset: requests are taken as they come."""
    value = env("SECURE_PROXY_SSL_HEADER")
    if not value:
        return None
    name, sep, expected = value.partition(":")
    name, expected = name.strip(), expected.strip()
    if not sep or not re.fullmatch(r"[A-Za-z0-9-]+", name) or not expected:
        raise ImproperlyConfigured(
            f'SECURE_PROXY_SSL_HEADER must read "Header-Name: value", not {value!r}'
        )
    return "HTTP_" + name.upper().replace("-", "_"), expected


def _public_url() -> str:
    value = (env("CLYPAI_PUBLIC_URL") or "").strip().rstrip("/")
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ImproperlyConfigured(
                f"CLYPAI_PUBLIC_URL must be an http(s) URL such as https://clyp.example.org, "
                f"not {value!r}"
            )
    return value


DEBUG = envbool("DEBUG", False)
SECRET_KEY = _secret_key(DEBUG)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# Behind a TLS-terminating proxy: which header says a request came over HTTPS, and
# whether to take the host from X-Forwarded-Host (and the port from X-Forwarded-Port), so
# that the links in answers say https:// and the public host. Trust them only when the
# proxy sets (and overwrites) these headers.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()
USE_X_FORWARDED_HOST = envbool("USE_X_FORWARDED_HOST", False)
USE_X_FORWARDED_PORT = envbool("USE_X_FORWARDED_PORT", False)
# HTTPS only, on by default in production behind a TLS proxy (DEBUG off and
# SECURE_PROXY_SSL_HEADER set): HTTP requests redirected to HTTPS (but the health and
# metrics probes, which a load balancer makes over plain HTTP), HSTS for a year,
# session and CSRF cookies sent over HTTPS only.
_HTTPS_ONLY = not DEBUG and SECURE_PROXY_SSL_HEADER is not None
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", _HTTPS_ONLY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 86400 if _HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", _HTTPS_ONLY)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", _HTTPS_ONLY)
# How many proxies in front of the app append to X-Forwarded-For (0: none, the peer's
# address is the client's). Anonymous rate limits key on the client's address, which is
# the address this many hops from the end of X-Forwarded-For; a client can write the
# rest of the header, so count only the proxies that overwrite or append to it.
CLYPAI_TRUSTED_PROXY_COUNT = envint("CLYPAI_TRUSTED_PROXY_COUNT", 0)
if CLYPAI_TRUSTED_PROXY_COUNT is None or CLYPAI_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("CLYPAI_TRUSTED_PROXY_COUNT must be 0 or more")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",  # its templates, for FORM_RENDERER
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served by us: /docs/ works offline
    "django_rq",
    "django_htmx",
    "clypai",
    "projects",
    "brandkits",
    "clips",
    "webhooks",
    "choppity",
    "dashboard",
]

MIDDLEWARE = [
    # First: the request id (log context, X-Request-Id, latency metrics), then the probes
    # and /metrics, answered before any host check, session, auth or HTTPS redirect.
    "clypai.observability.RequestIdMiddleware",
    "clypai.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "clypai.middleware.ApiRequestMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "clypai.background.StartBackgroundWork",
]

ROOT_URLCONF = "clypai.urls"
FORM_RENDERER = "dashboard.forms_renderer.DashboardFormRenderer"
WSGI_APPLICATION = "clypai.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'clypai.sqlite3'}"
if DATABASE_URL.startswith("sqlite:"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    # A connection kept between requests (DB_CONN_MAX_AGE > 0: the web under serve) is
    # checked before each request reuses it, so a PostgreSQL restart costs no request.
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 0), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Jobs run in threads of the same process in embedded mode; wait for the lock.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT") or VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing root
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files with DEBUG=0 too, under runserver or gunicorn; it finds
# them where they are (no collectstatic needed), and from STATIC_ROOT after one.
WHITENOISE_USE_FINDERS = envbool("WHITENOISE_USE_FINDERS", True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT") or VAR_DIR / "media")

# Storage: local disk by default; S3 or MinIO when a bucket is named.
CLYPAI_S3_BUCKET = env("CLYPAI_S3_BUCKET")
if CLYPAI_S3_BUCKET:
    _s3_options = {
        "bucket_name": CLYPAI_S3_BUCKET,
        "endpoint_url": env("CLYPAI_S3_ENDPOINT_URL"),
        "access_key": env("CLYPAI_S3_ACCESS_KEY_ID"),
        "secret_key": env("CLYPAI_S3_SECRET_ACCESS_KEY"),
        "region_name": env("CLYPAI_S3_REGION", "us-east-1"),
        "location": env("CLYPAI_S3_PREFIX", ""),
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
        "addressing_style": env("CLYPAI_S3_ADDRESSING_STYLE", "path"),
        "signature_version": "s3v4",
    }
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options}
else:
    _default_storage = {  # files appear whole or not at all (a full disk)
        "BACKEND": "clypai.lib.local_storage.LocalStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": f"/{MEDIA_URL}"},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Jobs: RQ on Redis when REDIS_URL is set, otherwise in-process after commit.
REDIS_URL = env("REDIS_URL") or ""
CLYPAI_JOBS_INLINE = envbool("CLYPAI_JOBS_INLINE", not REDIS_URL)
# In-process jobs run in this many background threads of the process (so a request
# answers at once); 0 runs each one synchronously where it is queued (manage.py clip).
CLYPAI_JOBS_THREADS = envint("CLYPAI_JOBS_THREADS", 2)
_rq_connection = {"URL": REDIS_URL or "redis://127.0.0.1:6379/0"}
# How long one RQ job of each queue may run before its worker kills it (seconds).
# Queues by resource: `transcribe` (GPU-capable: a worker started with
# CLYPAI_WHISPER_DEVICE=cuda serves it), `analysis` (ingest, probe, audio, shots,
# selection), `render`, `webhooks`, `default` (CPU workers serve the rest).
CLYPAI_QUEUE_TIMEOUTS = {
    "transcribe": envint("CLYPAI_TRANSCRIBE_QUEUE_TIMEOUT_SECONDS", 3600),
    "analysis": envint("CLYPAI_ANALYSIS_QUEUE_TIMEOUT_SECONDS", 3600),
    "render": envint("CLYPAI_RENDER_QUEUE_TIMEOUT_SECONDS", 3600),
    "webhooks": envint("CLYPAI_WEBHOOKS_QUEUE_TIMEOUT_SECONDS", 3600),
    "default": envint("CLYPAI_DEFAULT_QUEUE_TIMEOUT_SECONDS", 3600),
}
RQ_QUEUES = {
    name: {**_rq_connection, "DEFAULT_TIMEOUT": timeout}
    for name, timeout in CLYPAI_QUEUE_TIMEOUTS.items()
}
RQ_SHOW_ADMIN_LINK = True
# Jobs carry the log context (request id, clip or job id) from who queued them into the
# worker; workers finish their task on SIGTERM, or hand it back once the grace is over.
RQ = {
    "JOB_CLASS": "clypai.observability.ContextJob",
    "WORKER_CLASS": "clypai.observability.Worker",
}
# Transcription as a task of its own on the `transcribe` queue (the analysis task ends
# once the audio is stored; the transcribe task, on whatever machine serves that queue,
# stores the transcript and queues the rest on `analysis`). On by default on RQ; the
# embedded default and `manage.py clip` (jobs inline) transcribe where they analyse.
CLYPAI_TRANSCRIBE_ON_QUEUE = envbool(
    "CLYPAI_TRANSCRIBE_ON_QUEUE", bool(REDIS_URL) and not CLYPAI_JOBS_INLINE
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clypai.api.authentication.ApiKeyAuthentication",
        "clypai.api.authentication.JWTAuthentication",
        "clypai.api.authentication.TeamSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clypai.api.authentication.IsTeamMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies; the views that take files say MultiPartParser themselves. (A form
    # would carry nested objects such as captionStyle as strings that DRF drops.)
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "clypai.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["clypai.api.limits.RateLimitThrottle"],
    "NUM_PROXIES": CLYPAI_TRUSTED_PROXY_COUNT or None,
}

SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "TITLE": "ClypAI API",
    "DESCRIPTION": (
        "Self-hosted AI video clipping. The native API lives under /v1/. "
        'Every response is wrapped in {"success": …, "data": …} or '
        '{"success": false, "error": {…}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clypai.api.schema.add_limits",
    ],
    # Security schemes come from the extensions in clypai/api/schema.py.
    # Same field name, different choices: name each set, or spectacular guesses a hash.
    "ENUM_NAME_OVERRIDES": {
        "ClipStatusEnum": "clips.api.serializers.CLIP_STATUSES",
        "ExportStatusEnum": ["queued", "processing", "completed", "failed"],
        "ExportPendingStatusEnum": ["queued", "processing"],
        "LayoutEnum": "clips.api.serializers.LAYOUTS",
        "ShotLayoutEnum": "clips.api.serializers.SHOT_LAYOUTS",
        "CaptionPositionEnum": "brandkits.api.serializers.POSITIONS",
        "WatermarkPositionEnum": "brandkits.api.serializers.CORNERS",
        "WebhookDeliveryStatusEnum": "webhooks.api.serializers.DELIVERY_STATUSES",
        "WebhookFormatEnum": "webhooks.models.FORMATS",
        "FormatEnum": "clips.platforms.EXPORT_FORMATS",  # exports: mp4, mov, webm, otio, …
    },
}

# Product limits, all overridable.
CLYPAI_MAX_UPLOAD_BYTES = envint("CLYPAI_MAX_UPLOAD_BYTES", 5 * 1024**3)
# A presigned upload's object not taken in by a job within this many seconds of its last
# PUT is deleted by the sweep (its PUT URL lives an hour).
CLYPAI_INCOMING_UPLOAD_TTL_SECONDS = envint("CLYPAI_INCOMING_UPLOAD_TTL_SECONDS", 86400)
CLYPAI_MAX_LOGO_BYTES = envint("CLYPAI_MAX_LOGO_BYTES", 5 * 1024**2)
# Largest brand kit font file (a .ttf or .otf), in bytes.
CLYPAI_MAX_FONT_BYTES = envint("CLYPAI_MAX_FONT_BYTES", 10 * 1024**2)
CLYPAI_JWT_TTL_SECONDS = envint("CLYPAI_JWT_TTL_SECONDS", 3600)
CLYPAI_DEFAULT_MONTHLY_CLIP_QUOTA = envint("CLYPAI_DEFAULT_MONTHLY_CLIP_QUOTA", None)
CLYPAI_API_KEY_TOUCH_SECONDS = envint("CLYPAI_API_KEY_TOUCH_SECONDS", 60)
# Seconds a web process may answer for an API key (its team and plan) without asking
# PostgreSQL, while nothing has revoked or changed a key, team or plan (the generation
# in Redis; projects.services.api_key_authenticate). 0: ask every time.
CLYPAI_API_KEY_CACHE_SECONDS = envint("CLYPAI_API_KEY_CACHE_SECONDS", 30)
CLYPAI_SIGNED_URL_TTL_SECONDS = envint("CLYPAI_SIGNED_URL_TTL_SECONDS", 24 * 3600)
CLYPAI_EXPORT_WAIT_SECONDS = envfloat("CLYPAI_EXPORT_WAIT_SECONDS", 10.0)
# The longest clip a request may ask for (an explicit range, maxDuration, a re-cut), in
# seconds, unless the team's plan says otherwise.
CLYPAI_MAX_CLIP_SECONDS = envfloat("CLYPAI_MAX_CLIP_SECONDS", 600.0)
# Work a team may have queued or running at once (clips, jobs, exports, full renders);
# past it a request that would queue more gets 429 with Retry-After (these seconds).
# 0: no limit.
CLYPAI_MAX_IN_FLIGHT_PER_TEAM = envint("CLYPAI_MAX_IN_FLIGHT_PER_TEAM", 20)
CLYPAI_IN_FLIGHT_RETRY_AFTER_SECONDS = envint("CLYPAI_IN_FLIGHT_RETRY_AFTER_SECONDS", 30)
# A timeline export (otio, fcpxml, edl) packs the source into its zip up to this size;
# a larger source is linked instead (a signed link, fresh at each download).
CLYPAI_EXPORT_MEDIA_MAX_BYTES = envint("CLYPAI_EXPORT_MEDIA_MAX_BYTES", 2 * 1024**3)
# API requests a minute: per API key (or user), unless the team's plan says otherwise;
# per address for anonymous requests (the token endpoint). Counted in Redis.
CLYPAI_RATE_LIMIT_PER_MINUTE = envint("CLYPAI_RATE_LIMIT_PER_MINUTE", 600)
CLYPAI_RATE_LIMIT_ANON_PER_MINUTE = envint("CLYPAI_RATE_LIMIT_ANON_PER_MINUTE", 60)
# Idempotency-Key: how long a response is replayed, when a request holding a key is
# presumed dead, how long a concurrent request with the same key waits for it.
CLYPAI_IDEMPOTENCY_TTL_SECONDS = envint("CLYPAI_IDEMPOTENCY_TTL_SECONDS", 24 * 3600)
CLYPAI_IDEMPOTENCY_LOCK_SECONDS = envint("CLYPAI_IDEMPOTENCY_LOCK_SECONDS", 300)
CLYPAI_IDEMPOTENCY_WAIT_SECONDS = envfloat("CLYPAI_IDEMPOTENCY_WAIT_SECONDS", 10.0)
# Sources refused at probe time: longer than MAX_SOURCE_SECONDS, or a frame larger
# than MAX_SOURCE_WIDTH x HEIGHT (either orientation); FFMPEG_MAX_PIXELS caps what
# any decoder will allocate for one frame of a user's file.
CLYPAI_MAX_SOURCE_SECONDS = envfloat("CLYPAI_MAX_SOURCE_SECONDS", 4 * 3600.0)
CLYPAI_MAX_SOURCE_WIDTH = envint("CLYPAI_MAX_SOURCE_WIDTH", 7680)
CLYPAI_MAX_SOURCE_HEIGHT = envint("CLYPAI_MAX_SOURCE_HEIGHT", 4320)
CLYPAI_FFMPEG_MAX_PIXELS = envint("CLYPAI_FFMPEG_MAX_PIXELS", 7680 * 4320)
# Source URLs: hosts or CIDRs that may be fetched although private (comma-separated),
# and the limits on one download (bytes, wall-clock seconds, redirects followed).
CLYPAI_URL_ALLOWLIST = envlist("CLYPAI_URL_ALLOWLIST")
CLYPAI_FETCH_MAX_BYTES = envint("CLYPAI_FETCH_MAX_BYTES", 5 * 1024**3)
CLYPAI_FETCH_TIMEOUT_SECONDS = envfloat("CLYPAI_FETCH_TIMEOUT_SECONDS", 1800.0)
CLYPAI_FETCH_MAX_REDIRECTS = envint("CLYPAI_FETCH_MAX_REDIRECTS", 5)
# When a clip or job is created from a URL, a one-byte GET checks that it answers: one
# that is refused, private, unresolvable or answers an HTTP error is refused at once
# (400); one that says nothing within these seconds is accepted, and the worker's
# download decides. 0 turns the check off.
CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS = envfloat("CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS", 5.0)
# Transcription: engine (faster-whisper | openai-whisper), model (tiny.en, base, or a
# local directory; see clips/pipeline/transcribe.py) and device (cpu | cuda | auto).
CLYPAI_WHISPER_ENGINE = env("CLYPAI_WHISPER_ENGINE", "faster-whisper")
CLYPAI_WHISPER_MODEL = env("CLYPAI_WHISPER_MODEL", "base")
CLYPAI_WHISPER_DEVICE = env("CLYPAI_WHISPER_DEVICE", "cpu")
# Time limits of the media stages, in seconds: probing a file; decoding a source
# (audio extraction, shots, faces); rendering a clip or an export (and joining its
# intro and outro); grabbing thumbnail candidates.
CLYPAI_PROBE_TIMEOUT_SECONDS = envfloat("CLYPAI_PROBE_TIMEOUT_SECONDS", 120.0)
CLYPAI_DECODE_TIMEOUT_SECONDS = envfloat("CLYPAI_DECODE_TIMEOUT_SECONDS", 3600.0)
CLYPAI_RENDER_TIMEOUT_SECONDS = envfloat("CLYPAI_RENDER_TIMEOUT_SECONDS", 3600.0)
CLYPAI_THUMBNAIL_TIMEOUT_SECONDS = envfloat("CLYPAI_THUMBNAIL_TIMEOUT_SECONDS", 120.0)
# The size cap of every encode that writes a clip, render or export (ffmpeg's -fs), in
# bytes a second of clip; unset: twice the render's bitrate ceiling, else 5 MB/s
# (clips.pipeline.render.output_byte_cap). An encode past it fails, its file removed.
CLYPAI_MAX_OUTPUT_BYTES_PER_SECOND = envint("CLYPAI_MAX_OUTPUT_BYTES_PER_SECOND", None)
# How many clips a multi-clip job (the Choppity API) returns unless asked otherwise.
CLYPAI_JOB_CLIP_COUNT = envint("CLYPAI_JOB_CLIP_COUNT", 5)

# Webhooks: seconds one delivery attempt may take; the delays in seconds before each
# retry of a failed delivery, with jitter (Standard Webhooks' schedule, about 27 h in
# all); the longest Retry-After obeyed; days of continuous failure that disable an
# endpoint; seconds a rotated-out secret keeps signing beside the new one.
# A slow endpoint holds a webhook worker at most TIMEOUT seconds an attempt (CONNECT of
# them to open the connection): its retries are scheduled, never slept.
CLYPAI_WEBHOOK_TIMEOUT_SECONDS = envfloat("CLYPAI_WEBHOOK_TIMEOUT_SECONDS", 10.0)
CLYPAI_WEBHOOK_CONNECT_TIMEOUT_SECONDS = envfloat("CLYPAI_WEBHOOK_CONNECT_TIMEOUT_SECONDS", 5.0)
# Endpoints a team may have; POST /v1/webhooks/{id}/test: one attempt within TEST_TIMEOUT
# seconds, no retries, at most TESTS_PER_MINUTE a team.
CLYPAI_MAX_WEBHOOKS_PER_TEAM = envint("CLYPAI_MAX_WEBHOOKS_PER_TEAM", 20)
CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS = envfloat("CLYPAI_WEBHOOK_TEST_TIMEOUT_SECONDS", 5.0)
CLYPAI_WEBHOOK_TESTS_PER_MINUTE = envint("CLYPAI_WEBHOOK_TESTS_PER_MINUTE", 5)
# Without Redis (the embedded default): the background threads that deliver webhooks,
# apart from those of clips, so a slow endpoint never holds a thread that media work needs.
CLYPAI_WEBHOOK_THREADS = envint("CLYPAI_WEBHOOK_THREADS", 2)
try:
    CLYPAI_WEBHOOK_RETRY_SCHEDULE = [
        float(delay)
        for delay in envlist("CLYPAI_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
    ]
except ValueError as exc:
    raise ImproperlyConfigured("CLYPAI_WEBHOOK_RETRY_SCHEDULE must list seconds") from exc
CLYPAI_WEBHOOK_RETRY_AFTER_MAX_SECONDS = envfloat("CLYPAI_WEBHOOK_RETRY_AFTER_MAX_SECONDS", 86400.0)
CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS = envfloat("CLYPAI_WEBHOOK_DISABLE_AFTER_DAYS", 5.0)
CLYPAI_WEBHOOK_SECRET_OVERLAP_SECONDS = envint("CLYPAI_WEBHOOK_SECRET_OVERLAP_SECONDS", 86400)
# Days an event and its delivery log are kept once no delivery of it is still pending.
CLYPAI_WEBHOOK_RETENTION_DAYS = envint("CLYPAI_WEBHOOK_RETENTION_DAYS", 30)
# This site's public base URL (https://clyp.example.org): when set, every link to a file
# on local disk, in answers and webhook payloads alike, is made absolute with it (S3
# links are absolute anyway); unset, answers use the request's host and webhook payloads
# carry relative links.
CLYPAI_PUBLIC_URL = _public_url()

# Durable jobs: a processing clip's worker beats every HEARTBEAT seconds; one silent
# for STALE seconds is presumed dead and its clip is queued again by the sweep, at most
# MAX_ATTEMPTS times. A pending clip not picked up for STALE seconds is re-enqueued.
CLYPAI_WORK_DIR = Path(env("CLYPAI_WORK_DIR") or VAR_DIR / "work")
# The work dir's caches (work/cache: sources and brand files downloaded from S3;
# work/audio: sources' extracted audio; work/fonts: brand kits' fonts) are evicted by
# the sweep, and on each worker's machine by its tasks (clips.analysis.
# work_files_evict_due): files unused for MAX_AGE seconds, then the least recently used
# while they hold more than MAX_BYTES; a file used in the last IN_USE seconds is never
# evicted.
CLYPAI_WORK_CACHE_MAX_AGE_SECONDS = envint("CLYPAI_WORK_CACHE_MAX_AGE_SECONDS", 7 * 86400)
CLYPAI_WORK_CACHE_MAX_BYTES = envint("CLYPAI_WORK_CACHE_MAX_BYTES", 20 * 1024**3)
CLYPAI_WORK_CACHE_IN_USE_SECONDS = envint("CLYPAI_WORK_CACHE_IN_USE_SECONDS", 3600)
CLYPAI_HEARTBEAT_SECONDS = envfloat("CLYPAI_HEARTBEAT_SECONDS", 10.0)
CLYPAI_STALE_SECONDS = envfloat("CLYPAI_STALE_SECONDS", 60.0)
CLYPAI_SWEEP_INTERVAL_SECONDS = envfloat("CLYPAI_SWEEP_INTERVAL_SECONDS", 30.0)
CLYPAI_MAX_ATTEMPTS = envint("CLYPAI_MAX_ATTEMPTS", 3)
CLYPAI_RETRY_BACKOFF_SECONDS = envfloat("CLYPAI_RETRY_BACKOFF_SECONDS", 30.0)

# Uploads land in temporary files (never in memory) and are hashed as they stream.
FILE_UPLOAD_HANDLERS = ["clypai.lib.uploads.LimitedHashingUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR") or None

# The dashboard's accounts (Django sessions); password resets by e-mail, printed on the
# console unless EMAIL_BACKEND says otherwise.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "ClypAI <noreply@localhost>")

# Production processes (`manage.py serve`, what `make run` starts): gunicorn's gthread
# workers, threads each and request timeout; how many RQ worker processes (default: one
# per core); the seconds a stopping process gets to finish its current task before it is
# stopped and its work handed back (an RQ worker's task is queued again at once; a job
# thread of the web process, without Redis, at its next start).
CLYPAI_WEB_WORKERS = envint("CLYPAI_WEB_WORKERS", None)
CLYPAI_WEB_THREADS = envint("CLYPAI_WEB_THREADS", 4)
CLYPAI_WEB_TIMEOUT_SECONDS = envint("CLYPAI_WEB_TIMEOUT_SECONDS", 120)
CLYPAI_WEB_HOST = env("CLYPAI_WEB_HOST", "0.0.0.0")
PORT = envint("PORT", 8000)
CLYPAI_WORKERS = envint("CLYPAI_WORKERS", os.cpu_count() or 1)
CLYPAI_STOP_GRACE_SECONDS = envfloat("CLYPAI_STOP_GRACE_SECONDS", 60.0)

# Health and metrics: how long /readyz waits for each part; the bearer token /metrics
# asks for (unset: it answers loopback clients only).
CLYPAI_READY_TIMEOUT_SECONDS = envfloat("CLYPAI_READY_TIMEOUT_SECONDS", 2.0)
CLYPAI_METRICS_TOKEN = env("CLYPAI_METRICS_TOKEN") or ""

# Logs: one JSON object a line (json), or a line for humans (text); every line carries
# the request id, clip id, job id and team it is about (clypai/observability.py).
CLYPAI_LOG_FORMAT = (env("CLYPAI_LOG_FORMAT") or "json").strip().lower()
if CLYPAI_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"CLYPAI_LOG_FORMAT must be json or text, not {CLYPAI_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "clypai.observability.LogContextFilter"}},
    "formatters": {
        "json": {"()": "clypai.observability.JsonFormatter"},
        "text": {"()": "clypai.observability.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": CLYPAI_LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
