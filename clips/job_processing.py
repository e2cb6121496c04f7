"""A job of several clips of one source (the Choppity API's, the CLI's --count): its
source analysed once, its best clips selected and created, each then processed (and
rendered) as an ordinary clip; the job is done when all of them are.
"""

from __future__ import annotations

import logging

from django.db import close_old_connections, transaction

from clypai import metrics

from . import states
from .analysis import (
    SourceAnalysis,
    TranscriptWanted,
    job_source,
    source_analyse,
    source_transcribe,
)
from .models import Clip, Job, Source
from .pipeline import StageError
from .selection import clip_bounds, clip_words_in, no_speech_range, select_for, selection_metadata

logger = logging.getLogger(__name__)


def job_process(*, job: Job) -> list[str] | TranscriptWanted:
    """Analyse a claimed job's source and select its clips; the ids of its clips waiting
    to be processed (the caller queues them on the "render" queue), or the
    `TranscriptWanted` when the job now waits for its source's transcript (the caller
    queues the transcribe task, after which this runs again).

    The clips are created once (a rerun after a crash finds them); each is then an
    ordinary clip whose processing renders it, and the job is done when all are.
    """
    waiting: list[str] | TranscriptWanted = []
    with states.job_heartbeat(job) as beat, metrics.stage_clock() as clock:

        def stage(name: str) -> None:
            beat.check()  # a run whose job was taken from it goes no further
            clock.enter(name)
            states.job_stage_set(job.pk, name)

        try:
            stage("ingest")
            source = job_source(job)
            if not job.clips.exists():
                analysis = source_analyse(source, language=job.language or None, on_stage=stage)
                stage("select")
                lo, hi = clip_bounds(
                    platform=job.platform,
                    aspect_ratio=job.aspect_ratio,
                    target_duration=job.target_duration,
                )
                found = select_for(
                    analysis,
                    count=job.count,
                    criteria=job.criteria,
                    min_duration=lo,
                    max_duration=hi,
                )
                with transaction.atomic():
                    states.job_hold(job)  # locked: one run creates the job's clips
                    if found and not job.clips.exists():
                        for rank, selected in enumerate(found, start=1):
                            _job_clip(job, source, analysis, rank=rank, selected=selected)
                    elif not job.clips.exists():
                        start, end = no_speech_range(
                            analysis, start=None, end=None, max_duration=hi
                        )
                        _job_clip(
                            job, source, analysis, rank=1, selected=None, start=start, end=end
                        )
            beat.check()
            clock.stop()  # the job's clips render (and are timed) on their own
            clock.current = None
            states.job_stage_set(job.pk, "render")
            waiting = list(
                job.clips.filter(status=Clip.Status.PENDING).values_list("id", flat=True)
            )
        except TranscriptWanted as wanted:
            if states.job_transcribe_wait(job):
                waiting = wanted
        except states.WorkTaken:
            logger.warning("job %s was taken from this run; it stops here", job.pk)
        except StageError as err:
            metrics.failure(stage=clock.current, code=err.code)
            logger.warning("job %s: %s failed: %s", job.pk, clock.current, err.message)
            states.job_fail(job, message=err.message, code=err.code, details=err.details or None)
        except Exception as exc:
            metrics.failure(stage=clock.current, code="internal_error")
            logger.exception("job %s failed unexpectedly", job.pk)
            states.job_fail(
                job, message=f"Clip generation failed: internal error ({type(exc).__name__})"
            )
        finally:
            states.job_refresh(job.pk)
            close_old_connections()
    return waiting


def job_transcribe(*, job: Job, engine: str, model: str) -> bool:
    """Make the transcript a claimed job waits for (`states.job_transcribe_claim`) from
    its source's stored audio, then hand the job back to its analysis
    (`states.job_transcribed`). Returns whether the caller should queue it."""
    handed_back = False
    with states.job_heartbeat(job) as beat:
        try:
            if job.source is None:
                raise StageError("The job has no source to transcribe", {"stage": "transcribe"})
            source_transcribe(job.source, engine=engine, model=model, language=job.language or None)
            beat.check()
            handed_back = states.job_transcribed(job)
        except states.WorkTaken:
            logger.warning("job %s was taken from this run; it stops here", job.pk)
        except StageError as err:
            states.job_fail(job, message=err.message, code=err.code, details=err.details or None)
        except Exception as exc:
            logger.exception("transcription of job %s failed unexpectedly", job.pk)
            states.job_fail(
                job, message=f"Clip generation failed: internal error ({type(exc).__name__})"
            )
        finally:
            close_old_connections()
    return handed_back


def _job_clip(
    job: Job,
    source: Source,
    analysis: SourceAnalysis,
    *,
    rank: int,
    selected,
    start: float | None = None,
    end: float | None = None,
) -> Clip:
    if selected is not None:
        start, end = selected.start, selected.end
        metadata = selection_metadata(selected)
        name, score = selected.title, selected.score
    else:
        metadata = {
            "hooks": [],
            "highlights": [],
            "sentiment": "neutral",
            "topics": [],
            "scoreBreakdown": {},
            "reason": "No speech in this source: cut on shots",
        }
        name, score = f"Clip at {int(start // 60)}:{int(start % 60):02d}", None
    return Clip.objects.create(
        team=job.team,
        project=job.project,
        job=job,
        rank=rank,
        name=name,
        source_url=job.source_url,
        upload=job.upload,
        source=source,
        start_time=start,
        end_time=end,
        duration=round(end - start, 3),
        score=score,
        aspect_ratio=job.aspect_ratio,
        platform=job.platform,
        enable_captions=job.enable_captions,
        layout=job.layout,
        brand_kit_id=job.brand_kit_id,
        criteria=job.criteria,
        language=job.language,
        metadata=metadata,
        words=clip_words_in(analysis.transcript, start, end),
    )
