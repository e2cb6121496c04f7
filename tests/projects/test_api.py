"""/v1/projects: create, list, get, update and delete a team's projects."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from projects.models import Project
from tests.factories import ClipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROJECT_FIELDS = {"id", "name", "description", "isDefault", "clipCount", "createdAt", "updatedAt"}
T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def error_of(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is False, body
    return body["error"]


def data_of(response, status_code: int = 200):
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is True, body
    return body["data"]


def create(api, body):
    return api.post("/v1/projects", body, format="json")


def dated_project(team, n: int, **fields) -> Project:
    project = ProjectFactory(team=team, id=f"proj_t{n:04d}", **fields)
    Project.objects.filter(pk=project.pk).update(
        created_at=T0 + timedelta(minutes=n), updated_at=T0 + timedelta(minutes=n)
    )
    project.refresh_from_db()
    return project


# Create ----------------------------------------------------------------------------


def test_it_creates_a_project(api, team):
    data = data_of(create(api, {"name": "Podcast S2", "description": "Season two"}), 201)
    assert set(data) == PROJECT_FIELDS
    assert re.fullmatch(r"proj_[A-Za-z0-9]{16}", data["id"])
    assert data["name"] == "Podcast S2"
    assert data["description"] == "Season two"
    assert data["isDefault"] is False
    assert data["clipCount"] == 0
    assert ISO_Z.match(data["createdAt"]) and ISO_Z.match(data["updatedAt"])
    row = Project.objects.get(pk=data["id"])
    assert row.team == team and row.name == "Podcast S2" and not row.is_default


def test_a_project_needs_no_description(api):
    data = data_of(create(api, {"name": "Webinars"}), 201)
    assert data["description"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "description": "d" * 5001}, "description"),
        ({"name": "ok", "isDefault": True}, "isDefault"),
        ({"name": "ok", "teamId": "team_x"}, "teamId"),
        ({"name": "ok", "colour": "red"}, "colour"),
    ],
)
def test_it_rejects_a_bad_project_naming_the_field(api, team, body, field):
    before = Project.objects.count()
    error = error_of(create(api, body), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert Project.objects.count() == before


def test_it_rejects_a_body_that_is_not_an_object(api):
    error = error_of(api.post("/v1/projects", data="[]", content_type="application/json"), 400)
    assert error["code"] == "invalid_request"


def test_a_created_project_belongs_to_the_callers_team_only(api, team, other_caller):
    data = data_of(create(api, {"name": "Mine"}), 201)
    assert Project.objects.get(pk=data["id"]).team_id == team.pk
    error = error_of(other_caller.client.get(f"/v1/projects/{data['id']}"), 404)
    assert error["code"] == "not_found"


# List ------------------------------------------------------------------------------


def test_it_lists_projects_with_the_default_one(api, team):
    created = data_of(create(api, {"name": "Shorts"}), 201)
    response = api.get("/v1/projects")
    body = response.json()
    assert set(body) == {"success", "data", "pagination"}
    assert body["pagination"] == {"hasMore": False, "nextCursor": None}
    by_id = {p["id"]: p for p in body["data"]}
    default = team.projects.get(is_default=True)
    assert set(by_id) == {default.pk, created["id"]}
    assert by_id[default.pk]["isDefault"] is True
    assert by_id[default.pk]["name"] == "Default project"
    assert by_id[created["id"]]["isDefault"] is False
    # Newest first by default.
    assert [p["id"] for p in body["data"]] == [created["id"], default.pk]


def test_it_pages_through_projects_like_clips(api, team):
    Project.objects.filter(team=team).update(created_at=T0 - timedelta(days=1))
    projects = [dated_project(team, n) for n in range(7)]
    default = team.projects.get(is_default=True)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sortBy": "createdAt", "sortOrder": "asc"}
        if cursor:
            params["cursor"] = cursor
        body = api.get("/v1/projects", params).json()
        assert len(body["data"]) <= 3
        seen += [p["id"] for p in body["data"]]
        if not body["pagination"]["hasMore"]:
            assert body["pagination"]["nextCursor"] is None
            break
        cursor = body["pagination"]["nextCursor"]
    assert seen == [default.pk] + [p.pk for p in projects]


def test_it_sorts_projects_by_name(api, team):
    team.projects.filter(is_default=True).update(name="mango")
    for n, name in enumerate(["pear", "apple", "kiwi", "apple"]):
        dated_project(team, n, name=name)
    names = [
        p["name"]
        for p in api.get("/v1/projects", {"sortBy": "name", "sortOrder": "asc"}).json()["data"]
    ]
    assert names == ["apple", "apple", "kiwi", "mango", "pear"]
    items = api.get("/v1/projects", {"sortBy": "name", "sortOrder": "asc", "limit": 1}).json()
    second = api.get(
        "/v1/projects",
        {
            "sortBy": "name",
            "sortOrder": "asc",
            "limit": 1,
            "cursor": items["pagination"]["nextCursor"],
        },
    ).json()
    assert [items["data"][0]["id"], second["data"][0]["id"]] == ["proj_t0001", "proj_t0003"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"sortBy": "duration"}, "sortBy"),
        ({"sortOrder": "sideways"}, "sortOrder"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_it_rejects_bad_list_parameters(api, params, field):
    error = error_of(api.get("/v1/projects", params), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == field


def test_a_cursor_made_for_another_sort_is_refused(api, team):
    for n in range(3):
        dated_project(team, n)
    cursor = api.get("/v1/projects", {"limit": 1, "sortBy": "name"}).json()["pagination"][
        "nextCursor"
    ]
    error = error_of(api.get("/v1/projects", {"limit": 1, "cursor": cursor}), 400)
    assert error["field"] == "cursor"


def test_the_list_counts_each_projects_clips(api, team, other_caller):
    busy = ProjectFactory(team=team)
    empty = ProjectFactory(team=team)
    ClipFactory.create_batch(3, team=team, project=busy)
    ClipFactory(team=team)  # in the default project
    items = {p["id"]: p["clipCount"] for p in api.get("/v1/projects").json()["data"]}
    default = team.projects.get(is_default=True)
    assert items == {busy.pk: 3, empty.pk: 0, default.pk: 1}


def test_the_list_never_shows_another_teams_projects(api, team, other_caller):
    theirs = ProjectFactory(team=other_caller.team, name="Secret")
    ids = {p["id"] for p in api.get("/v1/projects", {"limit": 100}).json()["data"]}
    assert theirs.pk not in ids
    assert other_caller.team.projects.get(is_default=True).pk not in ids
    assert ids == set(team.projects.values_list("id", flat=True))


# Get -------------------------------------------------------------------------------


def test_it_gets_a_project_with_its_clip_count(api, team):
    project = ProjectFactory(team=team, name="Launch", description="Launch week")
    ClipFactory.create_batch(2, team=team, project=project)
    data = data_of(api.get(f"/v1/projects/{project.pk}"))
    assert data["id"] == project.pk
    assert data["name"] == "Launch"
    assert data["description"] == "Launch week"
    assert data["isDefault"] is False
    assert data["clipCount"] == 2


def test_a_new_clip_counts_in_its_project(api, team):
    project = data_of(create(api, {"name": "Clips here"}), 201)
    response = api.post(
        "/v1/clips",
        {"projectId": project["id"], "sourceVideoUrl": "https://example.com/a.mp4"},
        format="json",
    )
    assert response.status_code == 201
    assert data_of(api.get(f"/v1/projects/{project['id']}"))["clipCount"] == 1


def test_an_unknown_project_is_not_found(api):
    error = error_of(api.get("/v1/projects/proj_doesnotexist00"), 404)
    assert error == {"code": "not_found", "message": "Project not found"}


def test_an_id_with_a_nul_is_not_found(api):
    assert error_of(api.get("/v1/projects/proj_%00"), 404)["code"] == "not_found"


# Update ----------------------------------------------------------------------------


def test_it_updates_only_the_fields_given(api, team):
    project = ProjectFactory(team=team, name="Old name", description="Keep me")
    data = data_of(api.patch(f"/v1/projects/{project.pk}", {"name": "New name"}, format="json"))
    assert data["name"] == "New name"
    assert data["description"] == "Keep me"
    project.refresh_from_db()
    assert (project.name, project.description) == ("New name", "Keep me")

    data = data_of(api.patch(f"/v1/projects/{project.pk}", {"description": ""}, format="json"))
    assert data["name"] == "New name"
    assert data["description"] == ""


def test_an_update_moves_updated_at(api, team):
    project = dated_project(team, 1)
    data = data_of(api.patch(f"/v1/projects/{project.pk}", {"name": "Renamed"}, format="json"))
    assert data["createdAt"] == "2024-01-15T10:31:00Z"
    assert data["updatedAt"] > "2024-01-15T10:31:00Z"


def test_an_update_keeps_the_clip_count(api, team):
    project = ProjectFactory(team=team)
    ClipFactory.create_batch(2, team=team, project=project)
    data = data_of(api.patch(f"/v1/projects/{project.pk}", {"name": "x"}, format="json"))
    assert data["clipCount"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"isDefault": True}, "isDefault"),
        ({"id": "proj_other"}, "id"),
    ],
)
def test_it_rejects_a_bad_update_and_changes_nothing(api, team, body, field):
    project = ProjectFactory(team=team, name="Stays")
    error = error_of(api.patch(f"/v1/projects/{project.pk}", body, format="json"), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    project.refresh_from_db()
    assert project.name == "Stays" and not project.is_default


def test_the_default_project_can_be_renamed(api, team):
    default = team.projects.get(is_default=True)
    data = data_of(api.patch(f"/v1/projects/{default.pk}", {"name": "Inbox"}, format="json"))
    assert data["name"] == "Inbox" and data["isDefault"] is True


# Delete ----------------------------------------------------------------------------


def test_it_deletes_an_empty_project(api, team):
    project = ProjectFactory(team=team)
    response = api.delete(f"/v1/projects/{project.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"id": project.pk, "deleted": True}}
    assert not Project.objects.filter(pk=project.pk).exists()
    assert error_of(api.get(f"/v1/projects/{project.pk}"), 404)["code"] == "not_found"


def test_it_keeps_the_default_project(api, team):
    default = team.projects.get(is_default=True)
    error = error_of(api.delete(f"/v1/projects/{default.pk}"), 409)
    assert error["code"] == "project_is_default"
    assert error["message"]
    assert Project.objects.filter(pk=default.pk).exists()


def test_it_keeps_a_project_with_clips(api, team):
    project = ProjectFactory(team=team)
    clips = ClipFactory.create_batch(2, team=team, project=project)
    error = error_of(api.delete(f"/v1/projects/{project.pk}"), 409)
    assert error["code"] == "project_not_empty"
    assert error["details"] == {"clipCount": 2}
    assert Project.objects.filter(pk=project.pk).exists()
    assert project.clips.count() == len(clips)


def test_a_job_in_progress_keeps_its_project_and_a_finished_one_goes_with_it(api, team):
    from clips.models import Job

    project = ProjectFactory(team=team)
    job = Job.objects.create(team=team, project=project, source_url="https://example.com/a.mp4")
    error = error_of(api.delete(f"/v1/projects/{project.pk}"), 409)
    assert error["code"] == "project_not_empty"
    assert error["details"] == {"clipCount": 0, "jobCount": 1}
    assert Project.objects.filter(pk=project.pk).exists()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.ERROR)
    assert api.delete(f"/v1/projects/{project.pk}").status_code == 200
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Job.objects.filter(pk=job.pk).exists()


def test_a_project_whose_clips_were_deleted_can_go(api, team):
    project = ProjectFactory(team=team)
    clip = ClipFactory(team=team, project=project)
    assert api.delete(f"/v1/projects/{project.pk}").status_code == 409
    assert api.delete(f"/v1/clips/{clip.pk}").status_code == 200
    assert api.delete(f"/v1/projects/{project.pk}").status_code == 200


# Another team ----------------------------------------------------------------------


def test_another_teams_project_is_not_found_everywhere(api, other_caller):
    project = ProjectFactory(team=other_caller.team, name="Theirs")
    for response in (
        api.get(f"/v1/projects/{project.pk}"),
        api.patch(f"/v1/projects/{project.pk}", {"name": "Mine now"}, format="json"),
        api.delete(f"/v1/projects/{project.pk}"),
    ):
        assert error_of(response, 404) == {"code": "not_found", "message": "Project not found"}
    project.refresh_from_db()
    assert project.name == "Theirs"


def test_another_teams_default_project_is_not_found_either(api, other_caller):
    default = other_caller.team.projects.get(is_default=True)
    assert error_of(api.delete(f"/v1/projects/{default.pk}"), 404)["code"] == "not_found"


def test_projects_need_authentication(anon, team):
    project = ProjectFactory(team=team)
    for response in (
        anon.get("/v1/projects"),
        anon.post("/v1/projects", {"name": "x"}, format="json"),
        anon.get(f"/v1/projects/{project.pk}"),
    ):
        assert error_of(response, 401)["code"] == "unauthorized"


@pytest.mark.parametrize("name", ["colour", ""])
def test_an_unknown_field_is_named_even_when_its_name_is_empty(api, name):
    response = api.post("/v1/projects", {"name": "Launch", name: 1}, format="json")

    error = error_of(response, 400)
    assert error["message"] == f"Unknown field {name!r}"
    assert error.get("field", "") == name
    assert not Project.objects.filter(name="Launch").exists()


@pytest.mark.parametrize("body", [{"name": 3111953}, {"name": "Launch", "description": 1.5}])
def test_a_number_is_not_taken_for_a_text_field(api, body):
    response = api.post("/v1/projects", body, format="json")

    error = error_of(response, 400)
    field = next(k for k, v in body.items() if not isinstance(v, str))
    assert error["field"] == field
    assert "string" in error["message"]
    assert not Project.objects.exclude(is_default=True).exists()


@pytest.mark.parametrize("param", ["limit", "cursor", "sortBy", "sortOrder"])
def test_an_empty_query_parameter_is_refused_naming_it(api, param):
    error = error_of(api.get(f"/v1/projects?{param}="), 400)

    assert error["field"] == param
    assert "empty" in error["message"]
