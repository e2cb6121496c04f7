"""The dashboard's pages for projects, the current team and webhook endpoints, through
Django's test client: what each does, and that another team's things stay out of reach."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from brandkits.models import BrandKit
from clips.models import Job
from projects.models import ApiKey, Project
from projects.services import api_key_create, membership_add
from webhooks.models import WebhookEndpoint

from .conftest import make_ready_clip

pytestmark = pytest.mark.django_db


# Projects -------------------------------------------------------------------------------


def test_a_member_creates_renames_and_deletes_a_project(signed_in, member):
    response = signed_in.post("/projects/", {"name": "Podcast S2", "description": "Season two"})
    project = Project.objects.get(team=member.team, name="Podcast S2")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert project.description == "Season two"
    page = signed_in.get(f"/projects/{project.pk}/").content.decode()
    assert "Created the project Podcast S2." in page and "No clips in this project yet." in page

    response = signed_in.post(f"/projects/{project.pk}/edit", {"name": "Podcast, season 2"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.description) == ("Podcast, season 2", "")

    response = signed_in.post(f"/projects/{project.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/projects/"
    assert not Project.objects.filter(pk=project.pk).exists()


def test_a_project_form_names_what_is_missing(signed_in, member):
    response = signed_in.post("/projects/", {"name": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    project = member.team.projects.get()
    response = signed_in.post(f"/projects/{project.pk}/edit", {"name": "x" * 201})
    assert response.status_code == 400
    assert "at most 200 characters" in response.content.decode()
    assert Project.objects.get(pk=project.pk).name == project.name


def test_a_project_with_clips_or_jobs_or_the_default_one_stays(signed_in, member):
    clip = make_ready_clip(member.team)  # in the default project
    default = clip.project
    response = signed_in.post(f"/projects/{default.pk}/delete", follow=True)
    assert "default project cannot be deleted" in response.content.decode()
    other = Project.objects.create(team=member.team, name="Other")
    clip.project = other
    clip.save()
    response = signed_in.post(f"/projects/{other.pk}/delete", follow=True)
    assert "still has clips" in response.content.decode()
    clip.delete()
    # A job on its way holds the project too; once finished (its clips gone) it goes with it.
    Job.objects.filter(team=member.team).update(project=other, status=Job.Status.PROCESSING)
    response = signed_in.post(f"/projects/{other.pk}/delete", follow=True)
    assert "jobs in progress" in response.content.decode()
    assert Project.objects.filter(pk=other.pk).exists()
    Job.objects.filter(team=member.team).update(status=Job.Status.DONE)
    response = signed_in.post(f"/projects/{other.pk}/delete", follow=True)
    assert "Deleted the project Other." in response.content.decode()
    assert not Job.objects.filter(team=member.team).exists()


def test_a_project_page_shows_its_clip_gallery_and_new_clips_starts_with_it(signed_in, member):
    clip = make_ready_clip(member.team, name="Best moment")
    page = signed_in.get(f"/projects/{clip.project_id}/").content.decode()
    assert "<article" in page and "Best moment" in page
    assert f"/clips/{clip.pk}/preview.mp4" in page
    other = Project.objects.create(team=member.team, name="Other")
    form = signed_in.get(f"/clips/new/?project={other.pk}").content.decode()
    assert f'<option value="{other.pk}" selected>' in form


def test_another_teams_project_cannot_be_renamed_or_deleted(client, member, outsider):
    project = Project.objects.create(team=member.team, name="Secret")
    client.force_login(outsider.user)
    assert client.post(f"/projects/{project.pk}/edit", {"name": "Mine"}).status_code == 404
    assert client.post(f"/projects/{project.pk}/delete").status_code == 404
    assert Project.objects.get(pk=project.pk).name == "Secret"


# The current team -------------------------------------------------------------------------


@pytest.fixture
def two_teams(member, outsider):
    """Ann, a member of Acme, is also a member of Globex (Olga's team)."""
    membership_add(team=outsider.team, user=member.user)
    acme = {
        "clip": make_ready_clip(member.team, name="Acme clip"),
        "project": Project.objects.create(team=member.team, name="Acme launch"),
        "kit": BrandKit.objects.create(team=member.team, name="Acme kit"),
        "key": api_key_create(team=member.team, name="Acme key").api_key,
        "hook": WebhookEndpoint.objects.create(
            team=member.team, url="https://acme.example.com/hook", events=["*"]
        ),
    }
    globex = {
        "clip": make_ready_clip(outsider.team, name="Globex clip"),
        "project": Project.objects.create(team=outsider.team, name="Globex launch"),
        "kit": BrandKit.objects.create(team=outsider.team, name="Globex kit"),
        "key": api_key_create(team=outsider.team, name="Globex key").api_key,
        "hook": WebhookEndpoint.objects.create(
            team=outsider.team, url="https://globex.example.com/hook", events=["*"]
        ),
    }
    return acme, globex


def _everything_shown(client) -> str:
    pages = ["/projects/", "/brand-kits/", "/api-keys/", "/webhooks/", "/clips/new/", "/usage/"]
    return "".join(client.get(url).content.decode() for url in pages)


def _names(things: dict) -> list[str]:
    return [
        things["clip"].name,
        things["project"].name,
        things["kit"].name,
        things["key"].prefix,
        things["hook"].url,
    ]


def test_a_member_of_two_teams_sees_only_the_current_teams_things(signed_in, member, two_teams):
    acme, globex = two_teams
    shown = (
        _everything_shown(signed_in)
        + signed_in.get(f"/projects/{acme['clip'].project_id}/").content.decode()
    )
    assert all(name in shown for name in _names(acme))
    assert not any(name in shown for name in _names(globex))
    assert signed_in.get(f"/clips/{globex['clip'].pk}/").status_code == 404

    response = signed_in.post(
        "/team/", {"team": globex["clip"].team_id, "next": "/api-keys/"}, follow=True
    )
    assert response.redirect_chain == [("/api-keys/", 302)]
    assert "You are working in Globex." in response.content.decode()
    shown = (
        _everything_shown(signed_in)
        + signed_in.get(f"/projects/{globex['clip'].project_id}/").content.decode()
    )
    assert all(name in shown for name in _names(globex))
    assert not any(name in shown for name in _names(acme))
    for url in (
        f"/clips/{acme['clip'].pk}/",
        f"/clips/{acme['clip'].pk}/preview.mp4",
        f"/jobs/{acme['clip'].job_id}/",
        f"/projects/{acme['project'].pk}/",
        f"/brand-kits/{acme['kit'].pk}/",
        f"/webhooks/{acme['hook'].pk}/",
    ):
        assert signed_in.get(url).status_code == 404, url
    # Things made now belong to the current team.
    signed_in.post("/api-keys/", {"name": "made on Globex"})
    assert ApiKey.objects.get(name="made on Globex").team_id == globex["clip"].team_id
    # The /v1 API in the same session follows it too.
    api = APIClient()
    api.cookies = signed_in.cookies
    listed = api.get("/v1/clips").json()["data"]
    assert [c["id"] for c in listed] == [globex["clip"].pk]


def test_the_team_switch_is_offered_only_to_members_of_several_teams(signed_in, member, outsider):
    assert 'id="team-switch"' not in signed_in.get("/projects/").content.decode()
    membership_add(team=outsider.team, user=member.user)
    page = signed_in.get("/projects/").content.decode()
    assert 'id="team-switch"' in page and ">Globex</option>" in page


def test_a_team_the_member_is_not_in_cannot_be_chosen(signed_in, member, outsider):
    response = signed_in.post("/team/", {"team": outsider.team.pk}, follow=True)
    assert "Choose one of your teams." in response.content.decode()
    assert "Globex" not in signed_in.get("/projects/").content.decode()


def test_after_a_switch_a_page_of_the_team_left_leads_to_projects(signed_in, member, two_teams):
    acme, globex = two_teams
    response = signed_in.post(
        "/team/", {"team": globex["clip"].team_id, "next": f"/clips/{acme['clip'].pk}/"}
    )
    assert response["Location"] == "/projects/"
    response = signed_in.post(
        "/team/", {"team": member.team.pk, "next": "https://evil.example.com/api-keys/"}
    )
    assert response["Location"] == "/projects/"


# Webhook endpoints -----------------------------------------------------------------------


@pytest.fixture
def endpoint(member, settings):
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    return WebhookEndpoint.objects.create(
        team=member.team, url="http://127.0.0.1:9/hook", events=["*"]
    )


def test_an_endpoint_is_edited_url_events_format_and_enabled(signed_in, endpoint):
    response = signed_in.post(
        f"/webhooks/{endpoint.pk}/",
        {
            "url": "http://127.0.0.1:9/choppity",
            "description": "Choppity client",
            "format": "choppity",
            "events": ["job.done", "render.error"],
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.format, endpoint.events, endpoint.enabled) == (
        "http://127.0.0.1:9/choppity",
        "choppity",
        ["job.done", "render.error"],
        False,
    )
    assert endpoint.description == "Choppity client"


def test_an_endpoints_events_must_be_ones_its_format_sends(signed_in, endpoint):
    response = signed_in.post(
        f"/webhooks/{endpoint.pk}/",
        {"url": endpoint.url, "format": "choppity", "events": ["clip.completed"], "enabled": "on"},
    )
    assert response.status_code == 400
    assert "Unknown event type" in response.content.decode()
    endpoint.refresh_from_db()
    assert (endpoint.format, endpoint.events) == ("clypai", ["*"])


def test_an_endpoint_url_the_guard_refuses_is_named(signed_in, endpoint):
    response = signed_in.post(
        f"/webhooks/{endpoint.pk}/",
        {"url": "http://10.0.0.1/hook", "format": "clypai", "events": ["*"], "enabled": "on"},
    )
    assert response.status_code == 400
    assert "Webhook URL is not allowed" in response.content.decode()


def test_a_rotated_secret_is_shown_once_and_the_old_one_overlaps(signed_in, endpoint):
    old = endpoint.secret
    response = signed_in.post(f"/webhooks/{endpoint.pk}/rotate", follow=True)
    endpoint.refresh_from_db()
    page = response.content.decode()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in page and "shown only this once" in page
    assert response["Cache-Control"] == "no-store"
    assert endpoint.secret not in signed_in.get(f"/webhooks/{endpoint.pk}/").content.decode()


def test_an_endpoint_is_deleted(signed_in, endpoint):
    response = signed_in.post(f"/webhooks/{endpoint.pk}/delete", follow=True)
    assert response.redirect_chain == [("/webhooks/", 302)]
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_another_teams_endpoint_cannot_be_changed(client, endpoint, outsider):
    client.force_login(outsider.user)
    for url in ("", "rotate", "delete", "test"):
        assert client.post(f"/webhooks/{endpoint.pk}/{url}").status_code == 404, url
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, format="clypai").exists()


# Brand kits ------------------------------------------------------------------------------


def test_a_kit_with_a_font_the_form_does_not_offer_is_saved_with_the_default(signed_in, member):
    # A family that is neither a known caption font nor the kit's uploaded font is not a
    # caption font (issue 16, finding 9): the renderer draws the default, and the form
    # shows and saves the default rather than offer what the service refuses.
    kit = BrandKit.objects.create(
        team=member.team, name="Kit", caption_style={"fontFamily": "Liberation Sans"}
    )
    page = signed_in.get(f"/brand-kits/{kit.pk}/").content.decode()
    assert "Liberation Sans" not in page
    assert '<option value="DejaVu Sans" selected>' in page
    form = {
        "name": "Kit, renamed",
        "primary_color": "#FFFFFF",
        "accent_color": "#FFD60A",
        "font_family": "DejaVu Sans",
        "font_size": 64,
        "text_color": "#FFFFFF",
        "highlight_color": "#FFD60A",
        "outline_color": "#000000",
        "position": "bottom",
    }
    response = signed_in.post(f"/brand-kits/{kit.pk}/", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    kit.refresh_from_db()
    assert kit.name == "Kit, renamed" and kit.caption_style["fontFamily"] == "DejaVu Sans"
    # the unknown family itself is refused on its field
    refused = signed_in.post(f"/brand-kits/{kit.pk}/", {**form, "font_family": "Liberation Sans"})
    assert refused.status_code == 400
    assert refused.context["form"].errors["font_family"]


# Clips -----------------------------------------------------------------------------------


def test_a_clip_is_deleted_with_its_files_and_then_its_project_can_go(
    signed_in, member, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    project = Project.objects.create(team=member.team, name="Short-lived")
    clip = make_ready_clip(member.team, name="Gone soon")
    clip.project = project
    clip.save()
    Job.objects.filter(pk=clip.job_id).update(project=project)
    names = [clip.preview.name, clip.thumbnail.name, clip.captions.name]
    assert all(default_storage.exists(n) for n in names)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/clips/{clip.pk}/delete", follow=True)
    assert response.redirect_chain == [(f"/projects/{project.pk}/", 302)]
    assert "Deleted the clip Gone soon." in response.content.decode()
    assert not any(default_storage.exists(n) for n in names)
    response = signed_in.post(f"/projects/{project.pk}/delete", follow=True)
    assert "Deleted the project Short-lived." in response.content.decode()


def test_another_teams_clip_cannot_be_deleted(client, member, outsider):
    clip = make_ready_clip(member.team)
    client.force_login(outsider.user)
    assert client.post(f"/clips/{clip.pk}/delete").status_code == 404
    assert type(clip).objects.filter(pk=clip.pk).exists()


def test_a_clip_moves_to_another_project_of_the_team(signed_in, member):
    clip = make_ready_clip(member.team, name="Moving clip")
    old = clip.project
    target = Project.objects.create(team=member.team, name="Launch week")
    page = signed_in.get(f"/clips/{clip.pk}/").content.decode()
    assert '<label for="move-project">Project</label>' in page
    assert f'<option value="{target.pk}">Launch week</option>' in page
    assert f'<option value="{old.pk}" selected>' in page and ">Move</button>" in page

    response = signed_in.post(f"/clips/{clip.pk}/move", {"project": target.pk}, follow=True)
    assert response.redirect_chain == [(f"/clips/{clip.pk}/", 302)]
    assert "Moved the clip to Launch week." in response.content.decode()
    clip.refresh_from_db()
    assert clip.project_id == target.pk
    assert "Moving clip" in signed_in.get(f"/projects/{target.pk}/").content.decode()
    assert "Moving clip" not in signed_in.get(f"/projects/{old.pk}/").content.decode()
    # its job's page still lists it, and /v1 in the same session says where it is now
    assert "Moving clip" in signed_in.get(f"/jobs/{clip.job_id}/").content.decode()
    api = APIClient()
    api.cookies = signed_in.cookies
    assert api.get(f"/v1/clips/{clip.pk}").json()["data"]["projectId"] == target.pk
    assert [c["id"] for c in api.get(f"/v1/clips?projectId={old.pk}").json()["data"]] == []

    again = signed_in.post(f"/clips/{clip.pk}/move", {"project": target.pk}, follow=True)
    assert "The clip is already in Launch week." in again.content.decode()


def test_a_clip_is_not_moved_to_another_teams_project(client, member, outsider):
    clip = make_ready_clip(member.team)
    theirs = outsider.team.projects.get()
    client.force_login(member.user)
    assert client.post(f"/clips/{clip.pk}/move", {"project": theirs.pk}).status_code == 404
    assert client.post(f"/clips/{clip.pk}/move", {"project": "proj_nope"}).status_code == 404
    assert client.post(f"/clips/{clip.pk}/move", {}).status_code == 404
    # nor can the other team move this clip into its own project
    client.force_login(outsider.user)
    assert client.post(f"/clips/{clip.pk}/move", {"project": theirs.pk}).status_code == 404
    clip.refresh_from_db()
    assert clip.project.team_id == member.team.pk and clip.project.is_default


def test_the_move_service_refuses_another_teams_project(member, outsider):
    from clips.services import clip_move
    from clypai.api.errors import NotFound

    clip = make_ready_clip(member.team)
    with pytest.raises(NotFound):
        clip_move(clip=clip, project=outsider.team.projects.get())
    clip.refresh_from_db()
    assert clip.project.team_id == member.team.pk


def test_a_project_left_by_its_jobs_clips_is_deleted_and_the_moved_clips_stay(signed_in, member):
    first = Project.objects.create(team=member.team, name="First cut")
    second = Project.objects.create(team=member.team, name="Second home")
    clip = make_ready_clip(member.team, name="Survivor")
    type(clip).objects.filter(pk=clip.pk).update(project=first)
    Job.objects.filter(pk=clip.job_id).update(project=first)
    signed_in.post(f"/clips/{clip.pk}/move", {"project": second.pk})
    response = signed_in.post(f"/projects/{first.pk}/delete", follow=True)
    assert "Deleted the project First cut." in response.content.decode()
    # the finished job went along with its clip rather than taking it down with it
    clip.refresh_from_db()
    assert clip.project_id == second.pk
    assert Job.objects.get(pk=clip.job_id).project_id == second.pk
    assert "Survivor" in signed_in.get(f"/projects/{second.pk}/").content.decode()


def test_v1_keeps_to_its_document_and_does_not_move_a_clip(signed_in, member):
    # The /v1 document has no projectId change on PATCH /v1/clips/{id}: only the dashboard
    # moves clips; /v1 refuses the field as any unknown one.
    clip = make_ready_clip(member.team)
    target = Project.objects.create(team=member.team, name="Elsewhere")
    api = APIClient()
    api.cookies = signed_in.cookies
    response = api.patch(f"/v1/clips/{clip.pk}", {"projectId": target.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "projectId"
    clip.refresh_from_db()
    assert clip.project_id != target.pk
