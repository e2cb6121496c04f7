"""One clip through the pipeline: ingest, analyse, select, render, complete.

`clip_process` takes a claimed (processing) clip to completed or failed, beating its
heartbeat meanwhile; every status change goes through `clips.states`. With transcription
on its own queue it ends, instead, once the clip waits for its transcript
(`TranscriptWanted`); `clip_transcribe`, on a worker of the `transcribe` queue, makes
the transcript, and `clip_process` runs again from there.
"""

from __future__ import annotations

import logging

from django.db import close_old_connections

from clypai import metrics
from clypai.api.errors import QuotaExceeded

from . import states
from .analysis import TranscriptWanted, clip_source, source_analyse, source_transcribe
from .models import Clip, Job
from .pipeline import StageError
from .rendering import clip_video_make
from .selection import clip_range_check, clip_select

logger = logging.getLogger(__name__)


def clip_process(*, clip: Clip) -> float | TranscriptWanted | None:
    """Take a claimed (processing) clip through the pipeline to completed or failed.

    Returns the seconds after which the clip should be processed again when a passing
    error sent it back to pending (the caller queues it); the `TranscriptWanted` when
    the clip now waits for its transcript (the caller queues the transcribe task);
    else None.
    """
    retry_in = None
    with states.clip_heartbeat(clip) as beat, metrics.stage_clock() as clock:

        def stage(name: str) -> None:
            beat.check()  # a run whose clip was taken from it goes no further
            clock.enter(name)  # the time of the stage before goes to the metrics
            states.clip_stage_set(clip.pk, name)

        try:
            stage("ingest")
            source = clip_source(clip)
            analysis = source_analyse(source, language=clip.language or None, on_stage=stage)
            clip_range_check(clip, analysis.probe.get("duration"))
            stage("select")
            clip_select(clip, analysis)
            kind = "full"
            if clip.job_id is not None:
                kind = Job.objects.values_list("clip_video", flat=True).get(pk=clip.job_id)
            if kind == Job.ClipVideo.FULL:
                states.clip_render_reserve(clip)  # a CLI job's clip; /v1 clips hold theirs
            if kind != Job.ClipVideo.NONE:
                stage("render")
                clip_video_make(clip, analysis, kind=kind, check=beat.check)
            beat.check()
            states.clip_complete(clip, charge_full_render=kind == Job.ClipVideo.FULL)
        except TranscriptWanted as wanted:
            if states.clip_transcribe_wait(clip):
                retry_in = wanted
        except states.WorkTaken:
            logger.warning("clip %s was taken from this run; it stops here", clip.pk)
        except StageError as err:
            metrics.failure(stage=clock.current, code=err.code)
            logger.warning("clip %s: %s failed: %s", clip.pk, clock.current, err.message)
            retry_in = states.clip_stage_failed(clip, err)
        except QuotaExceeded as exc:  # no render minutes left for a CLI job's clip
            states.clip_fail(clip, message=exc.message, code="quota_exceeded", details=exc.details)
        except Exception as exc:
            metrics.failure(stage=clock.current, code="internal_error")
            logger.exception("clip %s failed unexpectedly", clip.pk)
            states.clip_fail(
                clip, message=f"Clip generation failed: internal error ({type(exc).__name__})"
            )
        finally:
            if clip.job_id is not None:
                states.job_refresh(clip.job_id)
            close_old_connections()
    return retry_in


def clip_transcribe(*, clip: Clip, engine: str, model: str) -> float | None:
    """Make the transcript a claimed clip waits for (`states.clip_transcribe_claim`)
    from its source's stored audio, then hand the clip back to its analysis
    (`states.clip_transcribed`: the caller queues `clip_process` again). Returns the
    seconds after which to process the clip again when a passing error sent it back to
    pending, else None."""
    retry_in = None
    with states.clip_heartbeat(clip) as beat:
        try:
            source = clip.source
            if source is None:
                raise StageError("The clip has no source to transcribe", {"stage": "transcribe"})
            source_transcribe(source, engine=engine, model=model, language=clip.language or None)
            beat.check()
            states.clip_transcribed(clip)
        except states.WorkTaken:
            logger.warning("clip %s was taken from this run; it stops here", clip.pk)
        except StageError as err:
            retry_in = states.clip_stage_failed(clip, err)
        except Exception as exc:
            logger.exception("transcription of clip %s failed unexpectedly", clip.pk)
            states.clip_fail(
                clip, message=f"Clip generation failed: internal error ({type(exc).__name__})"
            )
        finally:
            if clip.job_id is not None:
                states.job_refresh(clip.job_id)
            close_old_connections()
    return retry_in
