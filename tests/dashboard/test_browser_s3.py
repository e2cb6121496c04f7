"""New clips with files on S3, in Chromium: the browser PUTs the video straight to the
bucket by a presigned URL, with a progress bar, and the job starts from what it PUT. The
bucket is moto's S3 server answering browsers by the bucket's own CORS rules, the rules
`deploy/s3-cors.json` gives (README, "Files on S3"): without them the upload is refused
and the page says why."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from clips.models import Job
from tests.s3 import start_s3_server

from .conftest import ROOT, axe_violations, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VIDEO = "talking_head/grid/bbaf2n.mpg"
CORS_RULES = ROOT / "deploy" / "s3-cors.json"


@pytest.fixture(scope="module")
def browser_s3():
    """An S3 server of its own whose buckets answer browsers by their CORS rules only."""
    server, s3 = start_s3_server(bucket_cors=True)
    yield s3
    server.stop()


@pytest.fixture
def bucket(settings, media_root, browser_s3):
    """Files in a fresh bucket of that server, with no CORS rules yet."""
    from django.core.files.storage import default_storage
    from storages.backends.s3 import S3Storage

    name = browser_s3.create_bucket()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": browser_s3.storage_options(bucket=name, location="media"),
        },
    }
    assert isinstance(default_storage, S3Storage)
    return name


def _allow_site(s3, bucket: str, origin: str) -> None:
    """The documented CORS rules, with this site's origin in place of the example."""
    rules = json.loads(CORS_RULES.read_text())
    for rule in rules["CORSRules"]:
        rule["AllowedOrigins"] = [origin]
    s3.client().put_bucket_cors(Bucket=bucket, CORSConfiguration=rules)


def test_a_video_goes_straight_to_the_bucket_with_a_progress_bar_and_the_job_starts(
    page, member, bucket, browser_s3, live_server, background_jobs, shared_media, shoot
):
    sign_in(page, member)
    page.goto("/clips/new/")
    form = page.locator("form#new-clips")
    presign = form.get_attribute("data-presign")
    assert presign, "the form should PUT to the bucket when files live on S3"
    # A slow uplink (about 120 KB/s), so the bar is seen moving.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 120_000},
    )
    page.get_by_label("Video file").set_input_files(str(shared_media / VIDEO))
    page.get_by_label("Criteria").fill("colours and letters")

    # The bucket has no CORS rules: the browser may not PUT there, and the page says so.
    page.get_by_role("button", name="Create clips").click()
    expect(
        page.get_by_text(re.compile(r"the bucket may not allow uploads from this site"))
    ).to_be_visible()
    expect(page.get_by_role("button", name="Create clips")).to_be_enabled()
    assert Job.objects.count() == 0

    # With the documented rules for this site's origin, it may.
    _allow_site(browser_s3, bucket, live_server.url)
    page.get_by_role("button", name="Create clips").click()
    bar = page.locator("#upload-progress")
    seen = set()
    for _ in range(300):
        if "/jobs/" in page.url:
            break
        try:
            value = float(bar.get_attribute("value", timeout=1_000) or 0)
        except Exception:  # the job's page is replacing the form's
            break
        seen.add(value)
        if 10 <= value <= 90 and not (ROOT / "tests/artifacts/s3-upload-progress.png").exists():
            page.screenshot(path=str(ROOT / "tests/artifacts/s3-upload-progress.png"))
            expect(page.get_by_text(re.compile(r"Uploading: \d+%"))).to_be_visible()
            assert axe_violations(page) == []
        page.wait_for_timeout(100)
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+/$"), timeout=30_000)
    assert any(0 < v < 100 for v in seen), f"the bar never showed the upload moving: {seen}"
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    # The job took in the bytes the browser PUT: copied out of incoming/ to its upload.
    job = Job.objects.get(team=member.team)
    assert job.upload is not None and job.criteria == "colours and letters"
    key = f"media/{job.upload.file.name}"
    stored = browser_s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == (shared_media / VIDEO).read_bytes()
    assert not job.upload.file.name.startswith("incoming/")

    # The job starts and runs to its clips, from the bucket.
    progress = page.get_by_role("progressbar")
    expect(progress).to_have_attribute("aria-valuenow", re.compile(r"^\d{1,3}$"))
    expect(page.get_by_text("Done", exact=True)).to_be_visible(timeout=240_000)
    expect(page.get_by_role("article").first.locator("video[controls]")).to_be_visible()
    page.screenshot(path=str(ROOT / "tests" / "artifacts" / "s3-job-done.png"), full_page=True)
