"""Links to files in answers: right behind a TLS proxy, and on CLYPAI_PUBLIC_URL when it
is set (webhooks: tests/webhooks/test_events.py). The document's example links are
absolute https URLs (`"videoUrl": "https://storage.clypai.com/clips/…"`)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile

from clips.models import Job
from tests.choppity.conftest import make_job
from tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

PROXIED = {
    "HTTP_HOST": "10.0.0.5:8000",  # what the proxy connects to
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_HOST": "clyp.example.org",
}


@pytest.fixture
def completed(team):
    clip = ClipFactory(team=team, status="completed")
    clip.video.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=False)
    clip.thumbnail.save("t.jpg", ContentFile(b"\xff\xd8\xff"), save=False)
    clip.captions.save("c.srt", ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nHi\n"), save=False)
    clip.save()
    return clip


def _outputs(api, clip, **headers) -> dict:
    response = api.get(f"/v1/clips/{clip.pk}", **headers)
    assert response.status_code == 200, response.content
    return response.json()["data"]["outputs"]


def test_behind_a_tls_proxy_links_are_https_on_the_public_host(api, completed, settings):
    settings.ALLOWED_HOSTS = ["10.0.0.5", "clyp.example.org", "testserver"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    for url in _outputs(api, completed, **PROXIED).values():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("https", "clyp.example.org"), url
        assert api.get(parts.path).status_code == 200  # and the link works


def test_choppity_links_behind_a_tls_proxy_too(caller, team, settings):
    from rest_framework.test import APIClient

    settings.ALLOWED_HOSTS = ["10.0.0.5", "clyp.example.org"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    job = make_job(team, status=Job.Status.DONE, clips=1, previews=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    (clip,) = client.get(f"/choppity/v1/clips/{job.pk}", **PROXIED).json()["clips"]
    assert clip["preview_url"].startswith("https://clyp.example.org/files/")


def test_without_the_proxy_settings_forwarded_headers_are_not_trusted(api, completed, settings):
    settings.ALLOWED_HOSTS = ["10.0.0.5", "clyp.example.org"]
    for url in _outputs(api, completed, **PROXIED).values():
        assert url.startswith("http://10.0.0.5:8000/files/"), url


def test_the_public_url_makes_every_link_when_it_is_set(api, completed, settings):
    settings.CLYPAI_PUBLIC_URL = "https://clyp.example.org"
    for url in _outputs(api, completed).values():  # asked of http://testserver
        assert url.startswith("https://clyp.example.org/files/"), url
