"""The dashboard in Chromium, as a member uses it: sign in, upload a real video, watch
the job finish without reloading, play a preview, trim it, export and download."""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from clips.models import Clip, Job
from projects.services import api_key_create

from .conftest import axe_violations, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VIDEO = "talking_head/grid/bbaf2n.mpg"


def test_a_wrong_password_stays_on_the_login_page_with_the_error(page, member, shoot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    shoot(page, "login-error")
    assert axe_violations(page) == []


def test_a_member_uploads_a_video_and_watches_its_job_finish_then_trims_a_clip(
    page, member, background_jobs, shared_media, shoot, live_server
):
    sign_in(page, member)
    nav = page.get_by_role("navigation")
    for name in ("Projects", "New clips", "Brand kits", "API keys", "Webhooks", "Usage"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()

    nav.get_by_role("link", name="New clips", exact=True).click()
    expect(page).to_have_url(re.compile(r"/clips/new/$"))
    form = page.get_by_role("main")
    form.get_by_label("Video file").set_input_files(str(shared_media / VIDEO))
    form.get_by_label("Aspect ratio").select_option("1:1")
    form.get_by_label("Criteria").fill("the speaker's instructions")
    expect(form.get_by_label("Video URL")).to_be_visible()
    for label in ("Project", "Target length", "Language", "Brand kit", "Captions", "Layout"):
        expect(form.get_by_label(label, exact=True)).to_be_visible()
    shoot(page, "new-clips")
    assert axe_violations(page) == []
    form.get_by_role("button", name="Create clips").click()

    # The job page answers at once and follows the job without being reloaded.
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+/$"), timeout=20_000)
    job = Job.objects.get(team=member.team)
    assert (job.aspect_ratio, job.criteria) == ("1:1", "the speaker's instructions")
    page.evaluate("() => { window.notReloaded = true; }")
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^\d{1,3}$"))
    seen = set()
    for _ in range(600):
        seen.add(int(bar.get_attribute("aria-valuenow")))
        if page.get_by_text("Done", exact=True).is_visible():
            break
        page.wait_for_timeout(250)
    expect(page.get_by_text("Done", exact=True)).to_be_visible(timeout=180_000)
    assert page.evaluate("() => window.notReloaded === true")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert len(seen) >= 2, seen  # it moved while we watched

    article = page.get_by_role("article").first
    expect(article.get_by_role("heading")).to_be_visible()
    expect(article.get_by_text("Score", exact=True)).to_be_visible()
    video = article.locator("video[controls]")
    expect(video).to_be_visible()
    played = video.evaluate(
        """async v => { v.muted = true; await v.play();
             await new Promise(r => setTimeout(r, 700)); v.pause();
             return {t: v.currentTime, d: v.duration, w: v.videoWidth}; }"""
    )
    assert played["t"] > 0 and played["d"] > 0 and played["w"] > 0, played
    shoot(page, "job-done")
    assert axe_violations(page) == []

    # Edit: the clip page, trimmed past the suggestion's start, re-rendered.
    article.get_by_role("link", name="Edit").click()
    page.wait_for_url(re.compile(r"/clips/clip_\w+/$"))
    clip = Clip.objects.get(job=job, rank=1)
    shoot(page, "clip-before")
    assert axe_violations(page) == []
    new_start = round(clip.start_time + 0.5, 2)
    new_end = round(min(clip.end_time, clip.source.duration) - 0.25, 2)
    page.get_by_label("Start", exact=True).fill(f"{new_start}")
    page.get_by_label("End", exact=True).fill(f"{new_end}")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    background_jobs.wait_idle(120)
    expect(page.get_by_text("Rendering the preview again")).to_have_count(0, timeout=20_000)

    # The new times, through /v1 with a key of the same team.
    key = api_key_create(team=member.team, name="check").raw_key
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = api.get(f"/v1/clips/{clip.pk}").json()["data"]
    assert (body["startTime"], body["endTime"]) == (new_start, new_end)
    page.reload()
    duration = page.locator("video").first.evaluate(
        "async v => { if (v.readyState < 1) await new Promise(r => v.addEventListener("
        "'loadedmetadata', r, {once: true})); return v.duration; }"
    )
    assert duration == pytest.approx(new_end - new_start, abs=0.3)

    # Export, then download it as an attachment.
    page.get_by_label("Format").select_option("webm")
    page.get_by_label("Quality").select_option("low")
    page.get_by_label("Burn captions").check()
    page.get_by_role("button", name="Export", exact=True).click()
    download_link = page.get_by_role("link", name="Download")
    expect(download_link).to_be_visible(timeout=120_000)
    with page.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename.endswith("-low.webm")
    assert open(download.path(), "rb").read(4) == b"\x1a\x45\xdf\xa3"  # Matroska/WebM
    shoot(page, "clip-exported")
    assert axe_violations(page) == []

    # A timeline for an editor: a zip with the FCPXML, the SRT and the source.
    page.get_by_label("Format").select_option("fcpxml")
    page.get_by_role("button", name="Export", exact=True).click()
    row = page.locator("#export-list li", has_text="fcpxml")
    expect(row.get_by_role("link", name="Download")).to_be_visible(timeout=120_000)
    expect(row).to_contain_text("timeline zip")
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    assert info.value.suggested_filename.endswith("-fcpxml.zip")
    names = zipfile.ZipFile(info.value.path()).namelist()
    assert {f"{clip.pk}.fcpxml", f"{clip.pk}.srt", "README.txt"} <= set(names)
    assert any(n.startswith("media/") for n in names)
