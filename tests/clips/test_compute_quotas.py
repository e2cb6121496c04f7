"""Quotas bound compute (issue 16, finding 6): render minutes reserved under the usage
row's lock before any work and settled after, exports counted, the range a request may
ask for capped by the plan, compute that was used never given back, and a limit on the
work a team may have in flight, in both APIs' error shapes."""

from __future__ import annotations

import threading

import pytest
from django.db.models import F

from clips.models import Clip, Export, Job
from clips.services import ClipSpec, clip_create, export_request
from clips.states import clip_complete, clip_fail, clip_stage_set, export_claim, export_fail
from projects.models import MonthlyUsage, Plan, month_start
from projects.services import api_key_create
from tests.concurrency import concurrently
from tests.factories import ClipFactory, TeamFactory

SOURCE = {"sourceVideoUrl": "https://example.com/video.mp4"}


def used(team) -> tuple[int, float]:
    """(clip generations, render seconds) the team used this month."""
    row = MonthlyUsage.objects.filter(team=team, month=month_start()).first()
    return (row.clips_created, row.render_seconds) if row else (0, 0.0)


# Render minutes, reserved under the lock -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_clips_against_a_few_render_minutes_admit_exactly_what_they_hold(
    live_server, settings
):
    """Before: the minutes left were read without a lock and charged when each clip was
    done, so all ten were accepted against three minutes."""
    settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM = 0
    team = TeamFactory(monthly_render_minutes=3)
    key = api_key_create(team=team).raw_key
    answers = concurrently(
        10,
        lambda session: session.post(
            f"{live_server.url}/v1/clips",
            json={**SOURCE, "startTime": 0, "endTime": 60},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ),
    )
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 7
    refused = [a for a in answers if a.status_code == 429]
    assert {a.json()["error"]["message"] for a in refused} == {"Monthly render minutes exceeded"}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused)
    assert Clip.objects.filter(team=team).count() == 3
    assert used(team) == (3, pytest.approx(180))


@pytest.mark.django_db
def test_a_clip_without_a_range_reserves_the_longest_it_may_be_and_settles_to_its_length(api, team):
    team.monthly_render_minutes = 10
    team.save()
    body = {**SOURCE, "config": {"maxDuration": 120}}
    clip_id = api.post("/v1/clips", body, format="json").json()["data"]["id"]
    assert used(team)[1] == pytest.approx(120)  # reserved before any work
    clip = Clip.objects.get(pk=clip_id)
    Clip.objects.filter(pk=clip_id).update(
        status=Clip.Status.PROCESSING, start_time=10.0, end_time=55.5
    )
    assert clip_complete(clip, charge_full_render=True)
    assert used(team)[1] == pytest.approx(45.5)  # settled to what was rendered
    assert not clip_complete(clip, charge_full_render=True)
    assert used(team)[1] == pytest.approx(45.5)


# Exports count -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_exports_count_against_render_minutes_and_admit_exactly_what_they_hold(
    live_server, settings
):
    """Before: exports never counted; every one was made."""
    settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM = 0
    settings.CLYPAI_EXPORT_WAIT_SECONDS = 0
    team = TeamFactory(monthly_render_minutes=1)
    key = api_key_create(team=team).raw_key
    clip = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=30, duration=30
    )
    settings_asked = iter(
        [("mp4", "low"), ("mp4", "medium"), ("mov", "low"), ("webm", "low"), ("mov", "medium")]
    )
    lock = threading.Lock()

    def export(session):
        with lock:
            fmt, quality = next(settings_asked)
        return session.post(
            f"{live_server.url}/v1/clips/{clip.pk}/export",
            json={"format": fmt, "quality": quality},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    answers = concurrently(5, export)
    assert sorted(a.status_code for a in answers) == [202] * 2 + [429] * 3
    assert Export.objects.filter(clip=clip).count() == 2
    assert used(team)[1] == pytest.approx(60)


@pytest.mark.django_db
def test_an_export_refused_before_encoding_gives_its_minutes_back_one_that_failed_later_not(
    team,
):
    clip = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=30, duration=30
    )
    early = export_request(clip=clip, format="mp4", quality="low", platform="", burn_captions=None)
    late = export_request(clip=clip, format="mov", quality="low", platform="", burn_captions=None)
    assert used(team)[1] == pytest.approx(60)
    export_fail(export_claim(early.pk), error="too long for the platform", before_work=True)
    assert used(team)[1] == pytest.approx(30)
    export_fail(export_claim(late.pk), error="ffmpeg failed while encoding")
    assert used(team)[1] == pytest.approx(30)
    # Asking again for the failed one is new work, counted again.
    export_request(clip=clip, format="mov", quality="low", platform="", burn_captions=None)
    assert used(team)[1] == pytest.approx(60)
    # Asking for one queued already is not.
    export_request(clip=clip, format="mov", quality="low", platform="", burn_captions=None)
    assert used(team)[1] == pytest.approx(60)


@pytest.mark.django_db(transaction=True)
def test_an_export_longer_than_its_platform_allows_fails_before_encoding_and_costs_nothing(
    team, settings
):
    from clips.exporting import export_process

    clip = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=150, duration=150
    )
    export = export_request(
        clip=clip, format="mp4", quality="low", platform="twitter", burn_captions=None
    )
    assert used(team)[1] == pytest.approx(150)
    export_process(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == Export.Status.FAILED
    assert "allows at most 140 s" in export.error
    assert export.error_details["limit"] == {"maxSeconds": 140}
    assert used(team)[1] == pytest.approx(0)


# The range a request may ask for -----------------------------------------------------


@pytest.mark.django_db
def test_an_explicit_range_longer_than_the_plan_allows_is_refused_naming_the_field(api, team):
    """Before: /v1 took any range (a four-hour clip rendered at full size)."""
    response = api.post("/v1/clips", {**SOURCE, "startTime": 0, "endTime": 3600}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["field"] == "endTime"
    assert "600 s" in error["message"]
    team.plan = Plan.objects.create(id="short", name="Short", max_clip_seconds=60)
    team.save()
    response = api.post("/v1/clips", {**SOURCE, "startTime": 10, "endTime": 80}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "endTime"
    assert "60 s" in response.json()["error"]["message"]
    body = {**SOURCE, "config": {"maxDuration": 120}}
    response = api.post("/v1/clips", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "config.maxDuration"
    assert (
        api.post("/v1/clips", {**SOURCE, "startTime": 10, "endTime": 70}, format="json").status_code
        == 201
    )
    assert used(team)[0] == 1


@pytest.mark.django_db
def test_a_re_cut_is_capped_by_the_plan_too(team):
    from clips.services import clip_recut
    from clypai.api.errors import InvalidRequest

    team.plan = Plan.objects.create(id="short", name="Short", max_clip_seconds=60)
    team.save()
    clip = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=30, duration=30
    )
    with pytest.raises(InvalidRequest) as refused:
        clip_recut(clip=clip, start=0, end=90)
    assert refused.value.field == "end"


# Compute used is not given back --------------------------------------------------------


@pytest.mark.django_db
def test_a_clip_that_fails_late_keeps_its_generation_one_that_fails_at_ingest_gets_it_back(team):
    """Before: every failure gave the generation back, so a file made to fail after
    transcription bought its analysis for free, again and again."""
    late = clip_create(team=team, spec=ClipSpec(source_url="https://example.com/a.mp4"))
    early = clip_create(team=team, spec=ClipSpec(source_url="https://example.com/b.mp4"))
    assert used(team)[0] == 2
    Clip.objects.filter(pk__in=[late.pk, early.pk]).update(status=Clip.Status.PROCESSING)
    for stage in ("ingest", "probe", "audio", "transcribe"):
        clip_stage_set(late.pk, stage)
    clip_stage_set(early.pk, "ingest")
    clip_fail(late, message="Clip generation failed: startTime is past the end of the source")
    clip_fail(early, message="Clip generation failed: Source video URL is not accessible")
    assert used(team)[0] == 1
    assert not Clip.objects.get(pk=late.pk).usage_refunded
    assert Clip.objects.get(pk=early.pk).usage_refunded


@pytest.mark.django_db
def test_a_clip_failing_before_its_render_gives_its_minutes_back_one_failing_in_it_does_not(team):
    before = clip_create(
        team=team, spec=ClipSpec(source_url="https://example.com/a.mp4", start_time=0, end_time=40)
    )
    during = clip_create(
        team=team, spec=ClipSpec(source_url="https://example.com/b.mp4", start_time=0, end_time=50)
    )
    assert used(team)[1] == pytest.approx(90)
    Clip.objects.filter(pk__in=[before.pk, during.pk]).update(status=Clip.Status.PROCESSING)
    clip_stage_set(before.pk, "select")
    clip_stage_set(during.pk, "render")
    clip_fail(before, message="Clip generation failed: no speech")
    clip_fail(during, message="Clip generation failed: ffmpeg was killed")
    clip_fail(during, message="Clip generation failed: again")  # settled once
    assert used(team)[1] == pytest.approx(50)


@pytest.mark.django_db
def test_a_jobs_preview_that_fails_in_its_render_costs_no_render_minutes(team):
    job = Job.objects.create(team=team, project=team.projects.get())
    clip = ClipFactory(team=team, job=job, start_time=0, end_time=45, status="processing")
    clip_stage_set(clip.pk, "render")
    clip_fail(clip, message="Clip generation failed: ffmpeg was killed")
    assert used(team)[1] == 0


@pytest.mark.django_db
def test_a_cli_jobs_clip_reserves_its_minutes_before_it_renders(team):
    from clips.states import clip_render_reserve
    from clypai.api.errors import QuotaExceeded

    team.monthly_render_minutes = 1
    team.save()
    job = Job.objects.create(team=team, project=team.projects.get(), clip_video="full")
    first = ClipFactory(team=team, job=job, start_time=0, end_time=45)
    second = ClipFactory(team=team, job=job, start_time=50, end_time=95)
    clip_render_reserve(first)
    clip_render_reserve(first)  # once
    assert used(team)[1] == pytest.approx(45)
    with pytest.raises(QuotaExceeded):
        clip_render_reserve(second)
    assert used(team)[1] == pytest.approx(45)


# Work in flight --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_clips_past_the_in_flight_limit_get_429_with_retry_after(live_server, settings):
    """Before: nothing limited how much one team queued."""
    settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM = 3
    settings.CLYPAI_IN_FLIGHT_RETRY_AFTER_SECONDS = 45
    team = TeamFactory()
    key = api_key_create(team=team).raw_key
    answers = concurrently(
        10,
        lambda session: session.post(
            f"{live_server.url}/v1/clips",
            json=SOURCE,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ),
    )
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 7
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.headers["Retry-After"] == "45"
        body = refused.json()
        assert body["success"] is False
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["details"] == {"inFlight": 3, "limit": 3, "retryAfter": 45}
    assert Clip.objects.filter(team=team).count() == 3
    assert used(team)[0] == 3  # the refused ones counted nothing


@pytest.mark.django_db(transaction=True)
def test_concurrent_choppity_jobs_past_the_in_flight_limit_get_its_429(live_server, settings):
    settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM = 2
    team = TeamFactory()
    key = api_key_create(team=team).raw_key
    answers = concurrently(
        6,
        lambda session: session.post(
            f"{live_server.url}/choppity/v1/clips",
            json={"source": {"url": "https://example.com/podcast.mp4"}},
            headers={"Authorization": f"Key {key}"},
            timeout=60,
        ),
    )
    assert sorted(a.status_code for a in answers) == [202] * 2 + [429] * 4
    for refused in (a for a in answers if a.status_code == 429):
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "TOO_MANY_REQUESTS"
        assert error["details"]["in_flight"] == 2 and error["details"]["limit"] == 2
    assert Job.objects.filter(team=team).count() == 2


@pytest.mark.django_db
def test_finished_work_frees_its_place_and_an_active_render_or_export_is_not_refused(
    api, team, settings
):
    settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM = 2
    settings.CLYPAI_EXPORT_WAIT_SECONDS = 0
    done = ClipFactory(
        team=team, status=Clip.Status.COMPLETED, start_time=0, end_time=30, duration=30
    )
    first = api.post(f"/v1/clips/{done.pk}/export", {"format": "mp4"}, format="json")
    assert first.status_code == 202
    assert api.post("/v1/clips", SOURCE, format="json").status_code == 201
    assert api.post("/v1/clips", SOURCE, format="json").status_code == 429
    # Asking again for the export in flight starts nothing: answered, not refused.
    again = api.post(f"/v1/clips/{done.pk}/export", {"format": "mp4"}, format="json")
    assert again.status_code == 202
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    refused = api.post(f"/v1/clips/{done.pk}/export", {"format": "webm"}, format="json")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    Export.objects.filter(clip=done).update(status=Export.Status.COMPLETED)
    assert api.post("/v1/clips", SOURCE, format="json").status_code == 201


@pytest.mark.django_db
def test_a_full_render_is_work_in_flight_too(caller, team, settings):
    """The Choppity API's renders count, and are refused in its shape."""
    from rest_framework.test import APIClient

    settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM = 1
    chop = APIClient()
    chop.credentials(HTTP_AUTHORIZATION=f"Key {caller.key}")
    job = Job.objects.create(team=team, project=team.projects.get(), status=Job.Status.DONE)
    done, other = (
        ClipFactory(team=team, job=job, status=Clip.Status.COMPLETED, start_time=0, end_time=length)
        for length in (30, 20)
    )
    Clip.objects.filter(job=job).update(duration=F("end_time"))
    done.refresh_from_db()
    assert chop.post(f"/choppity/v1/clips/{done.uuid}/renders").status_code == 202
    # The same render again is answered, not refused; another one is refused.
    assert chop.post(f"/choppity/v1/clips/{done.uuid}/renders").status_code == 202
    refused = chop.post(f"/choppity/v1/clips/{other.uuid}/renders")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TOO_MANY_REQUESTS"
    assert int(refused["Retry-After"]) >= 1
    assert used(team)[1] == pytest.approx(30)


# Re-renders after an edit ----------------------------------------------------------------


@pytest.fixture
def rendered_clip(ready_clip, settings):
    """The 6 s ready clip with a full video (and no preview) as its render stored it, and
    the "render" queue on Redis, emptied around the test (no inline work)."""
    from django.core.files.base import ContentFile

    from clypai.queues import get_queue

    settings.CLYPAI_JOBS_INLINE = False
    queue = get_queue("render")
    queue.connection.flushdb()
    ready_clip.video.save("clips/grid-full.mp4", ContentFile(b"rendered"), save=True)
    yield ready_clip
    queue.connection.flushdb()


def _correct(clip, word="Put"):
    from clips.services import clip_words_correct

    clip.refresh_from_db()
    return clip_words_correct(clip=clip, corrections=[{"index": 0, "word": word}])


def _render_minutes_used_up(team, minutes=1):
    """The team's plan gives `minutes` render minutes, all used this month."""
    from projects.services import usage_charge_render

    team.monthly_render_minutes = minutes
    team.save()
    usage_charge_render(team_id=team.pk, seconds=minutes * 60)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_re_render_charges_its_full_video_once_whatever_runs_it(rendered_clip, team):
    """Before: a re-render after an edit was never counted against the render minutes."""
    from datetime import timedelta

    from django.utils import timezone

    from clips import states
    from clips.models import Rerender
    from clips.sweep import clips_sweep
    from clips.tasks import clip_rerender_task

    assert _correct(rendered_clip) is True
    assert used(team)[1] == pytest.approx(6.0)  # reserved when queued, under the lock
    # Its first run loses its worker; the sweep gives the re-render to another.
    first = states.rerender_claim(rendered_clip.pk)
    past = timezone.now() - timedelta(seconds=600)
    Rerender.objects.filter(pk=rendered_clip.pk).update(heartbeat_at=past, updated_at=past)
    assert clips_sweep().requeued_stale == [rendered_clip.pk]
    clip_rerender_task(rendered_clip.pk)
    run = Rerender.objects.get(pk=rendered_clip.pk)
    assert (run.status, run.charged_seconds) == ("done", pytest.approx(6.0))
    assert used(team)[1] == pytest.approx(6.0)
    # The first run finishing late, and the task run again (an RQ retry), charge nothing.
    assert states.rerender_finish(first, rendered_seconds=6.0) is False
    clip_rerender_task(rendered_clip.pk)
    assert used(team)[1] == pytest.approx(6.0)

    # A second edit is a second render, charged once more.
    _correct(rendered_clip, "Lay")
    clip_rerender_task(rendered_clip.pk)
    assert Rerender.objects.get(pk=rendered_clip.pk).status == "done"
    assert used(team)[1] == pytest.approx(12.0)


@pytest.mark.django_db(transaction=True)
def test_a_re_render_replaced_or_failed_gives_its_minutes_back(rendered_clip, team):
    from clips.models import Rerender
    from clips.tasks import clip_rerender_task

    _correct(rendered_clip)
    _correct(rendered_clip, "Lay")  # replaces the queued one, which never renders
    assert used(team)[1] == pytest.approx(6.0)
    Clip.objects.filter(pk=rendered_clip.pk).update(source=None)  # it cannot render
    clip_rerender_task(rendered_clip.pk)
    run = Rerender.objects.get(pk=rendered_clip.pk)
    assert (run.status, run.charged_seconds) == ("error", 0.0)
    assert used(team)[1] == pytest.approx(0.0)


@pytest.mark.django_db(transaction=True)
def test_an_edit_whose_re_render_passes_the_render_minutes_gets_429_and_changes_nothing(
    api, rendered_clip, team
):
    """Before: a team with no render minutes left re-rendered its clips' full videos as
    often as it edited them."""
    from clips.models import Rerender
    from clips.services import clip_recut
    from clypai.api.errors import QuotaExceeded
    from clypai.queues import get_queue

    _render_minutes_used_up(team)
    words = [dict(w) for w in rendered_clip.words]
    Clip.objects.filter(pk=rendered_clip.pk).update(
        crop_path={"path": {"sourceWidth": 360, "sourceHeight": 288, "shots": []}}
    )
    answers = [
        api.patch(
            f"/v1/clips/{rendered_clip.pk}/transcript",
            {"words": [{"index": 0, "word": "Put"}]},
            format="json",
        ),
        api.patch(
            f"/v1/clips/{rendered_clip.pk}",
            {"cropOverride": {"keyframes": [{"t": 0, "x": 180, "y": 144}]}},
            format="json",
        ),
    ]
    for answer in answers:
        assert answer.status_code == 429, answer.content
        assert int(answer["Retry-After"]) >= 1
        error = answer.json()["error"]
        assert (error["code"], error["message"]) == (
            "quota_exceeded",
            "Monthly render minutes exceeded",
        )
        assert error["details"]["requested"] == pytest.approx(0.1)  # its 6 s
    rendered_clip.refresh_from_db()
    with pytest.raises(QuotaExceeded):
        clip_recut(clip=rendered_clip, start=3.0, end=8.0)
    assert (rendered_clip.start_time, rendered_clip.end_time) == (3.0, 9.0)  # as stored
    stored = Clip.objects.get(pk=rendered_clip.pk)
    assert stored.words == words and "override" not in stored.crop_path
    assert (stored.start_time, stored.end_time) == (3.0, 9.0)
    assert not Rerender.objects.filter(pk=rendered_clip.pk).exists()
    assert get_queue("render").count == 0
    assert used(team)[1] == pytest.approx(60.0)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_preview_re_render_is_free_as_the_first_preview_is(api, ready_clip, team, settings):
    """A decision: only a full video holds render minutes (a job's clip's preview is
    free), so a clip with only a preview is corrected and rendered again past them."""
    from clips.models import Rerender
    from clips.rendering import clip_video_make
    from clips.tasks import clip_rerender_task

    clip_video_make(ready_clip, None, kind="preview")
    _render_minutes_used_up(team)
    settings.CLYPAI_JOBS_INLINE = False
    answer = api.patch(
        f"/v1/clips/{ready_clip.pk}/transcript",
        {"words": [{"index": 0, "word": "Put"}]},
        format="json",
    )
    assert answer.status_code == 200 and answer.json()["data"]["rerender"] == "queued"
    clip_rerender_task(ready_clip.pk)
    run = Rerender.objects.get(pk=ready_clip.pk)
    assert (run.status, run.charged_seconds) == ("done", 0.0)
    assert used(team)[1] == pytest.approx(60.0)
