"""RQ entry points for clips: take ids, load rows, call one piece of work, queue what
comes next. No logic of their own: every status change is `clips.states`'.

| task                   | queue    | RQ job id           | what it calls                      |
| ---------------------- | -------- | ------------------- | ---------------------------------- |
| clip_process_task      | analysis | the clip's id       | clip_processing.clip_process       |
| clip_transcribe_task   |transcribe| `<clip id>-transcribe`| clip_processing.clip_transcribe  |
| job_process_task       | analysis | the job's id        | job_processing.job_process         |
| job_transcribe_task    |transcribe| `<job id>-transcribe`| job_processing.job_transcribe     |
| export_process_task    | render   | the export's id     | exporting.export_process           |
| full_render_task       | render   | `<clip id>-render`  | rendering.clip_video_make("full")  |
| clip_rerender_task     | render   | `<clip id>-rerender`| rendering.clip_video_make          |

Each claims its row (a conditional update in `clips.states`) and beats its heartbeat
while it works; the sweep queues again any whose worker or queue entry was lost. Each
binds its clip or job id (and team) to the log context, beside the request id the task
carries from the request that queued it (`clypai.observability.ContextJob`).

A job's clips are processed on the "render" queue (their source is analysed by then).
With transcription on its own queue (CLYPAI_TRANSCRIBE_ON_QUEUE), an analysis task that
finds no transcript stores the audio and ends; it queues the transcribe task, which
queues the analysis task again once the transcript is stored: three tasks that may run
on three machines, sharing only PostgreSQL, Redis and storage.
The sweep's own task, which recovers all of these, is `clips.sweep.sweep_task`.
"""

from __future__ import annotations

import logging

from django.db import close_old_connections

from clypai import metrics
from clypai.observability import bind, log_context
from clypai.queues import enqueue_later, enqueue_on_commit

from . import states
from .analysis import TranscriptWanted, work_files_evict_due
from .clip_processing import clip_process, clip_transcribe
from .exporting import export_process
from .job_processing import job_process, job_transcribe
from .models import Clip
from .pipeline import StageError
from .rendering import clip_video_make

logger = logging.getLogger(__name__)


def _machine_housekeeping() -> None:
    """Keep this machine's work-dir caches bounded (the sweep reaches only its own
    machine's); an eviction that fails never fails the task."""
    try:
        work_files_evict_due()
    except Exception:
        logger.warning("could not evict the work dir's caches", exc_info=True)


def full_render_rq_id(clip_id: str) -> str:
    """The RQ job id of a clip's full render: the clip's id, told apart from the id of
    its own processing job, which RQ keeps under the clip's bare id."""
    return f"{clip_id}-render"


def transcribe_rq_id(pk: str) -> str:
    """The RQ job id of the transcription a clip or job waits for."""
    return f"{pk}-transcribe"


def _transcription_enqueue(task, pk: str, wanted: TranscriptWanted) -> None:
    """Queue the transcription a clip's or job's analysis stopped for, on `transcribe`,
    with the engine and model that analysis looks for."""
    enqueue_on_commit(
        "transcribe", task, pk, wanted.engine, wanted.model, job_id=transcribe_rq_id(pk)
    )


def clip_process_task(clip_id: str) -> None:
    """Process one clip from its source to its outputs (or up to its transcription,
    which then queues this again)."""
    _machine_housekeeping()
    with log_context(clip_id=clip_id):
        clip = states.clip_claim(clip_id)
        if clip is None:
            logger.info("clip %s is not pending (gone or taken); nothing to do", clip_id)
            return
        bind(team=clip.team_id, job_id=clip.job_id)
        logger.info("clip %s: processing (attempt %d)", clip_id, clip.attempts + 1)
        outcome = clip_process(clip=clip)
        if isinstance(outcome, TranscriptWanted):
            _transcription_enqueue(clip_transcribe_task, clip_id, outcome)
        elif outcome is not None:
            enqueue_later("analysis", outcome, clip_process_task, clip_id, job_id=clip_id)


def clip_transcribe_task(clip_id: str, engine: str, model: str) -> None:
    """Transcribe the source of a clip waiting for it, then queue the clip's analysis
    again. `engine` and `model` are the analysing worker's (so the transcript is the one
    its analysis looks for); the device is this worker's CLYPAI_WHISPER_DEVICE."""
    _machine_housekeeping()
    with log_context(clip_id=clip_id):
        clip = states.clip_transcribe_claim(clip_id)
        if clip is None:
            logger.info("clip %s is not waiting for a transcript; nothing to do", clip_id)
            return
        bind(team=clip.team_id, job_id=clip.job_id)
        retry_in = clip_transcribe(clip=clip, engine=engine, model=model)
        clip.refresh_from_db(fields=["status", "stage"])
        if clip.status == clip.Status.PROCESSING and clip.stage == states.TRANSCRIBED:
            enqueue_on_commit("analysis", clip_process_task, clip_id, job_id=clip_id)
        elif retry_in is not None:
            enqueue_later("analysis", retry_in, clip_process_task, clip_id, job_id=clip_id)


def job_process_task(job_id: str) -> None:
    """Analyse a job's source, select its clips and queue their processing (or analyse
    up to its transcription, which then queues this again)."""
    _machine_housekeeping()
    with log_context(job_id=job_id):
        job = states.job_claim(job_id)
        if job is None:
            logger.info("job %s is not queued (gone or taken); nothing to do", job_id)
            return
        bind(team=job.team_id)
        logger.info("job %s: processing (attempt %d)", job_id, job.attempts + 1)
        outcome = job_process(job=job)
        if isinstance(outcome, TranscriptWanted):
            _transcription_enqueue(job_transcribe_task, str(job_id), outcome)
            return
        for clip_id in outcome:
            enqueue_on_commit("render", clip_process_task, clip_id, job_id=clip_id)


def job_transcribe_task(job_id: str, engine: str, model: str) -> None:
    """Transcribe the source of a job waiting for it, then queue the job's analysis
    again (as `clip_transcribe_task`)."""
    _machine_housekeeping()
    with log_context(job_id=job_id):
        job = states.job_transcribe_claim(job_id)
        if job is None:
            logger.info("job %s is not waiting for a transcript; nothing to do", job_id)
            return
        bind(team=job.team_id)
        if job_transcribe(job=job, engine=engine, model=model):
            enqueue_on_commit("analysis", job_process_task, str(job_id), job_id=str(job_id))


def export_process_task(export_id: str) -> None:
    """Produce one export of a completed clip."""
    _machine_housekeeping()
    with log_context(export_id=export_id):
        export_process(export_id=export_id)


def full_render_task(clip_id: str) -> None:
    """Render one clip at full quality on request (services.full_render_request queued it).

    Claims the render (queued → processing), renders through
    `rendering.clip_video_make(kind="full")`, and records done or error. A new output
    replaces the previous one's file.
    """
    _machine_housekeeping()
    with log_context(clip_id=clip_id):
        _full_render(clip_id)


def _full_render(clip_id: str) -> None:
    attempt = states.full_render_claim(clip_id)
    if attempt is None:
        logger.info("render of clip %s is not queued (gone or taken); nothing to do", clip_id)
        return
    clip = Clip.objects.get(pk=clip_id)
    bind(team=clip.team_id)
    previous = clip.video.name if clip.video else ""
    with states.full_render_heartbeat(clip_id, attempt) as beat, metrics.stage_clock() as clock:
        try:
            clock.enter("render")
            clip_video_make(clip, None, kind="full", check=beat.check)
        except states.WorkTaken:
            logger.warning("render of clip %s was taken from this run; it stops here", clip_id)
        except StageError as err:
            metrics.failure(stage="render", code=err.code)
            states.full_render_finish(clip_id, error=err.message, attempt=attempt)
        except Exception as exc:
            if states.database_outage(exc):  # not the work's fault: the sweep recovers it
                raise
            metrics.failure(stage="render", code="internal_error")
            logger.exception("full render of clip %s failed unexpectedly", clip_id)
            states.full_render_finish(
                clip_id,
                error=f"Render failed: internal error ({type(exc).__name__})",
                attempt=attempt,
            )
        else:
            clip.refresh_from_db(fields=["video"])
            if previous and clip.video and clip.video.name != previous:
                try:  # the new output replaces the old one
                    clip.video.storage.delete(previous)
                except Exception:
                    logger.warning("could not delete %s", previous, exc_info=True)
            if not clip.video:
                states.full_render_finish(
                    clip_id, error="Render failed: the renderer stored no video", attempt=attempt
                )
            else:
                states.full_render_finish(clip_id, attempt=attempt)
        finally:
            close_old_connections()


def rerender_rq_id(clip_id: str) -> str:
    """The RQ job id of a clip's re-render after a transcript correction."""
    return f"{clip_id}-rerender"


def clip_rerender_task(clip_id: str) -> None:
    """Render a clip again after an edit (a transcript correction, a crop override, a
    re-cut): its full video and its preview, whichever it has (the services queued it
    with `states.rerender_queue`; its state is the clip's `Rerender`, which the sweep
    recovers). Its full video's seconds are charged when it is done, once."""
    _machine_housekeeping()
    with log_context(clip_id=clip_id):
        _rerender(clip_id)


def _rerender(clip_id: str) -> None:
    run = states.rerender_claim(clip_id)
    if run is None:
        logger.info("re-render of clip %s is not queued (gone or taken); nothing to do", clip_id)
        return
    clip = Clip.objects.select_related("source", "brand_kit").get(pk=clip_id)
    rendered = 0.0  # seconds of full video made: what the re-render is charged
    with states.rerender_heartbeat(run) as beat:
        try:
            if clip.source is None:
                raise StageError("The clip has no source to render from", {"stage": "render"})
            for kind, present in (("full", clip.video), ("preview", clip.preview)):
                if present:
                    clip_video_make(clip, None, kind=kind, check=beat.check)
                    if kind == "full":
                        rendered = states.rerender_seconds(clip)
        except states.WorkTaken:
            logger.warning("re-render of clip %s was taken from this run; it stops", clip_id)
        except StageError as err:
            states.rerender_finish(run, error=err.message)
        except Exception as exc:
            if states.database_outage(exc):  # not the work's fault: the sweep recovers it
                raise
            logger.exception("re-render of clip %s failed unexpectedly", clip_id)
            states.rerender_finish(
                run, error=f"Render failed: internal error ({type(exc).__name__})"
            )
        else:
            states.rerender_finish(run, rendered_seconds=rendered)
        finally:
            close_old_connections()
