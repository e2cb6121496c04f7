"""Plans, monthly quotas and GET /v1/usage: what a team may use and what it used."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import requests
from django.utils import timezone

from clips.models import Clip, FullRender, Job
from clips.services import JobSpec, full_render_request, job_create
from clips.states import clip_fail
from projects.models import MonthlyUsage, Plan, month_start
from projects.services import next_month_start
from tests.factories import ClipFactory, TeamFactory

pytestmark = pytest.mark.django_db

SOURCE = {"sourceVideoUrl": "https://example.com/video.mp4"}


def usage(api) -> dict:
    response = api.get("/v1/usage")
    assert response.status_code == 200, response.content
    assert response.json()["success"] is True
    return response.json()["data"]


def used_clips(team) -> int:
    row = MonthlyUsage.objects.filter(team=team, month=month_start()).first()
    return row.clips_created if row else 0


def used_render_seconds(team) -> float:
    row = MonthlyUsage.objects.filter(team=team, month=month_start()).first()
    return row.render_seconds if row else 0.0


def test_usage_answers_the_plan_the_counts_and_the_reset_time(api, team):
    team.plan = Plan.objects.create(
        id="pro", name="Pro", monthly_clip_generations=100, monthly_render_minutes=60
    )
    team.save()
    for _ in range(3):
        assert api.post("/v1/clips", SOURCE, format="json").status_code == 201
    MonthlyUsage.objects.filter(team=team).update(render_seconds=90)
    data = usage(api)
    now = timezone.now()
    assert data["plan"] == {"id": "pro", "name": "Pro"}
    assert data["clipGenerations"] == {"used": 3, "limit": 100, "remaining": 97}
    assert data["renderMinutes"] == {"used": 1.5, "limit": 60, "remaining": 58.5}
    assert data["periodStart"] == now.strftime("%Y-%m-01T00:00:00Z")
    assert data["resetAt"] == next_month_start(now).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["rateLimit"] == {"limit": 600, "windowSeconds": 60}


def test_a_teams_own_limit_overrides_its_plans_and_none_means_no_limit(api, team):
    team.plan = Plan.objects.create(id="starter", name="Starter", monthly_clip_generations=10)
    team.monthly_clip_quota = 25
    team.requests_per_minute = 30
    team.save()
    data = usage(api)
    assert data["clipGenerations"]["limit"] == 25
    assert data["renderMinutes"] == {"used": 0, "limit": None, "remaining": None}
    assert data["rateLimit"]["limit"] == 30


def test_without_a_plan_the_plan_is_custom_and_unlimited(api):
    data = usage(api)
    assert data["plan"] == {"id": None, "name": "Custom"}
    assert data["clipGenerations"] == {"used": 0, "limit": None, "remaining": None}


def test_usage_is_the_callers_team_only(api, other_caller):
    assert api.post("/v1/clips", SOURCE, format="json").status_code == 201
    assert usage(other_caller.client)["clipGenerations"]["used"] == 0


def test_usage_needs_credentials(anon):
    response = anon.get("/v1/usage")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_over_the_plans_limit_a_create_answers_the_documents_quota_error(api, team):
    team.plan = Plan.objects.create(id="tiny", name="Tiny", monthly_clip_generations=2)
    team.save()
    for _ in range(2):
        assert api.post("/v1/clips", SOURCE, format="json").status_code == 201
    response = api.post("/v1/clips", SOURCE, format="json")
    assert response.status_code == 429
    # Retry-After: the seconds until resetAt (clients that retry a 429 only with it).
    reset_at = next_month_start(timezone.now())
    wait = int(response["Retry-After"])
    assert abs(wait - (reset_at - timezone.now()).total_seconds()) < 5
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "quota_exceeded"
    assert body["error"]["message"] == "Monthly clip generation quota exceeded"
    assert body["error"]["details"] == {
        "used": 2,
        "limit": 2,
        "resetAt": next_month_start(timezone.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert Clip.objects.filter(team=team).count() == 2  # nothing made, nothing counted
    assert used_clips(team) == 2


def test_usage_counts_in_the_calendar_month_and_resets_at_the_next(team):
    assert next_month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    MonthlyUsage.objects.create(team=team, month=datetime(2026, 1, 1).date(), clips_created=99)
    team.monthly_clip_quota = 1
    team.save()
    job_create(team=team, spec=JobSpec(source_url="https://example.com/v.mp4"))  # a new month
    assert used_clips(team) == 1


def test_a_failed_clip_gives_its_generation_back_once(api, team):
    team.monthly_clip_quota = 1
    team.save()
    clip_id = api.post("/v1/clips", SOURCE, format="json").json()["data"]["id"]
    assert used_clips(team) == 1
    assert api.post("/v1/clips", SOURCE, format="json").status_code == 429
    clip = Clip.objects.get(pk=clip_id)
    clip_fail(clip, message="Clip generation failed: Unsupported video codec")
    clip_fail(clip, message="Clip generation failed: again")  # a second failure: no double refund
    assert used_clips(team) == 0
    assert usage(api)["clipGenerations"]["used"] == 0
    assert api.post("/v1/clips", SOURCE, format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_clip_failed_by_the_real_pipeline_gives_its_generation_back(api, team, settings):
    """A source on loopback, not on the allowlist, is refused in processing."""
    settings.CLYPAI_JOBS_INLINE = True
    settings.CLYPAI_URL_ALLOWLIST = []
    response = api.post(
        "/v1/clips", {"sourceVideoUrl": "http://127.0.0.1:9/video.mp4"}, format="json"
    )
    clip = Clip.objects.get(pk=response.json()["data"]["id"])
    assert clip.status == Clip.Status.FAILED, clip.error
    assert clip.usage_refunded
    assert used_clips(team) == 0


def test_a_jobs_clips_share_its_generation_and_a_failed_job_gives_it_back(team):
    from clips.states import job_fail

    job = job_create(team=team, spec=JobSpec(source_url="https://example.com/v.mp4"))
    assert used_clips(team) == 1
    clip = ClipFactory(team=team, job=job)
    clip_fail(clip, message="Clip generation failed")
    assert used_clips(team) == 1  # the job's one generation is not the clip's to give back
    job_fail(job, message="Clip generation failed")
    job_fail(job, message="Clip generation failed")
    assert Job.objects.get(pk=job.pk).usage_refunded
    assert used_clips(team) == 0


def test_a_failed_full_render_gives_its_minutes_back(team):
    from clips.states import full_render_finish

    clip = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=30, duration=30
    )
    full_render_request(clip)
    assert used_render_seconds(team) == pytest.approx(30)
    assert FullRender.objects.get(pk=clip.pk).charged_seconds == pytest.approx(30)
    Clip.objects.filter(pk=clip.pk).update(full_render_status="processing")
    full_render_finish(clip.pk, error="Render failed: disk full")
    full_render_finish(clip.pk, error="Render failed: disk full")
    assert used_render_seconds(team) == pytest.approx(0)


def test_a_successful_render_keeps_its_minutes(team):
    from clips.states import full_render_finish

    clip = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=30, duration=30
    )
    full_render_request(clip)
    Clip.objects.filter(pk=clip.pk).update(full_render_status="processing")
    full_render_finish(clip.pk)
    assert used_render_seconds(team) == pytest.approx(30)


def test_with_no_render_minutes_left_a_v1_clip_is_refused_before_any_work(api, team):
    team.monthly_render_minutes = 1
    team.save()
    MonthlyUsage.objects.create(team=team, month=month_start(), render_seconds=60)
    response = api.post("/v1/clips", SOURCE, format="json")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"] == "Monthly render minutes exceeded"
    assert error["details"]["used"] == 1 and error["details"]["limit"] == 1
    assert int(response["Retry-After"]) >= 1
    assert used_clips(team) == 0 and not Clip.objects.filter(team=team).exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_against_a_limit_of_ten_admit_exactly_ten(live_server):
    """Real requests at once on the live server's threads, each on its own connection."""
    from projects.services import api_key_create

    team = TeamFactory(monthly_clip_quota=10)
    key = api_key_create(team=team).raw_key
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def create():
        session = requests.Session()
        barrier.wait()
        response = session.post(
            f"{live_server.url}/v1/clips",
            json=SOURCE,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 10 + [429] * 10
    assert Clip.objects.filter(team=team).count() == 10
    assert used_clips(team) == 10
