"""clypai/settings.py read in a fresh process under a given environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every variable settings.py reads, so the outer environment (the test run's own
# DATABASE_URL, REDIS_URL, …) cannot leak into a case.
_READ = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "DB_CONN_MAX_AGE",
    "STATIC_ROOT",
    "MEDIA_ROOT",
    "REDIS_URL",
    "CLYPAI_JOBS_INLINE",
    "LOG_LEVEL",
    "FILE_UPLOAD_TEMP_DIR",
    "CLYPAI_VAR_DIR",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "USE_X_FORWARDED_PORT",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
}

# Loads Django's settings as manage.py would and reports what a case looks at. Asking
# `storages` for the default backend instantiates it, so bad OPTIONS fail here too.
_PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.core.files.storage import storages
backend = storages["default"]
print(json.dumps({
    "storage_backend": settings.STORAGES["default"]["BACKEND"],
    "storage_options": settings.STORAGES["default"].get("OPTIONS", {}),
    "storage_class": type(backend).__module__ + "." + type(backend).__name__,
    "storage_location": getattr(backend, "location", None),
    "media_root": str(settings.MEDIA_ROOT),
    "db_engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_host": settings.DATABASES["default"].get("HOST"),
    "debug": settings.DEBUG,
    "jobs_inline": settings.CLYPAI_JOBS_INLINE,
    "max_upload": settings.CLYPAI_MAX_UPLOAD_BYTES,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "forwarded_host": settings.USE_X_FORWARDED_HOST,
    "public_url": settings.CLYPAI_PUBLIC_URL,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "redirect_exempt": settings.SECURE_REDIRECT_EXEMPT,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "trusted_proxies": settings.CLYPAI_TRUSTED_PROXY_COUNT,
    "num_proxies": settings.REST_FRAMEWORK["NUM_PROXIES"],
    "secret_key_length": len(settings.SECRET_KEY),
}))
"""


TEST_SECRET_KEY = "test-secret-key-" + "x" * 40  # 56 characters: DEBUG is off by default


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in _READ and not k.startswith("CLYPAI_") and not k.startswith("AWS_")
    }
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "clypai.settings",
            "CLYPAI_VAR_DIR": str(tmp_path / "var"),
            "SECRET_KEY": TEST_SECRET_KEY,
            "PYTHONPATH": str(ROOT),
        }
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load(tmp_path: Path, **env: str) -> dict:
    result = _run(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_stores_files_on_local_disk_under_media_root_by_default(tmp_path):
    loaded = load(tmp_path)
    assert loaded["storage_backend"] == "django.core.files.storage.FileSystemStorage"
    assert loaded["storage_class"].endswith("FileSystemStorage")
    assert loaded["media_root"] == str(tmp_path / "var" / "media")
    assert loaded["storage_location"] == str(tmp_path / "var" / "media")


def test_it_follows_media_root(tmp_path):
    loaded = load(tmp_path, MEDIA_ROOT=str(tmp_path / "files"))
    assert loaded["storage_location"] == str(tmp_path / "files")


def test_it_selects_s3_when_a_bucket_is_named(tmp_path):
    secret_file = tmp_path / "s3-secret"
    secret_file.write_text("s3cr3t-from-a-file\n")
    loaded = load(
        tmp_path,
        CLYPAI_S3_BUCKET="clips",
        CLYPAI_S3_ENDPOINT_URL="http://minio:9000",
        CLYPAI_S3_ACCESS_KEY_ID="clypai",
        CLYPAI_S3_SECRET_ACCESS_KEY_FILE=str(secret_file),
        CLYPAI_S3_REGION="eu-west-1",
        CLYPAI_S3_PREFIX="media",
    )
    assert loaded["storage_backend"] == "storages.backends.s3.S3Storage"
    assert loaded["storage_class"] == "storages.backends.s3.S3Storage"
    options = loaded["storage_options"]
    assert options["bucket_name"] == "clips"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["access_key"] == "clypai"
    assert options["secret_key"] == "s3cr3t-from-a-file"
    assert options["region_name"] == "eu-west-1"
    assert options["location"] == "media"
    assert options["addressing_style"] == "path"
    assert options["signature_version"] == "s3v4"
    assert options["querystring_auth"] is True
    assert options["file_overwrite"] is True
    assert options["default_acl"] is None
    assert loaded["storage_location"] == "media"


def test_the_test_s3_fixture_mirrors_the_settings_options(tmp_path):
    from tests.s3 import S3Server

    loaded = load(
        tmp_path,
        CLYPAI_S3_BUCKET="b",
        CLYPAI_S3_ENDPOINT_URL="http://x",
        CLYPAI_S3_ACCESS_KEY_ID="k",
        CLYPAI_S3_SECRET_ACCESS_KEY="s",
    )
    fixture = S3Server(endpoint_url="http://x").storage_options(bucket="b")
    assert set(fixture) == set(loaded["storage_options"])


def test_it_uses_sqlite_when_database_url_is_unset(tmp_path):
    loaded = load(tmp_path)
    assert loaded["db_engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"] == str(tmp_path / "var" / "clypai.sqlite3")


def test_it_reads_database_url(tmp_path):
    loaded = load(tmp_path, DATABASE_URL="postgres://clypai:pw@db.internal:5432/clypai")
    assert loaded["db_engine"] == "django.db.backends.postgresql"
    assert loaded["db_name"] == "clypai"
    assert loaded["db_host"] == "db.internal"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("false", False),
        ("0", False),
        ("off", False),
        ("true", True),
        ("1", True),
        ("Yes", True),
        (" on ", True),
    ],
)
def test_debug_is_off_unless_set(tmp_path, value, expected):
    env = {} if value is None else {"DEBUG": value}
    assert load(tmp_path, **env)["debug"] is expected


def test_it_refuses_a_boolean_it_cannot_read(tmp_path):
    result = _run(tmp_path, DEBUG="maybe")
    assert result.returncode != 0
    assert (
        "django.core.exceptions.ImproperlyConfigured: DEBUG must be true or false, "
        "not 'maybe'" in result.stderr
    )


def test_it_refuses_an_integer_it_cannot_read(tmp_path):
    result = _run(tmp_path, CLYPAI_MAX_UPLOAD_BYTES="5GB")
    assert result.returncode != 0
    assert "ImproperlyConfigured: CLYPAI_MAX_UPLOAD_BYTES must be an integer" in result.stderr


def test_it_refuses_an_unreadable_secret_file(tmp_path):
    result = _run(tmp_path, SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY_FILE: cannot read" in result.stderr


def test_jobs_run_inline_without_redis_and_on_rq_with_it(tmp_path):
    assert load(tmp_path)["jobs_inline"] is True
    assert load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/12")["jobs_inline"] is False
    assert (
        load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/12", CLYPAI_JOBS_INLINE="true")[
            "jobs_inline"
        ]
        is True
    )


def test_it_reads_lists_and_integers(tmp_path):
    loaded = load(
        tmp_path,
        ALLOWED_HOSTS=" clyp.example.org , ,api.example.org",
        CLYPAI_MAX_UPLOAD_BYTES="1048576",
    )
    assert loaded["allowed_hosts"] == ["clyp.example.org", "api.example.org"]
    assert loaded["max_upload"] == 1048576


def test_it_reads_the_proxy_headers_and_the_public_url(tmp_path):
    plain = load(tmp_path)
    assert (plain["proxy_ssl_header"], plain["forwarded_host"], plain["public_url"]) == (
        None,
        False,
        "",
    )
    behind = load(
        tmp_path,
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        USE_X_FORWARDED_HOST="true",
        CLYPAI_PUBLIC_URL="https://clyp.example.org/",
    )
    assert behind["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind["forwarded_host"] is True
    assert behind["public_url"] == "https://clyp.example.org"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
        ("SECURE_PROXY_SSL_HEADER", "X Forwarded: https"),
        ("CLYPAI_PUBLIC_URL", "clyp.example.org"),
        ("CLYPAI_PUBLIC_URL", "ftp://clyp.example.org"),
    ],
)
def test_it_refuses_a_proxy_header_or_public_url_it_cannot_read(tmp_path, name, value):
    result = _run(tmp_path, **{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} must" in result.stderr


# Production: secrets and HTTPS ----------------------------------------------------------


EXAMPLE_SECRET_KEY = next(
    line.split("=", 1)[1]
    for line in (ROOT / "deploy" / ".env.example").read_text().splitlines()
    if line.startswith("SECRET_KEY=")
)


def test_it_refuses_the_env_examples_placeholder_secret_key_with_debug_off(tmp_path):
    result = _run(tmp_path, SECRET_KEY=EXAMPLE_SECRET_KEY)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is the placeholder of deploy/.env.example" in (
        result.stderr
    )
    # the same from a file
    path = tmp_path / "secret"
    path.write_text(EXAMPLE_SECRET_KEY + "\n")
    from_file = _run(tmp_path, SECRET_KEY="", SECRET_KEY_FILE=str(path))
    assert "SECRET_KEY is the placeholder" in from_file.stderr


def test_it_refuses_a_secret_key_shorter_than_50_characters_with_debug_off(tmp_path):
    result = _run(tmp_path, SECRET_KEY="k" * 49)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be at least 50 characters" in result.stderr
    assert "(it has 49)" in result.stderr
    assert load(tmp_path, SECRET_KEY="k" * 50)["secret_key_length"] == 50


def test_debug_may_run_on_a_short_key_and_a_generated_key_is_long_enough(tmp_path):
    assert load(tmp_path, DEBUG="true", SECRET_KEY="dev")["debug"] is True
    generated = load(tmp_path, SECRET_KEY="")  # generated once into CLYPAI_VAR_DIR
    assert generated["secret_key_length"] >= 50


def test_https_only_is_on_by_default_in_production_behind_a_tls_proxy(tmp_path):
    production = load(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https")
    assert production["ssl_redirect"] is True
    assert production["hsts_seconds"] == 365 * 86400
    assert production["session_cookie_secure"] is True
    assert production["csrf_cookie_secure"] is True
    assert production["redirect_exempt"] == [r"^healthz$", r"^readyz$", r"^metrics$"]
    # each one may be turned off
    relaxed = load(
        tmp_path,
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )
    assert (relaxed["ssl_redirect"], relaxed["hsts_seconds"]) == (False, 0)
    assert relaxed["session_cookie_secure"] is True


@pytest.mark.parametrize(
    "env",
    [{}, {"DEBUG": "true", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"}],
)
def test_https_only_is_off_without_a_tls_proxy_or_in_debug(tmp_path, env):
    loaded = load(tmp_path, **env)
    assert loaded["ssl_redirect"] is False and loaded["hsts_seconds"] == 0
    assert loaded["session_cookie_secure"] is False and loaded["csrf_cookie_secure"] is False
    # and may be turned on (a TLS server without a proxy)
    forced = load(tmp_path, **env, SECURE_SSL_REDIRECT="true", SESSION_COOKIE_SECURE="true")
    assert forced["ssl_redirect"] is True and forced["session_cookie_secure"] is True


def test_it_reads_how_many_proxies_to_trust(tmp_path):
    assert (load(tmp_path)["trusted_proxies"], load(tmp_path)["num_proxies"]) == (0, None)
    two = load(tmp_path, CLYPAI_TRUSTED_PROXY_COUNT="2")
    assert (two["trusted_proxies"], two["num_proxies"]) == (2, 2)
    refused = _run(tmp_path, CLYPAI_TRUSTED_PROXY_COUNT="-1")
    assert "ImproperlyConfigured: CLYPAI_TRUSTED_PROXY_COUNT must be 0 or more" in refused.stderr
