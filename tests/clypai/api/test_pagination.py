"""GET /v1/clips: the list envelope, filters, sorts and opaque keyset cursors."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clips.models import Clip
from tests.factories import ClipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SUMMARY_FIELDS = {"id", "projectId", "name", "status", "duration", "createdAt", "updatedAt"}
T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def list_clips(api, **params):
    return api.get("/v1/clips", params)


def error_of(response, status_code: int = 400) -> dict:
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is False, body
    return body["error"]


def make_clip(team, n: int, **fields) -> Clip:
    """A clip with an id that sorts the same in Python and PostgreSQL, and set times."""
    created_at = fields.pop("created_at", T0 + timedelta(minutes=n))
    updated_at = fields.pop("updated_at", created_at)
    clip = ClipFactory(team=team, id=f"clip_t{n:04d}", **fields)
    # auto_now/auto_now_add ignore values given to save(): set the times with an update.
    Clip.objects.filter(pk=clip.pk).update(created_at=created_at, updated_at=updated_at)
    clip.refresh_from_db()
    return clip


def walk(api, **params) -> list[dict]:
    """Every clip, following nextCursor page by page, checking each page's envelope."""
    items, cursor, pages = [], None, 0
    limit = int(params.get("limit", 20))
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = list_clips(api, **query)
        assert response.status_code == 200, response.content
        body = response.json()
        page, pagination = body["data"], body["pagination"]
        assert len(page) <= limit
        items.extend(page)
        pages += 1
        assert pages < 500, "pagination does not end"
        if not pagination["hasMore"]:
            assert pagination["nextCursor"] is None
            return items
        assert len(page) == limit
        assert isinstance(pagination["nextCursor"], str) and pagination["nextCursor"]
        cursor = pagination["nextCursor"]


def ids(items) -> list[str]:
    return [item["id"] for item in items]


def expected_ids(clips, key, *, descending: bool) -> list[str]:
    """The order the API promises: by the sort key, then by id, both in one direction."""
    return [c.pk for c in sorted(clips, key=lambda c: (key(c), c.pk), reverse=descending)]


def cursor_of(payload) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# The envelope ----------------------------------------------------------------------


def test_it_lists_clips_in_the_documents_shape(api, team):
    project = ProjectFactory(team=team)
    clip = make_clip(
        team,
        1,
        project=project,
        name="Product Demo Highlight",
        status="completed",
        duration=45.2,
        updated_at=T0 + timedelta(minutes=5, seconds=22),
    )
    response = list_clips(api)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "data", "pagination"}
    assert body["success"] is True
    assert body["pagination"] == {"hasMore": False, "nextCursor": None}
    assert body["data"] == [
        {
            "id": clip.pk,
            "projectId": project.pk,
            "name": "Product Demo Highlight",
            "status": "completed",
            "duration": 45.2,
            "createdAt": "2024-01-15T10:31:00Z",
            "updatedAt": "2024-01-15T10:35:22Z",
        }
    ]


def test_it_lists_nothing_for_a_team_without_clips(api):
    body = list_clips(api).json()
    assert body == {
        "success": True,
        "data": [],
        "pagination": {"hasMore": False, "nextCursor": None},
    }


def test_a_pending_clip_has_null_duration_and_name_in_the_list(api, team):
    ClipFactory(team=team, name="", duration=None)
    item = list_clips(api).json()["data"][0]
    assert set(item) == SUMMARY_FIELDS
    assert item["duration"] is None
    assert item["name"] is None
    assert item["status"] == "pending"
    assert ISO_Z.match(item["createdAt"]) and ISO_Z.match(item["updatedAt"])


# limit -----------------------------------------------------------------------------


def test_it_returns_twenty_clips_by_default(api, team):
    for n in range(25):
        make_clip(team, n)
    body = list_clips(api).json()
    assert len(body["data"]) == 20
    assert body["pagination"]["hasMore"] is True
    assert body["pagination"]["nextCursor"]


def test_it_returns_up_to_a_hundred_clips(api, team):
    ClipFactory.create_batch(101, team=team)
    body = list_clips(api, limit=100).json()
    assert len(body["data"]) == 100
    assert len(set(ids(body["data"]))) == 100
    assert body["pagination"]["hasMore"] is True


def test_a_page_exactly_as_large_as_what_is_left_has_no_more(api, team):
    for n in range(5):
        make_clip(team, n)
    body = list_clips(api, limit=5).json()
    assert len(body["data"]) == 5
    assert body["pagination"] == {"hasMore": False, "nextCursor": None}


@pytest.mark.parametrize("limit", ["101", "0", "-1", "abc", "1.5", "1e2"])
def test_it_rejects_a_bad_limit(api, team, limit):
    ClipFactory(team=team)
    error = error_of(list_clips(api, limit=limit))
    assert error["code"] == "invalid_request"
    assert error["field"] == "limit"
    assert "limit" in error["message"]


def test_limit_one_and_a_hundred_are_accepted(api, team):
    ClipFactory.create_batch(2, team=team)
    assert len(list_clips(api, limit="1").json()["data"]) == 1
    assert len(list_clips(api, limit="100").json()["data"]) == 2


# Filters ---------------------------------------------------------------------------


def test_it_filters_by_project(api, team):
    project = ProjectFactory(team=team)
    mine = [make_clip(team, n, project=project) for n in range(3)]
    for n in range(3, 6):
        make_clip(team, n)  # the default project
    items = walk(api, projectId=project.pk, limit=2)
    assert sorted(ids(items)) == sorted(c.pk for c in mine)
    assert {item["projectId"] for item in items} == {project.pk}


@pytest.mark.parametrize("which", ["unknown", "other-team", "nul"])
def test_it_rejects_a_project_it_does_not_know(api, team, other_caller, which):
    foreign = ProjectFactory(team=other_caller.team)
    ClipFactory(team=other_caller.team, project=foreign)
    project_id = {"other-team": foreign.pk, "unknown": "proj_doesnotexist00", "nul": "proj_\x00"}[
        which
    ]
    error = error_of(list_clips(api, projectId=project_id))
    assert error["code"] == "invalid_request"
    assert error["field"] == "projectId"


def test_it_filters_by_status(api, team):
    done = [make_clip(team, n, status="completed") for n in range(3)]
    for n, status in enumerate(["pending", "failed", "processing", "exported"], start=3):
        make_clip(team, n, status=status)
    items = list_clips(api, status="completed").json()["data"]
    assert sorted(ids(items)) == sorted(c.pk for c in done)
    assert {item["status"] for item in items} == {"completed"}
    assert ids(list_clips(api, status="exported").json()["data"]) == ["clip_t0006"]


def test_it_combines_project_and_status_filters(api, team):
    project = ProjectFactory(team=team)
    wanted = make_clip(team, 1, project=project, status="failed")
    make_clip(team, 2, project=project, status="completed")
    make_clip(team, 3, status="failed")
    items = list_clips(api, projectId=project.pk, status="failed").json()["data"]
    assert ids(items) == [wanted.pk]


@pytest.mark.parametrize("status", ["done", "COMPLETED", "pending,failed"])
def test_it_rejects_an_unknown_status(api, status):
    error = error_of(list_clips(api, status=status))
    assert error["code"] == "invalid_request"
    assert error["field"] == "status"
    assert "pending" in error["message"]


# Sorting ---------------------------------------------------------------------------


@pytest.fixture
def sortable(team):
    """Clips with equal names, equal and missing durations, times that differ by sort."""
    specs = [
        # n, name, duration, created minute, updated minute
        (1, "delta", 30.0, 5, 50),
        (2, "alpha", None, 1, 70),
        (3, "charlie", 12.5, 9, 10),
        (4, "alpha", 30.0, 3, 30),
        (5, "bravo", None, 7, 20),
        (6, "alpha", 12.5, 2, 60),
        (7, "echo", 99.9, 8, 40),
        (8, "bravo", 0.5, 4, 80),
        (9, "charlie", 30.0, 6, 90),
    ]
    return [
        make_clip(
            team,
            n,
            name=name,
            duration=duration,
            created_at=T0 + timedelta(minutes=created),
            updated_at=T0 + timedelta(minutes=updated),
        )
        for n, name, duration, created, updated in specs
    ]


SORT_KEYS = {
    "createdAt": lambda c: c.created_at,
    "updatedAt": lambda c: c.updated_at,
    "name": lambda c: c.name,
    # Pending clips have no duration yet: they sort before every real one.
    "duration": lambda c: -1.0 if c.duration is None else c.duration,
}


def test_it_sorts_by_newest_first_by_default(api, sortable):
    items = list_clips(api).json()["data"]
    assert ids(items) == expected_ids(sortable, SORT_KEYS["createdAt"], descending=True)
    assert ids(items)[0] == "clip_t0003"


@pytest.mark.parametrize("sort_by", ["createdAt", "updatedAt", "name", "duration"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 4, 100])
def test_it_sorts_and_pages_without_skipping_or_repeating(
    api, sortable, sort_by, sort_order, limit
):
    items = walk(api, sortBy=sort_by, sortOrder=sort_order, limit=limit)
    want = expected_ids(sortable, SORT_KEYS[sort_by], descending=sort_order == "desc")
    assert ids(items) == want
    assert len(set(ids(items))) == len(sortable)


def test_name_ties_are_broken_by_id(api, sortable):
    items = list_clips(api, sortBy="name", sortOrder="asc").json()["data"]
    assert [(i["name"], i["id"]) for i in items][:3] == [
        ("alpha", "clip_t0002"),
        ("alpha", "clip_t0004"),
        ("alpha", "clip_t0006"),
    ]
    items = list_clips(api, sortBy="name", sortOrder="desc").json()["data"]
    assert [(i["name"], i["id"]) for i in items][-3:] == [
        ("alpha", "clip_t0006"),
        ("alpha", "clip_t0004"),
        ("alpha", "clip_t0002"),
    ]


def test_clips_without_duration_come_first_ascending_and_last_descending(api, sortable):
    asc = ids(list_clips(api, sortBy="duration", sortOrder="asc").json()["data"])
    assert asc == [
        "clip_t0002",
        "clip_t0005",
        "clip_t0008",
        "clip_t0003",
        "clip_t0006",
        "clip_t0001",
        "clip_t0004",
        "clip_t0009",
        "clip_t0007",
    ]
    desc = ids(list_clips(api, sortBy="duration", sortOrder="desc").json()["data"])
    assert desc == list(reversed(asc))


def test_a_page_boundary_inside_a_run_of_nulls_skips_nothing(api, team):
    clips = [make_clip(team, n, duration=None) for n in range(7)]
    clips += [make_clip(team, n, duration=5.0) for n in range(7, 12)]
    for order in ("asc", "desc"):
        items = walk(api, sortBy="duration", sortOrder=order, limit=3)
        assert ids(items) == expected_ids(clips, SORT_KEYS["duration"], descending=order == "desc")


def test_clips_created_in_the_same_instant_page_by_id(api, team):
    clips = [make_clip(team, n, created_at=T0) for n in range(10)]
    for order in ("asc", "desc"):
        items = walk(api, sortBy="createdAt", sortOrder=order, limit=3)
        assert ids(items) == sorted((c.pk for c in clips), reverse=order == "desc")


def test_sort_order_is_case_insensitive(api, sortable):
    items = list_clips(api, sortBy="name", sortOrder="ASC").json()["data"]
    assert ids(items) == expected_ids(sortable, SORT_KEYS["name"], descending=False)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sortBy": "title"}, "sortBy"),
        ({"sortBy": "created_at"}, "sortBy"),
        ({"sortBy": "status"}, "sortBy"),
        ({"sortOrder": "up"}, "sortOrder"),
        ({"sortOrder": "descending"}, "sortOrder"),
    ],
)
def test_it_rejects_an_unknown_sort(api, params, field):
    error = error_of(list_clips(api, **params))
    assert error["code"] == "invalid_request"
    assert error["field"] == field


# Cursors ---------------------------------------------------------------------------


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_new_clips_between_pages_are_neither_repeated_nor_cause_skips(api, team, sort_order):
    """Offset paging would repeat rows here: every insert pushes the older rows down."""
    old = [make_clip(team, n, created_at=T0 + timedelta(seconds=n)) for n in range(25)]
    descending = sort_order == "desc"
    # Where rows land relative to the walk: among those already listed, after them.
    already_listed = T0 + timedelta(seconds=23.5 if descending else 1.5)
    still_ahead = T0 + timedelta(seconds=4.5 if descending else 20.5)
    newest = T0 + timedelta(days=1)
    seen: list[str] = []
    serial = 100
    ahead: list[str] = []
    newer: list[str] = []
    cursor = None
    while True:
        params = {"limit": 10, "sortBy": "createdAt", "sortOrder": sort_order}
        if cursor:
            params["cursor"] = cursor
        body = list_clips(api, **params).json()
        seen += ids(body["data"])
        for created_at in (already_listed, newest) + ((still_ahead,) if not cursor else ()):
            clip = make_clip(team, serial, created_at=created_at)
            serial += 1
            if created_at == still_ahead:
                ahead.append(clip.pk)
            elif created_at == newest:
                newer.append(clip.pk)
        if not body["pagination"]["hasMore"]:
            break
        cursor = body["pagination"]["nextCursor"]
    assert len(seen) == len(set(seen)), "a clip was listed twice"
    old_ids = [c.pk for c in old]
    assert [pk for pk in seen if pk in old_ids] == (old_ids[::-1] if descending else old_ids)
    # A clip inserted where the walk has not yet been is listed exactly once.
    assert seen.count(ahead[0]) == 1
    if descending:
        # The newest sort before the cursor: they wait for the next walk, as they should.
        assert not set(newer) & set(seen)
        assert len(seen) == len(old) + 1
    else:
        # Ascending, the newest come after every old clip; each one at most once.
        assert set(seen) - set(old_ids) - set(ahead) <= set(newer)
        assert seen[-len(set(seen) & set(newer)) :] == [pk for pk in newer if pk in seen]


def test_deleting_the_last_clip_of_a_page_does_not_break_its_cursor(api, team):
    clips = [make_clip(team, n) for n in range(6)]
    body = list_clips(api, limit=3).json()
    first = ids(body["data"])
    Clip.objects.filter(pk=first[-1]).delete()
    rest = ids(list_clips(api, limit=3, cursor=body["pagination"]["nextCursor"]).json()["data"])
    assert first + rest == [c.pk for c in reversed(clips)]


def test_a_cursor_with_filters_keeps_to_the_filter(api, team):
    clips = [make_clip(team, n, status="completed" if n % 2 else "failed") for n in range(12)]
    items = walk(api, status="completed", limit=2, sortBy="updatedAt", sortOrder="asc")
    assert ids(items) == [c.pk for c in clips if c.status == "completed"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "eyJ",
        cursor_of("[1, 2]"),
        cursor_of("42"),
        cursor_of({"s": "createdAt", "d": True}),
        cursor_of({"s": "createdAt", "d": True, "v": "yesterday", "i": "clip_t0001"}),
        cursor_of({"s": "createdAt", "d": True, "v": 12, "i": "clip_t0001"}),
        cursor_of({"s": "createdAt", "d": True, "v": "2024-01-15T10:31:00+00:00", "i": 7}),
        cursor_of({"s": "createdAt", "d": True, "v": "2024-01-15T10:31:00+00:00"}),
        cursor_of(
            {"s": "createdAt", "d": True, "v": "2024-01-15T10:31:00+00:00", "i": "clip_\u0000"}
        ),
    ],
)
def test_it_rejects_a_garbage_cursor(api, team, cursor):
    make_clip(team, 1)
    error = error_of(list_clips(api, cursor=cursor))
    assert error["code"] == "invalid_request"
    assert error["field"] == "cursor"


@pytest.mark.parametrize(
    ("sort_by", "payload"),
    [
        ("duration", {"s": "duration", "d": True, "v": "long", "i": "clip_t0001"}),
        ("duration", {"s": "duration", "d": True, "v": True, "i": "clip_t0001"}),
        ("duration", {"s": "duration", "d": True, "v": None, "i": "clip_t0001"}),
        ("duration", '{"s": "duration", "d": true, "v": 1' + "0" * 400 + ', "i": "clip_t0001"}'),
        ("name", {"s": "name", "d": True, "v": 3, "i": "clip_t0001"}),
        ("name", {"s": "name", "d": True, "v": "a\u0000b", "i": "clip_t0001"}),
    ],
)
def test_it_rejects_a_cursor_whose_value_does_not_fit_its_sort(api, team, sort_by, payload):
    make_clip(team, 1, duration=3.0)
    error = error_of(list_clips(api, sortBy=sort_by, cursor=cursor_of(payload)))
    assert error["code"] == "invalid_request"
    assert error["field"] == "cursor"


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [
        ({"sortBy": "name"}, {}),
        ({"sortBy": "name"}, {"sortBy": "duration"}),
        ({"sortBy": "createdAt", "sortOrder": "asc"}, {"sortBy": "createdAt"}),
        ({}, {"sortBy": "updatedAt"}),
    ],
)
def test_it_rejects_a_cursor_made_for_another_sort(api, team, made_for, used_with):
    for n in range(4):
        make_clip(team, n, duration=float(n))
    cursor = list_clips(api, limit=2, **made_for).json()["pagination"]["nextCursor"]
    assert cursor
    error = error_of(list_clips(api, limit=2, cursor=cursor, **used_with))
    assert error["code"] == "invalid_request"
    assert error["field"] == "cursor"


def test_a_cursor_is_opaque_url_safe_text(api, team):
    for n in range(3):
        make_clip(team, n)
    cursor = list_clips(api, limit=1).json()["pagination"]["nextCursor"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)


# Cost and isolation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"sortBy": "duration", "sortOrder": "asc"}, {"status": "completed", "sortBy": "name"}],
)
def test_a_page_costs_the_same_queries_whatever_its_size(api, team, params):
    project = ProjectFactory(team=team)
    for n in range(60):
        make_clip(team, n, project=project, status="completed", duration=float(n % 7) or None)
    list_clips(api, limit=1)  # the first request also records the key's last use

    counts = {}
    for limit in (5, 50):
        with CaptureQueriesContext(connection) as first_page:
            response = list_clips(api, limit=limit, projectId=project.pk, **params)
        assert len(response.json()["data"]) == limit
        cursor = response.json()["pagination"]["nextCursor"]
        with CaptureQueriesContext(connection) as next_page:
            response = list_clips(api, limit=limit, projectId=project.pk, cursor=cursor, **params)
        assert response.status_code == 200
        counts[limit] = (len(first_page), len(next_page))
        clip_selects = [q for q in first_page.captured_queries if 'FROM "clips_clip"' in q["sql"]]
        assert len(clip_selects) == 1, clip_selects
    assert counts[5] == counts[50]


def test_other_teams_clips_never_appear(api, team, other_caller):
    mine = [make_clip(team, n, name="same", duration=10.0) for n in range(5)]
    for n in range(5, 15):
        make_clip(other_caller.team, n, name="same", duration=10.0)
    for sort_by in SORT_KEYS:
        for order in ("asc", "desc"):
            items = walk(api, sortBy=sort_by, sortOrder=order, limit=2)
            assert sorted(ids(items)) == [c.pk for c in mine]
    for status in ("pending", "completed"):
        assert set(ids(list_clips(api, status=status).json()["data"])) <= {c.pk for c in mine}


def test_another_teams_cursor_reveals_nothing_of_theirs(api, team, other_caller):
    for n in range(4):
        make_clip(other_caller.team, n)
    mine = make_clip(team, 10, created_at=T0 - timedelta(days=1))
    theirs = list_clips(other_caller.client, limit=2).json()["pagination"]["nextCursor"]
    items = list_clips(api, limit=2, cursor=theirs).json()["data"]
    assert ids(items) == [mine.pk]


def test_it_requires_authentication(anon):
    response = anon.get("/v1/clips")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
