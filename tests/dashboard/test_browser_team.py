"""The dashboard's team pages in Chromium: API keys, brand kits, webhooks, usage; every
page at a phone's width and under axe-core; another team's objects are 404s."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from playwright.sync_api import expect
from rest_framework.test import APIClient

from brandkits.models import BrandKit
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .conftest import axe_violations, make_ready_clip, no_sideways_scroll, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_api_key_is_shown_once_works_on_v1_and_can_be_revoked(page, member, shoot):
    clip = make_ready_clip(member.team)
    sign_in(page, member)
    page.get_by_role("navigation").get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("CI deploys")
    page.get_by_role("button", name="Create API key").click()
    key = page.get_by_label("New API key").input_value()
    assert key.startswith("clyp_") and len(key) > 40
    shoot(page, "api-key-created")
    assert axe_violations(page) == []

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    listed = api.get("/v1/clips").json()
    assert [c["id"] for c in listed["data"]] == [clip.pk]

    page.reload()  # shown once: only its prefix now
    expect(page.get_by_label("New API key")).to_have_count(0)
    expect(page.get_by_text(key[:13] + "…")).to_be_visible()
    assert key not in page.content()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Revoked the key")).to_be_visible()
    assert api.get("/v1/clips").status_code == 401


def test_a_brand_kit_with_a_logo_shows_its_caption_style_live(page, member, tmp_path, shoot):
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (120, 60), (220, 40, 90, 255)).save(logo)
    sign_in(page, member)
    page.get_by_role("navigation").get_by_role("link", name="Brand kits").click()
    page.get_by_role("link", name="New brand kit").click()
    page.get_by_label("Name").fill("Acme bold")
    page.get_by_label("Logo").set_input_files(str(logo))
    sample = page.locator("#sample-text")
    page.get_by_label("Caption colour").fill("#00ff00")
    expect(sample).to_have_css("color", "rgb(0, 255, 0)")
    page.get_by_label("Uppercase captions").check()
    expect(sample).to_have_css("text-transform", "uppercase")
    page.get_by_label("Caption position").select_option("top")
    expect(page.locator("#sample-frame")).to_have_attribute("data-position", "top")
    page.get_by_label("Default brand kit").check()
    shoot(page, "brand-kit-form")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the brand kit Acme bold.")).to_be_visible()
    kit = BrandKit.objects.get(team=member.team)
    assert kit.is_default and kit.logo.name.endswith(".png")
    assert kit.caption_style["textColor"] == "#00FF00" and kit.caption_style["uppercase"]
    # The New clips form starts with the default kit.
    page.goto("/clips/new/")
    expect(page.get_by_label("Brand kit")).to_have_value(kit.pk)


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Receiver.received.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_a_webhook_endpoint_shows_its_secret_once_and_its_deliveries(
    page, member, receiver, background_jobs, shoot
):
    sign_in(page, member)
    page.get_by_role("navigation").get_by_role("link", name="Webhooks").click()
    page.get_by_label("Endpoint URL").fill(receiver)
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_label("Signing secret").input_value()
    endpoint = WebhookEndpoint.objects.get(team=member.team)
    assert secret == endpoint.secret and secret.startswith("whsec_")
    page.get_by_role("link", name=re.compile(r"127\.0\.0\.1")).click()
    test_event = page.get_by_role("button", name="Send a test event")
    expect(test_event).to_be_visible()  # the endpoint's page has come
    assert secret not in page.content()
    test_event.click()
    # The form's answer is a redirect back here: reload only once that page has come.
    expect(page.get_by_text("A test event is on its way.")).to_be_visible()
    background_jobs.wait_idle(30)
    page.reload()
    expect(page.get_by_role("cell", name="webhook.test")).to_be_visible()
    expect(page.get_by_text("succeeded")).to_be_visible()
    page.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_text("Sending webhook.test again.")).to_be_visible()
    background_jobs.wait_idle(30)
    assert len(_Receiver.received) == 2
    assert WebhookDelivery.objects.get().attempts == 2
    shoot(page, "webhook-deliveries")
    assert axe_violations(page) == []


def test_usage_shows_clips_and_render_minutes_against_the_limits(page, member, shoot):
    from projects.models import MonthlyUsage, month_start

    member.team.monthly_clip_quota = 20
    member.team.monthly_render_minutes = 60
    member.team.save()
    MonthlyUsage.objects.create(
        team=member.team, month=month_start(), clips_created=5, render_seconds=900
    )
    sign_in(page, member)
    page.get_by_role("navigation").get_by_role("link", name="Usage").click()
    clips = page.get_by_role("progressbar", name="Clips this month")
    minutes = page.get_by_role("progressbar", name="Render minutes this month")
    expect(clips).to_have_attribute("aria-valuenow", "25")
    expect(minutes).to_have_attribute("aria-valuenow", "25")
    expect(page.get_by_text("5 of 20 clips")).to_be_visible()
    expect(page.get_by_text("15 of 60 minutes")).to_be_visible()
    shoot(page, "usage")
    assert axe_violations(page) == []


def _pages(clip, kit, endpoint):
    return {
        "projects": "/projects/",
        "project": f"/projects/{clip.project_id}/",
        "new-clips": "/clips/new/",
        "job": f"/jobs/{clip.job_id}/",
        "clip": f"/clips/{clip.pk}/",
        "api-keys": "/api-keys/",
        "brand-kits": "/brand-kits/",
        "brand-kit": f"/brand-kits/{kit.pk}/",
        "brand-kit-new": "/brand-kits/new/",
        "webhooks": "/webhooks/",
        "webhook": f"/webhooks/{endpoint.pk}/",
        "usage": "/usage/",
        "password-change": "/accounts/password/",
    }


def test_every_page_fits_a_phone_and_passes_axe(browser, live_server, member, shoot):
    clip = make_ready_clip(member.team, name="A long title that wraps on a narrow phone screen")
    kit = BrandKit.objects.create(team=member.team, name="Kit")
    endpoint = WebhookEndpoint.objects.create(
        team=member.team, url="https://hooks.example.com/a/very/long/path/for/clypai", events=["*"]
    )
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    try:
        for name, url in [
            ("login", "/accounts/login/"),
            ("password-reset", "/accounts/password/reset/"),
        ]:
            page.goto(url)
            assert no_sideways_scroll(page), name
            assert axe_violations(page) == [], name
            shoot(page, f"phone-{name}")
        sign_in(page, member)
        for name, url in _pages(clip, kit, endpoint).items():
            page.goto(url)
            expect(page.get_by_role("main")).to_be_visible()
            assert no_sideways_scroll(page), name
            assert axe_violations(page) == [], name
            shoot(page, f"phone-{name}")
    finally:
        context.close()


def test_another_teams_objects_are_not_found_in_the_browser(page, member, outsider, shoot):
    clip = make_ready_clip(member.team)
    kit = BrandKit.objects.create(team=member.team, name="Kit")
    sign_in(page, outsider)
    for url in (
        f"/clips/{clip.pk}/",
        f"/jobs/{clip.job_id}/",
        f"/projects/{clip.project_id}/",
        f"/brand-kits/{kit.pk}/",
        f"/clips/{clip.pk}/preview.mp4",
    ):
        response = page.goto(url)
        assert response.status == 404, url
    page.goto(f"/clips/{clip.pk}/")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    shoot(page, "other-team-404")
