"""Creating a clip queues its processing on real Redis, only once the transaction commits."""

from __future__ import annotations

import pytest
from django.db import transaction

from clips.models import Clip
from clips.services import ClipSpec, clip_create


@pytest.mark.django_db(transaction=True)
def test_it_enqueues_processing_after_commit_with_the_clip_id_as_job_id(api, analysis_queue):
    response = api.post("/v1/clips", {"sourceVideoUrl": "https://example.com/a.mp4"}, format="json")
    assert response.status_code == 201
    clip_id = response.json()["data"]["id"]
    assert analysis_queue.job_ids == [clip_id]
    job = analysis_queue.fetch_job(clip_id)
    assert job.func_name == "clips.tasks.clip_process_task"
    assert job.args == (clip_id,)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_clip_enqueues_nothing(team, analysis_queue):
    with pytest.raises(RuntimeError), transaction.atomic():
        clip_create(team=team, spec=ClipSpec(source_url="https://example.com/a.mp4"))
        raise RuntimeError("the request failed after the clip was written")
    assert Clip.objects.count() == 0
    assert analysis_queue.count == 0


@pytest.mark.django_db(transaction=True)
def test_nothing_is_enqueued_before_the_commit(team, analysis_queue):
    with transaction.atomic():
        clip = clip_create(team=team, spec=ClipSpec(source_url="https://example.com/a.mp4"))
        assert analysis_queue.count == 0
    assert analysis_queue.job_ids == [clip.pk]


@pytest.mark.django_db(transaction=True)
def test_a_second_enqueue_of_the_same_clip_is_not_doubled(team, analysis_queue):
    from clips.tasks import clip_process_task
    from clypai.queues import enqueue_now

    clip = clip_create(team=team, spec=ClipSpec(source_url="https://example.com/a.mp4"))
    enqueue_now("analysis", clip_process_task, clip.pk, job_id=clip.pk)
    assert analysis_queue.job_ids == [clip.pk]


@pytest.mark.django_db(transaction=True)
def test_a_worker_claims_the_clip_once(team, analysis_queue):
    """Two deliveries of the same job: the conditional claim lets only one through."""
    from clips.states import clip_claim

    clip = clip_create(team=team, spec=ClipSpec(source_url="https://example.com/a.mp4"))
    assert clip_claim(clip.pk) is not None
    assert clip_claim(clip.pk) is None
    assert Clip.objects.get(pk=clip.pk).status == "processing"
