"""Isolation between teams, walked from the OpenAPI documents.

Two teams, each with one of everything (project, brand kit with a logo, upload, API key,
webhook endpoint with a delivery, a /v1 clip with its files, an export, a Choppity job
with a clip and its full render). Every operation of /v1 and /choppity/v1 that takes an
id in its path is called by the other team, with the owner's ids, with a body the owner
could send and with an empty one: the answer is 404, the same as for an id that does not
exist (no oracle), never a 2xx. Afterwards no row of any table and no stored file has
changed. The list of operations comes from the documents, so a new one is walked
without a line here; a path parameter with no object to name fails the test. At the end
the owner sends the same requests and is not answered 404: the ids and bodies were good.

Ids inside bodies and queries (sourceUploadId, projectId, brandKitId, introUploadId,
source.upload_id, ?projectId=) are tried too; a request schema gaining such a field
fails `test_every_id_field_of_a_request_body_is_tried` until it is listed here.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.forms.models import model_to_dict
from django.utils import timezone
from rest_framework.test import APIClient

from clips.models import Clip, Export, FullRender, Job
from clypai.ids import new_id
from clypai.queues import get_queue
from projects.services import api_key_create, default_project
from tests.factories import MembershipFactory, TeamFactory
from tests.sandbox import install
from webhooks.models import WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTS = Path(__file__).parent
METHODS = ("get", "post", "put", "patch", "delete")
PASSWORD = "correct horse battery"  # UserFactory's
# Fields that change because the intruder made a request at all (its own key's use).
TOUCHED_BY_ANY_REQUEST = {("projects.apikey", "last_used_at")}
# Tables whose rows are the intruder's own bookkeeping, not the owner's data.
NOT_COMPARED = {"clypai.idempotencyrecord"}


def operations() -> list[tuple[str, str, str, dict]]:
    """(document, method, path, operation) for every operation with a path parameter."""
    found = []
    for name in ("openapi-v1.json", "openapi-choppity.json"):
        document = json.loads((DOCUMENTS / name).read_text())
        for path, item in document["paths"].items():
            if "{" not in path:
                continue
            for method in METHODS:
                if method in item:
                    found.append((name, method, path, item[method]))
    return found


OPERATIONS = operations()

# A body the owner could send, by operationId; an operation not named here is sent `{}`
# (and still must answer 404 to the other team).
BODIES: dict[str, dict] = {
    "brand_kits_update": {"name": "Taken over", "primaryColor": "#FF0000"},
    "clips_partial_update": {"cropOverride": {"centerX": 0.2}},
    "clips_export": {"format": "mp4", "quality": "low"},
    "clips_transcript_correct": {"words": [{"index": 0, "word": "Hijacked"}]},
    "projects_update": {"name": "Taken over", "description": "x"},
    "webhooks_update": {"url": "http://127.0.0.1:9/taken", "description": "taken"},
}
MULTIPART = {"brand_kits_logo_upload"}


@dataclass
class TeamSet:
    """One team with one of everything, and its clients."""

    team: object
    api: APIClient  # an owner's JWT: every /v1 operation is open to it
    chop: APIClient  # an API key, as the Choppity document authenticates
    ids: dict[str, str] = field(default_factory=dict)


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def _jwt_client(user, team) -> APIClient:
    response = APIClient().post(
        "/v1/auth/token",
        {"username": user.username, "password": PASSWORD, "teamId": team.pk},
        format="json",
    )
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['data']['token']}")
    return client


def _created(response, status=201) -> dict:
    assert response.status_code == status, response.content
    return response.json()["data"]


def team_with_everything(name: str) -> TeamSet:
    from django.core.files.uploadedfile import SimpleUploadedFile

    team = TeamFactory(name=name)
    owner = MembershipFactory(team=team).user
    chop = APIClient()
    chop.credentials(HTTP_AUTHORIZATION=f"Key {api_key_create(team=team, name='chop').raw_key}")
    made = TeamSet(team=team, api=_jwt_client(owner, team), chop=chop)
    api, ids = made.api, made.ids

    # Through the API, as the owner would.
    ids["project_id"] = _created(api.post("/v1/projects", {"name": f"{name} show"}, format="json"))[
        "id"
    ]
    ids["brand_kit_id"] = _created(
        api.post("/v1/brand-kits", {"name": f"{name} kit"}, format="json")
    )["id"]
    logo = SimpleUploadedFile("logo.png", _png(), content_type="image/png")
    response = api.put(
        f"/v1/brand-kits/{ids['brand_kit_id']}/logo", {"file": logo}, format="multipart"
    )
    assert response.status_code == 200, response.content
    video = SimpleUploadedFile("v.mp4", b"\x00\x00\x00\x18ftypmp42" + name.encode() * 64)
    ids["upload_id"] = _created(api.post("/v1/uploads", {"file": video}, format="multipart"))["id"]
    ids["key_id"] = _created(api.post("/v1/api-keys", {"name": "spare"}, format="json"))["id"]
    hook = _created(
        api.post(
            "/v1/webhooks",
            {"url": f"http://127.0.0.1:9/{name}", "events": ["*"]},
            format="json",
        )
    )
    ids["webhook_id"] = hook["id"]

    # What workers make: rows and files as processing leaves them.
    project = default_project(team=team)
    words = [
        {"word": w, "start": 1.0 + k, "end": 1.5 + k, "probability": 0.9}
        for k, w in enumerate(["Hello", "from", name])
    ]
    clip = Clip.objects.create(
        team=team,
        project=project,
        name=f"{name} clip",
        status="completed",
        source_url="https://example.com/v.mp4",
        start_time=1.0,
        end_time=4.0,
        duration=3.0,
        words=words,
    )
    clip.video.save("v.mp4", ContentFile(b"video of " + name.encode()), save=False)
    clip.thumbnail.save("t.jpg", ContentFile(b"thumb of " + name.encode()), save=False)
    clip.captions.save("c.srt", ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nHi\n"), save=False)
    clip.save()
    ids["clip_id"] = clip.pk
    export = Export.objects.create(clip=clip, format="mp4", quality="low", status="completed")
    export.file.save("e.mp4", ContentFile(b"export of " + name.encode()), save=True)
    ids["export_id"] = export.pk

    job = Job.objects.create(
        team=team, project=project, source_url="https://example.com/v.mp4", status="done"
    )
    job_clip = Clip.objects.create(
        team=team,
        project=project,
        job=job,
        rank=1,
        name="Moment",
        status="completed",
        start_time=1.0,
        end_time=4.0,
        duration=3.0,
        words=words,
        full_render_status="done",
        full_render_requested_at=timezone.now(),
    )
    job_clip.preview.save("p.mp4", ContentFile(b"preview of " + name.encode()), save=False)
    job_clip.video.save("r.mp4", ContentFile(b"render of " + name.encode()), save=False)
    job_clip.save()
    FullRender.objects.create(clip=job_clip, charged_seconds=3.0, charged_at=timezone.now())
    ids["jobId"] = str(job.pk)
    ids["clipId"] = ids["renderId"] = str(job_clip.uuid)

    event = WebhookEvent.objects.create(team=team, type="clip.completed", body='{"x": 1}')
    ids["delivery_id"] = WebhookDelivery.objects.create(
        endpoint_id=ids["webhook_id"], event=event, status="failed", attempts=3
    ).pk
    return made


def _missing(param: str, like: str) -> str:
    """An id of the same shape as `like` that names nothing."""
    try:
        uuid.UUID(like)
        return str(uuid.uuid4())
    except ValueError:
        return new_id(like.split("_", 1)[0])


def _call(client: APIClient, method: str, path: str, op: dict, body: dict | None):
    kwargs = {}
    if "requestBody" in op or method in ("post", "put", "patch"):
        if op.get("operationId") in MULTIPART and body is not None:
            from django.core.files.uploadedfile import SimpleUploadedFile

            kwargs = {
                "data": {"file": SimpleUploadedFile("l.png", _png(), "image/png")},
                "format": "multipart",
            }
        else:
            kwargs = {"data": body if body is not None else {}, "format": "json"}
    return getattr(client, method)(path, **kwargs)


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _error_code(response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def database_rows() -> dict[str, dict]:
    """Every row of every table of ours, by table and primary key."""
    rows = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if model._meta.app_label not in {"projects", "clips", "brandkits", "webhooks", "clypai"}:
            continue
        if label in NOT_COMPARED:
            continue
        for obj in model.objects.all():
            values = model_to_dict(obj, fields=[f.name for f in model._meta.concrete_fields])
            for name in [n for (m, n) in TOUCHED_BY_ANY_REQUEST if m == label]:
                values.pop(name, None)
            rows[f"{label}:{obj.pk}"] = {k: str(v) for k, v in values.items()}
    return rows


def stored_files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def queued_tasks() -> int:
    return sum(get_queue(name).count for name in ("analysis", "render", "webhooks", "default"))


@pytest.fixture
def two_teams(settings, media_root, monkeypatch):
    install(monkeypatch)  # nothing leaves loopback, whatever an operation tries
    settings.CLYPAI_JOBS_INLINE = False
    settings.CLYPAI_URL_ALLOWLIST = ["127.0.0.1"]
    settings.CLYPAI_RATE_LIMIT_PER_MINUTE = 1_000_000
    get_queue("analysis").connection.flushdb()
    yield team_with_everything("Acme"), team_with_everything("Globex")
    get_queue("analysis").connection.flushdb()


def _client_for(document: str, teamset: TeamSet) -> APIClient:
    return teamset.chop if "choppity" in document else teamset.api


def test_the_documents_have_id_taking_operations_to_walk():
    # Guards the walk below against a document it can no longer read.
    assert len(OPERATIONS) >= 25
    assert {"delete", "get", "patch", "post", "put"} <= {m for _, m, _, _ in OPERATIONS}


def test_no_operation_reaches_another_teams_objects(two_teams, media_root):
    acme, globex = two_teams
    rows, files, tasks = database_rows(), stored_files(Path(media_root)), queued_tasks()
    assert files, "the teams' files were stored"

    walked = []
    for owner, intruder in ((acme, globex), (globex, acme)):
        for document, method, path, op in OPERATIONS:
            params = _params(path)
            unknown = [p for p in params if p not in owner.ids]
            assert not unknown, f"{method.upper()} {path}: no object for {unknown}; add one"
            # Every id the owner's; and each one the owner's with the others the intruder's
            # own (its own webhook, the owner's delivery).
            combos = [dict(owner.ids)]
            if len(params) > 1:
                for victim in params:
                    combo = dict(intruder.ids)
                    combo[victim] = owner.ids[victim]
                    combos.append(combo)
            client = _client_for(document, intruder)
            for ids in combos:
                nowhere = {p: _missing(p, str(v)) for p, v in ids.items()}
                bodies = [BODIES.get(op.get("operationId"), {})]
                if method in ("post", "put", "patch"):
                    bodies.append(None)  # an empty body: no 400 before the 404
                for body in bodies:
                    url = _fill(path, ids)
                    answer = _call(client, method, url, op, body)
                    absent = _call(client, method, _fill(path, nowhere), op, body)
                    where = f"{intruder.team.name} {method.upper()} {url} body={body}"
                    assert answer.status_code == 404, (where, answer.status_code, answer.content)
                    assert _error_code(answer) == _error_code(absent), where
                    assert answer.status_code == absent.status_code, where
                    walked.append((method, path))

    assert {(m, p) for m, p in walked} == {(m, p) for _, m, p, _ in OPERATIONS}
    assert database_rows() == rows
    assert stored_files(Path(media_root)) == files
    assert queued_tasks() == tasks

    # The control: the owner's same requests find their objects. Reads first, then
    # writes, deletes last and a thing's parts before it (its logo before the kit).
    order = {"get": 0, "put": 1, "patch": 1, "post": 2, "delete": 3}
    for document, method, path, op in sorted(OPERATIONS, key=lambda o: (order[o[1]], -len(o[2]))):
        answer = _call(
            _client_for(document, acme),
            method,
            _fill(path, acme.ids),
            op,
            BODIES.get(op.get("operationId"), {}),
        )
        assert answer.status_code != 404 and answer.status_code < 500, (
            method,
            path,
            answer.status_code,
            answer.content,
        )


# Ids in bodies and queries -----------------------------------------------------------

# (operation, request) pairs naming another team's object somewhere other than the path.
# `fields` are the request-schema properties each one covers.
BODY_IDS = {
    "ClipCreateInRequest.sourceUploadId": (
        "post",
        "/v1/clips",
        lambda o: {"sourceUploadId": o["upload_id"]},
    ),
    "ClipCreateInRequest.projectId": (
        "post",
        "/v1/clips",
        lambda o: {"projectId": o["project_id"], "sourceVideoUrl": "https://example.com/v.mp4"},
    ),
    "ClipConfigInRequest.brandKitId": (
        "post",
        "/v1/clips",
        lambda o: {
            "sourceVideoUrl": "https://example.com/v.mp4",
            "config": {"brandKitId": o["brand_kit_id"]},
        },
    ),
    "BrandKitInRequest.introUploadId": (
        "post",
        "/v1/brand-kits",
        lambda o: {"name": "k", "introUploadId": o["upload_id"]},
    ),
    "BrandKitInRequest.outroUploadId": (
        "post",
        "/v1/brand-kits",
        lambda o: {"name": "k", "outroUploadId": o["upload_id"]},
    ),
    "PatchedBrandKitInRequest.introUploadId": (
        "patch",
        "/v1/brand-kits/{own}",
        lambda o: {"introUploadId": o["upload_id"]},
    ),
    "PatchedBrandKitInRequest.outroUploadId": (
        "patch",
        "/v1/brand-kits/{own}",
        lambda o: {"outroUploadId": o["upload_id"]},
    ),
    "ChoppitySourceRequest.upload_id": ("post", "/choppity/v1/clips", None),
    "TokenInRequest.teamId": ("post", "/v1/auth/token", None),
}


def id_fields() -> set[str]:
    found = set()
    for name in ("openapi-v1.json", "openapi-choppity.json"):
        schemas = json.loads((DOCUMENTS / name).read_text())["components"]["schemas"]
        for schema_name, schema in schemas.items():
            if schema_name.endswith("Request"):
                for prop in schema.get("properties", {}):
                    if re.search(r"(_id|Id)$", prop):
                        found.add(f"{schema_name}.{prop}")
    return found


def test_every_id_field_of_a_request_body_is_tried():
    assert id_fields() == set(BODY_IDS), "try the new id field below, then list it here"


def test_ids_of_another_team_in_bodies_and_queries_reach_nothing(two_teams, media_root):
    acme, globex = two_teams
    rows, files, tasks = database_rows(), stored_files(Path(media_root)), queued_tasks()
    own_kit = globex.ids["brand_kit_id"]
    for name, (method, path, body) in BODY_IDS.items():
        if body is None:
            continue
        answer = getattr(globex.api, method)(
            path.replace("{own}", own_kit), body(acme.ids), format="json"
        )
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.content)
        assert answer.status_code != 403, name  # a 403 would say the object exists
    # Choppity: a job from the other team's upload.
    answer = globex.chop.post(
        "/choppity/v1/clips",
        {"source": {"upload_id": _upload_uuid(acme)}},
        format="json",
    )
    assert 400 <= answer.status_code < 500, answer.content
    # A token for a team the user is not a member of.
    intruder = globex.team.memberships.first().user
    answer = APIClient().post(
        "/v1/auth/token",
        {"username": intruder.username, "password": PASSWORD, "teamId": acme.team.pk},
        format="json",
    )
    assert answer.status_code in (400, 401, 403, 404), answer.content
    assert "token" not in json.dumps(answer.json().get("data") or {})
    # Listing by another team's project shows none of its clips.
    answer = globex.api.get("/v1/clips", {"projectId": acme.ids["project_id"]})
    if answer.status_code == 200:
        assert answer.json()["data"] == []
    else:
        assert answer.status_code in (400, 404), answer.content

    # Every request above was refused: the intruder's own brand kit is untouched too.
    assert database_rows() == rows
    assert stored_files(Path(media_root)) == files
    assert queued_tasks() == tasks


def _upload_uuid(teamset: TeamSet) -> str:
    from clips.models import Upload

    return str(Upload.objects.get(pk=teamset.ids["upload_id"]).uuid)
