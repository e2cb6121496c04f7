"""Shared fixtures: media in a temporary folder, teams, keys and authenticated clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from projects.services import api_key_create
from tests.factories import MembershipFactory, TeamFactory
from tests.openapi_check import found_take

SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def pytest_configure(config):
    """Every answer of either API in every test is held to its OpenAPI document
    (tests/openapi_check.py); the fixture below fails the test that got one it lacks."""
    from django.conf import settings

    check = "tests.openapi_check.ResponseCheckMiddleware"
    if check not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [check, *settings.MIDDLEWARE]


@pytest.fixture(autouse=True)
def openapi_responses():
    found_take()
    yield
    wrong = found_take()
    assert not wrong, "answers the OpenAPI documents do not declare:\n" + "\n".join(wrong)


@pytest.fixture(autouse=True)
def api_keys_forgotten():
    """Each test starts with no API key held by this process (projects.services):
    tests change teams in ways a running service does not (rolled back at their end)."""
    from projects.services import api_key_cache_clear

    api_key_cache_clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    }
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def jobs_in_the_caller(settings):
    """In-process jobs (CLYPAI_JOBS_INLINE) run where they are queued, so a test sees
    their result at once; the dashboard's browser tests use background threads."""
    settings.CLYPAI_JOBS_THREADS = 0


@pytest.fixture(autouse=True)
def transcribe_in_place(settings):
    """Tests analyse a source in one call, as the embedded default and `manage.py clip`
    do; the tests of the `transcribe` queue turn CLYPAI_TRANSCRIBE_ON_QUEUE on (and
    `tests.processes.process_env` passes the test's choice to the processes it starts)."""
    settings.CLYPAI_TRANSCRIBE_ON_QUEUE = False


@pytest.fixture(autouse=True)
def anonymous_rate_limit(settings):
    """Every test's anonymous requests come from 127.0.0.1 and Redis counts them across
    tests: the per-address limit would trip on the suite, not on what a test checks.
    Rate-limit tests set it (and fresh addresses) themselves."""
    settings.CLYPAI_RATE_LIMIT_ANON_PER_MINUTE = 100_000


@pytest.fixture(autouse=True)
def source_check_off(settings):
    """Tests name sources such as https://example.com/video.mp4 that nothing may fetch
    (no packet leaves loopback): the check of a new source URL is off unless a test of
    it turns it on (tests/clips/test_source_check.py)."""
    settings.CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS = 0


@pytest.fixture
def shared_media() -> Path:
    if not SHARED_MEDIA.is_dir():
        pytest.fail(f"test media not found at {SHARED_MEDIA} (../shared/media beside the checkout)")
    return SHARED_MEDIA


@dataclass
class Caller:
    team: object
    key: str
    client: APIClient


def _caller(team) -> Caller:
    created = api_key_create(team=team, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.raw_key}")
    return Caller(team=team, key=created.raw_key, client=client)


@pytest.fixture
def team(db):
    return TeamFactory(name="Acme")


@pytest.fixture
def caller(team) -> Caller:
    return _caller(team)


@pytest.fixture
def api(caller) -> APIClient:
    return caller.client


@pytest.fixture
def other_caller(db) -> Caller:
    return _caller(TeamFactory(name="Globex"))


@pytest.fixture
def owner(team):
    return MembershipFactory(team=team).user


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 and a free port, for the whole test session."""
    from tests.s3 import start_s3_server

    server, s3 = start_s3_server()
    yield s3
    server.stop()


@pytest.fixture
def s3_storage(settings, media_root, s3_server):
    """Files stored in a fresh bucket of the test S3 server, through S3Storage.

    Asks for `media_root` so that it overrides STORAGES after it. Django's own
    setting_changed receiver (django.test.signals.storages_changed) empties the storage
    cache and resets the lazy `default_storage` that every FileField holds, so models and
    `default_storage` use the new backend from here on; pytest-django restores both after.
    """
    from django.core.files.storage import default_storage
    from storages.backends.s3 import S3Storage

    bucket = s3_server.create_bucket()
    options = s3_server.storage_options(bucket=bucket, location="media")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    assert isinstance(default_storage, S3Storage), type(default_storage)
    return S3StorageInTest(server=s3_server, bucket=bucket, location="media")


@dataclass
class S3StorageInTest:
    server: object
    bucket: str
    location: str

    def key(self, name: str) -> str:
        return f"{self.location}/{name}"

    def get_bytes(self, name: str) -> bytes:
        return (
            self.server.client().get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()
        )


@pytest.fixture
def superuser(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password="s3cret-admin-pass"
    )


@pytest.fixture
def admin_client(client, superuser):
    """Django's test client, signed in to the admin as a superuser."""
    client.force_login(superuser)
    return client
