"""Idempotency-Key on POSTs, as Stripe's API has it: the work once, the answer again."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from clips.models import Clip, Job
from clypai.api.limits import idempotency_purge
from clypai.models import IdempotencyRecord
from projects.models import MonthlyUsage

pytestmark = pytest.mark.django_db

BODY = {"name": "Launch", "sourceVideoUrl": "https://example.com/video.mp4"}


def post(api, body, key, path="/v1/clips"):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_return_the_first_response_without_new_work(api, team):
    first = post(api, BODY, "launch-1")
    assert first.status_code == 201
    again = post(api, dict(reversed(list(BODY.items()))), "launch-1")  # same JSON, other order
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Clip.objects.filter(team=team).count() == 1
    assert MonthlyUsage.objects.get(team=team).clips_created == 1


def test_the_same_key_with_another_body_is_a_conflict_naming_the_header(api, team):
    assert post(api, BODY, "launch-2").status_code == 201
    response = post(api, {**BODY, "name": "Other"}, "launch-2")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert error["field"] == "Idempotency-Key"
    assert Clip.objects.filter(team=team).count() == 1


def test_the_same_key_on_another_endpoint_is_a_conflict(api):
    assert post(api, BODY, "shared").status_code == 201
    response = post(api, {"name": "P"}, "shared", path="/v1/projects")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"


def test_a_request_refused_by_validation_saves_nothing(api, team):
    bad = post(api, {"sourceVideoUrl": "ftp://example.com/v.mp4"}, "fix-me")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "sourceVideoUrl"
    assert not IdempotencyRecord.objects.exists()
    # The corrected request may use the same key, and does the work.
    fixed = post(api, BODY, "fix-me")
    assert fixed.status_code == 201
    assert Clip.objects.filter(team=team).count() == 1


def test_keys_belong_to_their_caller(api, other_caller, team):
    mine = post(api, BODY, "same-key")
    theirs = post(other_caller.client, BODY, "same-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["data"]["id"] != theirs.json()["data"]["id"]
    assert "Idempotent-Replayed" not in theirs


def test_without_a_key_every_post_does_the_work(api, team):
    api.post("/v1/clips", BODY, format="json")
    api.post("/v1/clips", BODY, format="json")
    assert Clip.objects.filter(team=team).count() == 2


@pytest.mark.parametrize("key", ["", " ", "a" * 256, "ключ", "two words"])
def test_a_malformed_key_is_refused_naming_the_header(api, key, team):
    response = post(api, BODY, key)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not Clip.objects.filter(team=team).exists()


def test_after_24_hours_the_key_does_the_work_again(api, team):
    assert post(api, BODY, "daily").status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    again = post(api, BODY, "daily")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Clip.objects.filter(team=team).count() == 2


def test_the_sweep_purges_keys_older_than_24_hours(api):
    post(api, BODY, "old")
    post(api, BODY, "new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    IdempotencyRecord.objects.filter(key="new").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    from clips.sweep import sweep_task

    assert sweep_task(reschedule=False)["idempotencyKeysPurged"] == 1
    assert not IdempotencyRecord.objects.exists()


def test_a_key_held_by_a_request_that_died_is_taken_over(api, caller, team, settings):
    """A process killed mid-request leaves its key locked; after the lock time, a retry
    does the work instead of waiting for an answer that never comes."""
    from clypai.api.limits import _fingerprint  # noqa: F401 - the record below mimics one

    first = post(api, BODY, "crashed")
    record = IdempotencyRecord.objects.get(key="crashed")
    Clip.objects.all().delete()
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=None,
        response_body=None,
        locked_at=timezone.now() - timedelta(seconds=settings.CLYPAI_IDEMPOTENCY_LOCK_SECONDS + 1),
    )
    again = post(api, BODY, "crashed")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert again.json()["data"]["id"] != first.json()["data"]["id"]
    assert Clip.objects.filter(team=team).count() == 1


def test_a_key_still_in_progress_answers_409_after_the_wait(api, settings):
    settings.CLYPAI_IDEMPOTENCY_WAIT_SECONDS = 0.2
    post(api, BODY, "busy")
    IdempotencyRecord.objects.filter(key="busy").update(status_code=None, locked_at=timezone.now())
    response = post(api, BODY, "busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"


def test_the_choppity_api_takes_keys_too_in_its_own_error_shape(caller, team):
    from rest_framework.test import APIClient

    chop = APIClient()
    chop.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    body = {"source": {"url": "https://example.com/v.mp4"}}
    first = post(chop, body, "job-1", path="/choppity/v1/clips")
    assert first.status_code == 202
    again = post(chop, body, "job-1", path="/choppity/v1/clips")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Job.objects.filter(team=team).count() == 1
    conflict = post(
        chop, {"source": {"url": "https://example.com/w.mp4"}}, "job-1", "/choppity/v1/clips"
    )
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": {
            "code": "IDEMPOTENCY_CONFLICT",
            "message": conflict.json()["error"]["message"],
            "field": "Idempotency-Key",
        }
    }


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_do_the_work_once(live_server):
    """Eight requests at once on the live server's threads: one creates the clip, the
    others wait for its answer and send it again."""
    from projects.services import api_key_create
    from tests.factories import TeamFactory

    team = TeamFactory()
    key = api_key_create(team=team).raw_key
    barrier = threading.Barrier(8)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def send():
        session = requests.Session()
        barrier.wait()
        response = session.post(
            f"{live_server.url}/v1/clips",
            json=BODY,
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "burst"},
            timeout=60,
        )
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.json()["data"]["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert Clip.objects.filter(team=team).count() == 1
    assert MonthlyUsage.objects.get(team=team).clips_created == 1
