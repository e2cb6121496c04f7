"""The dashboard in Chromium, managing a team's things: projects made, renamed and
deleted; the current team switched in the nav; webhook endpoints edited, their secret
rotated and deleted. Each page at a phone's width and under axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from brandkits.models import BrandKit
from projects.models import Project
from projects.services import api_key_create, membership_add
from webhooks.models import WebhookEndpoint

from .conftest import axe_violations, make_ready_clip, no_sideways_scroll, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _phone(browser, live_server):
    return browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )


def test_a_member_creates_renames_and_deletes_a_project(page, member, shoot):
    clip = make_ready_clip(member.team, name="Why we ship on Fridays")
    sign_in(page, member)
    page.get_by_role("navigation").get_by_role("link", name="Projects").click()
    page.get_by_label("Name").fill("Launch week")
    page.get_by_label("Description").fill("Clips for the launch posts")
    shoot(page, "projects")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Created the project Launch week.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Launch week")
    expect(page.get_by_text("No clips in this project yet.")).to_be_visible()

    page.get_by_label("Name").fill("Launch week, 2026")
    page.get_by_role("button", name="Save project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Launch week, 2026")
    project = Project.objects.get(team=member.team, name="Launch week, 2026")
    assert project.description == "Clips for the launch posts"

    # A project with clips keeps them: its gallery, and no deleting it.
    page.goto(f"/projects/{clip.project_id}/")
    gallery = page.get_by_role("article")
    expect(gallery).to_have_count(1)
    expect(gallery.get_by_role("heading", name="Why we ship on Fridays")).to_be_visible()
    expect(gallery.get_by_text("Score", exact=True)).to_be_visible()
    expect(page.get_by_text("cannot be deleted")).to_be_visible()
    expect(page.get_by_role("button", name="Delete project")).to_have_count(0)
    shoot(page, "project-with-clips")
    assert axe_violations(page) == []

    # Deleting asks first: dismissed, nothing happens; accepted, it is gone.
    page.goto(f"/projects/{project.pk}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete project").click()
    page.wait_for_timeout(300)
    assert Project.objects.filter(pk=project.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete project").click()
    expect(page.get_by_text("Deleted the project Launch week, 2026.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/projects/$"))
    assert not Project.objects.filter(pk=project.pk).exists()

    # A clip is deleted from its page (Edit), after a question; its project's gallery empties.
    page.goto(f"/projects/{clip.project_id}/")
    page.get_by_role("article").get_by_role("link", name="Edit").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete clip").click()
    expect(page.get_by_text("Deleted the clip Why we ship on Fridays.")).to_be_visible()
    expect(page.get_by_role("article")).to_have_count(0)
    expect(page.get_by_text("No clips in this project yet.")).to_be_visible()


def test_a_clip_is_moved_to_another_project_of_the_team(
    browser, live_server, member, outsider, shoot
):
    clip = make_ready_clip(member.team, name="Why we ship on Fridays")
    default = clip.project
    launch = Project.objects.create(team=member.team, name="Launch week")
    Project.objects.create(team=outsider.team, name="Globex launch")
    context = _phone(browser, live_server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, member)
        page.goto(f"/projects/{default.pk}/")
        page.get_by_role("article").get_by_role("link", name="Edit").click()
        select = page.get_by_label("Project", exact=True)
        expect(select.locator("option")).to_have_text(["Default project", "Launch week"])
        expect(select.locator("option:checked")).to_have_text("Default project")
        select.select_option(label="Launch week")
        page.get_by_role("button", name="Move", exact=True).click()
        expect(page.get_by_text("Moved the clip to Launch week.")).to_be_visible()
        expect(page).to_have_url(re.compile(rf"/clips/{clip.pk}/$"))
        expect(page.get_by_label("Project", exact=True).locator("option:checked")).to_have_text(
            "Launch week"
        )
        assert no_sideways_scroll(page)
        shoot(page, "phone-clip-moved")
        assert axe_violations(page) == []

        # The crumb leads to its new project, whose gallery now holds it; the old one's not.
        page.get_by_role("link", name="Launch week").click()
        expect(page).to_have_url(re.compile(rf"/projects/{launch.pk}/$"))
        gallery = page.get_by_role("article")
        expect(gallery.get_by_role("heading")).to_have_text("Why we ship on Fridays")
        page.goto(f"/projects/{default.pk}/")
        expect(page.get_by_role("article")).to_have_count(0)
        clip.refresh_from_db()
        assert clip.project_id == launch.pk
        assert page.request.get(f"/v1/clips/{clip.pk}").json()["data"]["projectId"] == launch.pk
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"/clips/{clip.pk}/")
        shoot(page, "clip-move-desktop")
        assert axe_violations(page) == []
    finally:
        context.close()


def test_a_member_of_two_teams_switches_and_never_sees_the_other_teams_things(
    browser, live_server, member, outsider, shoot
):
    membership_add(team=outsider.team, user=member.user)
    acme_clip = make_ready_clip(member.team, name="Acme clip")
    globex_clip = make_ready_clip(outsider.team, name="Globex clip")
    BrandKit.objects.create(team=member.team, name="Acme kit")
    BrandKit.objects.create(team=outsider.team, name="Globex kit")
    api_key_create(team=member.team, name="Acme key")
    api_key_create(team=outsider.team, name="Globex key")
    Project.objects.create(team=member.team, name="Acme launch")
    Project.objects.create(team=outsider.team, name="Globex launch")
    context = _phone(browser, live_server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, member)
        team = page.get_by_role("navigation").get_by_label("Team")
        expect(team.locator("option:checked")).to_have_text("Acme")
        pages = ("/projects/", "/brand-kits/", "/api-keys/", f"/projects/{acme_clip.project_id}/")
        for url in pages:
            page.goto(url)
            expect(page.get_by_role("main")).to_contain_text("Acme")
            expect(page.get_by_role("main")).not_to_contain_text("Globex")
        assert page.goto(f"/clips/{globex_clip.pk}/").status == 404
        page.goto("/brand-kits/")
        shoot(page, "phone-team-acme")
        assert no_sideways_scroll(page)
        assert axe_violations(page) == []

        team.select_option(label="Globex")
        page.get_by_role("navigation").get_by_role("button", name="Switch").click()
        expect(page.get_by_text("You are working in Globex.")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/brand-kits/$"))  # the same page, Globex's
        expect(team.locator("option:checked")).to_have_text("Globex")
        for url in ("/projects/", "/brand-kits/", "/api-keys/"):
            page.goto(url)
            expect(page.get_by_role("main")).to_contain_text("Globex")
            expect(page.get_by_role("main")).not_to_contain_text("Acme")
        page.goto(f"/projects/{globex_clip.project_id}/")
        expect(page.get_by_role("article").get_by_role("heading")).to_have_text("Globex clip")
        assert page.goto(f"/clips/{acme_clip.pk}/").status == 404
        # The /v1 API, in the same session, follows the chosen team.
        listed = page.request.get("/v1/clips").json()["data"]
        assert [c["id"] for c in listed] == [globex_clip.pk]
        page.goto("/projects/")
        assert no_sideways_scroll(page)
        shoot(page, "phone-team-globex")
        assert axe_violations(page) == []
        page.set_viewport_size({"width": 1280, "height": 800})
        shoot(page, "team-switch-desktop")
    finally:
        context.close()


def test_a_webhook_endpoint_is_edited_its_secret_rotated_and_it_is_deleted(
    page, member, settings, shoot
):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    endpoint = WebhookEndpoint.objects.create(
        team=member.team, url="http://127.0.0.1:9/hook", events=["*"]
    )
    old_secret = endpoint.secret
    sign_in(page, member)
    page.get_by_role("navigation").get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="http://127.0.0.1:9/hook").click()

    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/choppity")
    page.get_by_label("Format").select_option("choppity")
    page.get_by_label("All events").uncheck()
    page.get_by_label("clip.completed").check()  # one Choppity's format does not send
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_text(re.compile(r'Unknown event type "clip.completed"'))).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("clip.completed").uncheck()
    page.get_by_label("job.done").check()
    page.get_by_label("render.error").check()
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_text("Saved the endpoint.")).to_be_visible()
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.format, endpoint.events) == (
        "http://127.0.0.1:9/choppity",
        "choppity",
        ["job.done", "render.error"],
    )
    expect(page.get_by_label("Format")).to_have_value("choppity")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate secret").click()
    secret = page.get_by_label("Signing secret").input_value()
    endpoint.refresh_from_db()
    assert secret == endpoint.secret != old_secret and endpoint.previous_secret == old_secret
    shoot(page, "webhook-rotated")
    assert axe_violations(page) == []
    page.reload()  # shown once
    expect(page.get_by_label("Signing secret")).to_have_count(0)
    assert secret not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_text("Deleted the endpoint http://127.0.0.1:9/choppity.")).to_be_visible()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
