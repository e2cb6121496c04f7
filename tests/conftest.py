"""Shared fixtures: media in a temporary folder, teams, keys and authenticated clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from projects.services import api_key_create
from tests.factories import MembershipFactory, TeamFactory

SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


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
