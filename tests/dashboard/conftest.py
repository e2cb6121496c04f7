"""The dashboard's fixtures: members of two teams, and for the browser tests a live
server, background job threads and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from projects.services import member_create

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery-42"

# Playwright's sync API runs an event loop in this thread; the tests' own ORM calls are
# still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class Member:
    def __init__(self, email: str, team_name: str):
        self.email = email
        self.password = PASSWORD
        self.user, self.team, _ = member_create(email=email, password=PASSWORD, team_name=team_name)


@pytest.fixture
def member(db) -> Member:
    return Member("ann@example.com", "Acme")


@pytest.fixture
def outsider(db) -> Member:
    return Member("olga@example.org", "Globex")


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def background_jobs(settings, tmp_path):
    """Jobs run as on the embedded default: in background threads of this process (the
    live server's), tiny.en transcribing. Waits for them at the end, so none outlives
    the test's database."""
    from clypai import background

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_JOBS_THREADS = 2
    settings.CLYPAI_WHISPER_MODEL = "tiny.en"
    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    runner = background.BackgroundRunner(2, sweep_interval=None)
    previous, background._runner = background._runner, runner
    yield runner
    assert runner.wait_idle(300), "background jobs still running at the end of the test"
    background._runner = previous


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make install does)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: npm ci (make install does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot():
    """Save a full-page screenshot under tests/artifacts/ (ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def _shoot(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shoot


def sign_in(page, member: Member) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def axe_violations(page, *, impacts=("critical", "serious")) -> list[dict]:
    """axe-core's violations of these impacts on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def make_ready_clip(team, *, name: str = "A ready clip", preview: bytes = b"") -> object:
    """A done job of `team` with one completed clip that has a preview, a thumbnail and
    captions on storage (no media work: the bytes are given)."""
    from django.core.files.base import ContentFile

    from clips.models import Clip, Job, Source
    from projects.services import default_project

    project = default_project(team=team)
    source = Source.objects.create(
        sha256=(name.encode().hex() + "0" * 64)[:64],
        file="sources/x.mp4",
        size_bytes=1,
        duration=30.0,
    )
    job = Job.objects.create(
        team=team,
        project=project,
        source=source,
        source_url="https://example.com/talk.mp4",
        status=Job.Status.DONE,
        stage="done",
        progress=100,
    )
    clip = Clip.objects.create(
        team=team,
        project=project,
        job=job,
        rank=1,
        source=source,
        name=name,
        status=Clip.Status.COMPLETED,
        start_time=2.0,
        end_time=12.0,
        duration=10.0,
        score=0.82,
        aspect_ratio="9:16",
        source_url="https://example.com/talk.mp4",
        metadata={
            "reason": "Opens with a question",
            "scoreBreakdown": {"hook": 0.9, "coherence": 0.7},
        },
        words=[
            {"word": " Hello", "start": 2.1, "end": 2.5},
            {"word": " there", "start": 2.6, "end": 3.0},
        ],
    )
    clip.preview.save("p.mp4", ContentFile(preview or bytes(range(256)) * 40), save=False)
    clip.thumbnail.save("t.jpg", ContentFile(b"\xff\xd8\xff\xe0jpeg"), save=False)
    clip.captions.save(
        "c.srt", ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nHello\n"), save=False
    )
    clip.save()
    return clip
