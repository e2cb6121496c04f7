"""Staff in the Django admin, in Chromium: Re-run a failed clip, and it completes."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files import File
from playwright.sync_api import expect

from clips.models import Clip
from clips.services import upload_create
from projects.models import MonthlyUsage
from projects.services import default_project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_staff_re_run_a_failed_clip_which_completes_and_counts_again(
    page, member, superuser, background_jobs, shared_media, shoot
):
    path = shared_media / "talking_head/grid/lbax4n.mpg"
    with open(path, "rb") as fh:
        upload = upload_create(
            team=member.team,
            file=File(fh, name=path.name),
            filename=path.name,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        )
    clip = Clip.objects.create(
        team=member.team,
        project=default_project(team=member.team),
        upload=upload,
        name="Lost to a dead worker",
        status=Clip.Status.FAILED,
        error="Clip generation failed: its worker stopped 3 times",
        error_code="processing_failed",
        attempts=3,
        usage_refunded=True,  # its failure gave its generation back
    )

    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("s3cret-admin-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="RQ queues, workers and failed tasks")).to_be_visible()
    page.goto("/admin/clips/clip/?status__exact=failed")
    row = page.get_by_role("row").filter(has_text="Lost to a dead worker")
    expect(row).to_contain_text("stopped 3 times")  # status, stage and error in the list
    row.get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option(label="Re-run")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("Queued 1 again.")).to_be_visible()
    shoot(page, "admin-rerun")

    assert background_jobs.wait_idle(240)
    clip.refresh_from_db()
    assert clip.status == Clip.Status.COMPLETED, clip.error
    assert clip.video and clip.error == ""
    assert MonthlyUsage.objects.get(team=member.team).clips_created == 1
    page.goto(f"/admin/clips/clip/{clip.pk}/change/")
    expect(page.locator("select[name=status]")).to_have_value("completed")
