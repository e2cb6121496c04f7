"""The dashboard's pages through Django's test client: what each answers, to whom."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.management import call_command
from django.urls import reverse

from brandkits.models import BrandKit
from clips.models import Export, Job
from projects.models import Membership
from webhooks.models import WebhookEndpoint

from .conftest import make_ready_clip

pytestmark = pytest.mark.django_db


def test_signed_out_every_page_leads_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"
    for url in ("/projects/", "/clips/new/", "/api-keys/", "/usage/", "/brand-kits/"):
        assert client.get(url)["Location"].startswith("/accounts/login/")


def test_createuser_makes_a_member_and_the_team_when_new(monkeypatch, client):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-pass-phrase-7\n"))
    out = io.StringIO()
    call_command("createuser", "Ann@Example.com", "--team", "Acme", "--password-stdin", stdout=out)
    assert out.getvalue().strip() == "ann@example.com: owner of Acme (new team)"
    monkeypatch.setattr("sys.stdin", io.StringIO("another-pass-phrase-8\n"))
    call_command(
        "createuser", "bob@example.com", "--team", "acme", "--password-stdin", stdout=io.StringIO()
    )
    roles = dict(Membership.objects.values_list("user__email", "role"))
    assert roles == {"ann@example.com": "owner", "bob@example.com": "member"}
    response = client.post(
        "/accounts/login/", {"username": "ANN@example.com", "password": "a-long-pass-phrase-7"}
    )
    assert response.status_code == 302 and response["Location"] == "/"


def _createuser(monkeypatch, *args, stdin: str = "") -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("createuser", *args, stdout=out)
    return out.getvalue().strip()


def _signs_in(client, email: str, password: str) -> bool:
    response = client.post("/accounts/login/", {"username": email, "password": password})
    return response.status_code == 302


def test_createuser_adds_an_existing_user_to_a_second_team(monkeypatch, client, member, outsider):
    out = _createuser(monkeypatch, member.email, "--team", "globex")
    assert out == "ann@example.com: member of Globex (added to the team)"
    out = _createuser(monkeypatch, member.email, "--team", "Initech", "--role", "member")
    assert out == "ann@example.com: member of Initech (new team, added to the team)"
    roles = dict(member.user.memberships.values_list("team__name", "role"))
    assert roles == {"Acme": "owner", "Globex": "member", "Initech": "member"}
    # the password stays what it was, and the team switch offers every team of theirs
    assert _signs_in(client, member.email, member.password)
    page = client.get("/projects/").content.decode()
    assert 'id="team-switch"' in page
    for name in ("Acme", "Globex", "Initech"):
        assert f">{name}</option>" in page
    response = client.post("/team/", {"team": outsider.team.pk}, follow=True)
    assert "You are working in Globex." in response.content.decode()


def test_createuser_changes_the_role_or_password_of_a_member_already_in_the_team(
    monkeypatch, client, member, outsider
):
    from django.core.management.base import CommandError

    _createuser(monkeypatch, member.email, "--team", "Globex")
    out = _createuser(monkeypatch, member.email, "--team", "Globex", "--role", "owner")
    assert out == "ann@example.com: owner of Globex (was member)"
    assert Membership.objects.get(user=member.user, team=outsider.team).role == "owner"
    with pytest.raises(CommandError, match="already owner of Globex: nothing to change"):
        _createuser(monkeypatch, member.email, "--team", "Globex", "--role", "owner")
    with pytest.raises(CommandError, match="already owner of Acme: nothing to change"):
        _createuser(monkeypatch, member.email, "--team", "Acme")

    out = _createuser(
        monkeypatch, member.email, "--team", "Acme", "--password-stdin", stdin="a-new-phrase-99\n"
    )
    assert out == "ann@example.com: owner of Acme (password changed)"
    assert not _signs_in(client, member.email, member.password)
    assert _signs_in(client, member.email, "a-new-phrase-99")
    with pytest.raises(CommandError, match="too short"):
        _createuser(monkeypatch, member.email, "--team", "Acme", "--password-stdin", stdin="x\n")


def test_createuser_needs_a_password_for_a_new_user(monkeypatch, member):
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="new user: give their password.*--password-stdin"):
        _createuser(monkeypatch, "new@example.com", "--team", "Acme")
    with pytest.raises(CommandError, match="no password on standard input"):
        _createuser(monkeypatch, "new@example.com", "--team", "Acme", "--password-stdin")
    assert not get_user_model().objects.filter(username="new@example.com").exists()
    assert list(member.team.memberships.values_list("user__email", flat=True)) == [member.email]


def test_a_wrong_password_answers_the_login_page_with_the_error(client, member):
    response = client.post("/accounts/login/", {"username": member.email, "password": "nope"})
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


def test_a_password_reset_sends_a_link_by_e_mail(client, member, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": member.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and "/accounts/reset/" in mailoutbox[0].body


def test_every_page_answers_a_member(signed_in, member):
    clip = make_ready_clip(member.team)
    kit = BrandKit.objects.create(team=member.team, name="Kit")
    endpoint = WebhookEndpoint.objects.create(
        team=member.team, url="https://example.com/hook", events=["*"]
    )
    for url in (
        "/projects/",
        f"/projects/{clip.project_id}/",
        "/clips/new/",
        f"/jobs/{clip.job_id}/",
        f"/clips/{clip.pk}/",
        "/api-keys/",
        "/brand-kits/",
        "/brand-kits/new/",
        f"/brand-kits/{kit.pk}/",
        "/webhooks/",
        f"/webhooks/{endpoint.pk}/",
        "/usage/",
        "/accounts/password/",
    ):
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert b"<main" in response.content and b"<nav" in response.content, url


def test_another_teams_pages_and_files_answer_404(client, member, outsider):
    clip = make_ready_clip(member.team)
    kit = BrandKit.objects.create(team=member.team, name="Kit")
    export = Export.objects.create(
        clip=clip, format="mp4", quality="low", status=Export.Status.COMPLETED
    )
    client.force_login(outsider.user)
    for url in (
        f"/projects/{clip.project_id}/",
        f"/jobs/{clip.job_id}/",
        f"/jobs/{clip.job_id}/status",
        f"/clips/{clip.pk}/",
        f"/clips/{clip.pk}/preview.mp4",
        f"/clips/{clip.pk}/thumbnail.jpg",
        f"/clips/{clip.pk}/captions.srt",
        f"/exports/{export.pk}/download",
        f"/brand-kits/{kit.pk}/",
        f"/brand-kits/{kit.pk}/logo",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/clips/{clip.pk}/edit", {"start": 1, "end": 5}).status_code == 404


def test_a_preview_answers_a_range_with_206(signed_in, member):
    clip = make_ready_clip(member.team)
    size = clip.preview.size
    url = f"/clips/{clip.pk}/preview.mp4"
    whole = signed_in.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    part = signed_in.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{size}"
    assert b"".join(part.streaming_content) == bytes(range(100, 200))
    tail = signed_in.get(url, HTTP_RANGE="bytes=-10")
    assert tail["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert signed_in.get(url, HTTP_RANGE=f"bytes={size}-").status_code == 416


def test_an_export_downloads_as_an_attachment(signed_in, member):
    from django.core.files.base import ContentFile

    clip = make_ready_clip(member.team, name="Big idea")
    export = Export.objects.create(
        clip=clip, format="mp4", quality="high", status=Export.Status.COMPLETED
    )
    export.file.save("x.mp4", ContentFile(b"0123456789"))
    response = signed_in.get(f"/exports/{export.pk}/download")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="Big idea-high.mp4"')


def test_new_clips_answers_at_once_with_a_queued_job(
    signed_in, member, settings, shared_media, django_capture_on_commit_callbacks
):
    """On the embedded default the job waits for a background thread: the request only
    records it (nothing of the pipeline runs inside it)."""
    from clypai import background

    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_JOBS_THREADS = 2
    release = threading.Event()
    runner = background.BackgroundRunner(1)
    previous, background._runner = background._runner, runner
    runner.submit("busy", release.wait, 30)  # its one thread is busy: the job waits
    try:
        with (
            open(shared_media / "talking_head/grid/bbaf2n.mpg", "rb") as fh,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = signed_in.post(
                reverse("dashboard:clips_new"),
                {
                    "video_file": fh,
                    "aspect_ratio": "9:16",
                    "project": member.team.projects.get().pk,
                    "layout": "auto",
                    "captions": "on",
                },
            )
        job = Job.objects.get(team=member.team)
        assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
        assert job.status == Job.Status.QUEUED
        assert runner.holds(str(job.pk))
    finally:
        release.set()
        background._runner = previous


def test_the_new_clips_form_names_what_is_missing(signed_in):
    response = signed_in.post(reverse("dashboard:clips_new"), {"aspect_ratio": "9:16"})
    assert response.status_code == 400
    assert "Choose a video file or give a video URL." in response.content.decode()


def test_the_format_select_offers_the_timelines(signed_in, member):
    clip = make_ready_clip(member.team, name="Timeline")
    page = signed_in.get(f"/clips/{clip.pk}/").content.decode()
    for value, label in (
        ("fcpxml", "Final Cut Pro XML timeline (zip)"),
        ("otio", "OpenTimelineIO timeline (zip)"),
        ("edl", "EDL timeline, CMX 3600 (zip)"),
        ("mp4", "MP4 video"),
    ):
        assert f'<option value="{value}"' in page and label in page


def test_a_timeline_export_linking_its_source_downloads_with_a_fresh_link(
    signed_in, member, settings
):
    import io
    import re
    import zipfile

    from django.core.files.base import ContentFile

    settings.CLYPAI_SIGNED_URL_TTL_SECONDS = 600
    clip = make_ready_clip(member.team, name="Big idea")
    export = Export.objects.create(
        clip=clip,
        format="fcpxml",
        quality="high",
        burn_captions=False,
        source_linked=True,
        status=Export.Status.COMPLETED,
    )
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w") as zf:
        zf.writestr(f"{clip.pk}.fcpxml", "<fcpxml/>")
        zf.writestr("README.txt", "old link")
    export.file.save("x.zip", ContentFile(stored.getvalue()))
    assert export.file.name.endswith(".zip")

    response = signed_in.get(f"/exports/{export.pk}/download")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="Big idea-fcpxml.zip"'
    package = zipfile.ZipFile(io.BytesIO(response.content))
    assert package.read(f"{clip.pk}.fcpxml") == b"<fcpxml/>"
    readme = package.read("README.txt").decode()
    assert "old link" not in readme and "media/talk.mp4" in readme
    assert re.search(r"^    http\S+/files/\S+$", readme, re.M)
    assert "(0 hours" not in readme and "10 minutes" in readme
