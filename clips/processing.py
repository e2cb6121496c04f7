"""Processing of a claimed clip: the pipeline's stages glued to the models.

Each stage checks for its own output before it works, so a rerun after a crash (the
sweep re-enqueues a clip whose worker died) reuses what an earlier run finished:
- the source's bytes are stored once under their SHA-256 (`Source`);
- the probe lives on the source; the audio track is extracted once into the work dir;
- transcript, scenes and audio features are `Analysis` rows keyed by source and by
  what produced them (engine, model, language, options).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from clypai.lib.storage import local_path

from .jobs import clip_fail
from .models import Analysis, Clip, Export, Source, Upload
from .pipeline import StageError

logger = logging.getLogger(__name__)


# Progress (0–100) at the start of each stage of a clip.
STAGE_PROGRESS = {
    "ingest": 2,
    "probe": 10,
    "audio": 12,
    "transcribe": 15,
    "scenes": 70,
    "select": 85,
    "render": 90,
}


def _set_stage(clip_id: str, stage: str) -> None:
    Clip.objects.filter(pk=clip_id, status=Clip.Status.PROCESSING).update(
        stage=stage, progress=STAGE_PROGRESS.get(stage, 0), updated_at=timezone.now()
    )


@contextmanager
def heartbeat(clip_id: str, *, interval: float | None = None):
    """Beat `heartbeat_at` from a thread while the body runs; the sweep goes by it."""
    interval = settings.CLYPAI_HEARTBEAT_SECONDS if interval is None else interval
    stop = threading.Event()

    def beat():
        try:
            while True:
                Clip.objects.filter(pk=clip_id, status=Clip.Status.PROCESSING).update(
                    heartbeat_at=timezone.now()
                )
                if stop.wait(interval):
                    break
        except Exception:  # a beat lost is not worth killing the job for
            logger.warning("heartbeat of %s failed", clip_id, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{clip_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# Ingest ------------------------------------------------------------------------------


def _work_dir(*parts: str) -> Path:
    path = Path(settings.CLYPAI_WORK_DIR).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _suffix(name: str) -> str:
    suffix = Path(name.split("?", 1)[0]).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


def source_from_file(*, path: Path, sha256: str, size: int, suffix: str) -> Source:
    """The source for these bytes: found by SHA-256, or stored and recorded once."""
    existing = Source.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    name = f"sources/{sha256[:2]}/{sha256}{suffix}"
    if not default_storage.exists(name):
        with open(path, "rb") as fh:
            name = default_storage.save(name, File(fh))
    try:
        with transaction.atomic():
            return Source.objects.create(sha256=sha256, file=name, size_bytes=size)
    except IntegrityError:  # another worker recorded the same bytes meanwhile
        return Source.objects.get(sha256=sha256)


def source_ingest_url(url: str) -> Source:
    """Fetch `url` safely (SSRF guard, size and time limits) and record its source."""
    from .pipeline.fetch import fetch_url

    fetched = fetch_url(
        url,
        _work_dir("fetch"),
        max_bytes=settings.CLYPAI_FETCH_MAX_BYTES,
        timeout=settings.CLYPAI_FETCH_TIMEOUT_SECONDS,
        max_redirects=settings.CLYPAI_FETCH_MAX_REDIRECTS,
        allowlist=settings.CLYPAI_URL_ALLOWLIST,
    )
    try:
        return source_from_file(
            path=fetched.path, sha256=fetched.sha256, size=fetched.size, suffix=_suffix(url)
        )
    finally:
        fetched.path.unlink(missing_ok=True)


def source_ingest_upload(upload: Upload) -> Source:
    """The source of an upload: its stored file, shared by every upload of the same bytes."""
    if upload.source_id:
        return upload.source
    source = Source.objects.filter(sha256=upload.sha256).first()
    if source is None:
        try:
            with transaction.atomic():
                source = Source.objects.create(
                    sha256=upload.sha256, file=upload.file.name, size_bytes=upload.size_bytes
                )
        except IntegrityError:
            source = Source.objects.get(sha256=upload.sha256)
    Upload.objects.filter(pk=upload.pk).update(source=source)
    return source


def clip_source(clip: Clip) -> Source:
    if clip.source_id:
        return clip.source
    if clip.upload_id:
        source = source_ingest_upload(clip.upload)
    else:
        source = source_ingest_url(clip.source_url)
    Clip.objects.filter(pk=clip.pk).update(source=source)
    clip.source = source
    return source


# Analysis ----------------------------------------------------------------------------


@dataclass
class SourceAnalysis:
    source: Source
    path: Path
    probe: dict[str, Any]
    transcript: dict[str, Any]
    scenes: list[dict[str, Any]]
    audio: dict[str, Any]


def _plain(value: Any) -> Any:
    """Dataclasses and numpy values as JSON-ready Python."""
    if is_dataclass(value):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def _analysis(source: Source, kind: str, key: str, compute) -> Any:
    """The stored result of (source, kind, key), computing and storing it if missing."""
    found = Analysis.objects.filter(source=source, kind=kind, key=key).first()
    if found is not None:
        return found.result
    started = time.monotonic()
    result = _plain(compute())
    try:
        with transaction.atomic():
            Analysis.objects.create(
                source=source, kind=kind, key=key, result=result,
                seconds=round(time.monotonic() - started, 3),
            )
    except IntegrityError:
        return Analysis.objects.get(source=source, kind=kind, key=key).result
    return result


def source_probe(source: Source, path: Path) -> dict[str, Any]:
    from .pipeline.probe import ProbeLimits, probe

    if source.probe is None:
        result = probe(
            path,
            limits=ProbeLimits(
                max_duration_seconds=settings.CLYPAI_MAX_SOURCE_SECONDS,
                max_width=settings.CLYPAI_MAX_SOURCE_WIDTH,
                max_height=settings.CLYPAI_MAX_SOURCE_HEIGHT,
                max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
            ),
        )
        data = _plain(result)
        Source.objects.filter(pk=source.pk).update(probe=data, duration=data.get("duration"))
        source.probe, source.duration = data, data.get("duration")
    return source.probe


def source_audio_path(source: Source, path: Path) -> Path:
    """The source's audio as 16 kHz mono WAV, extracted once into the work dir."""
    from .pipeline.audio import extract_audio

    wav = _work_dir("audio") / f"{source.sha256}.wav"
    if not wav.exists():
        partial = wav.with_suffix(".part.wav")
        extract_audio(path, partial, sample_rate=16000)
        partial.replace(wav)
    return wav


def transcript_key(*, engine: str, model: str, language: str | None) -> str:
    return f"{engine}:{model}:{language or 'auto'}"


def source_analyse(source: Source, *, language: str | None = None,
                   on_stage=lambda stage: None) -> SourceAnalysis:
    """Probe, transcribe, detect shots and measure audio: each once per source."""
    from .pipeline.audio import audio_features
    from .pipeline.scenes import detect_scenes
    from .pipeline.transcribe import transcribe

    path = local_path(source.file.name, cache_dir=_work_dir("cache"))
    on_stage("probe")
    probe = source_probe(source, path)
    has_audio = bool(probe.get("audio"))
    engine, model = settings.CLYPAI_WHISPER_ENGINE, settings.CLYPAI_WHISPER_MODEL
    wav = None
    if has_audio:
        on_stage("audio")
        wav = source_audio_path(source, path)
    on_stage("transcribe")
    if wav is not None:
        transcript = _analysis(
            source, Analysis.Kind.TRANSCRIPT,
            transcript_key(engine=engine, model=model, language=language),
            lambda: transcribe(wav, engine=engine, model=model,
                               device=settings.CLYPAI_WHISPER_DEVICE, language=language).to_dict(),
        )
        audio = _analysis(source, Analysis.Kind.AUDIO, "rms:0.1", lambda: audio_features(wav))
    else:  # a silent film still gets clips, from shots alone
        transcript = {"language": language, "text": "", "segments": []}
        audio = {}
    on_stage("scenes")
    scenes = _analysis(source, Analysis.Kind.SCENES, "content:v1",
                       lambda: detect_scenes(path))
    return SourceAnalysis(source=source, path=path, probe=probe, transcript=transcript,
                          scenes=scenes, audio=audio)


# The clip ----------------------------------------------------------------------------


def _check_range(clip: Clip, duration: float | None) -> None:
    if clip.start_time is None or duration is None:
        return
    if clip.start_time >= duration:
        raise StageError(
            f"startTime {clip.start_time:g} s is past the end of the source ({duration:.2f} s)",
            {"startTime": clip.start_time, "sourceDuration": duration},
            code="invalid_request", field="startTime",
        )
    if clip.end_time > duration + 0.05:
        raise StageError(
            f"endTime {clip.end_time:g} s is past the end of the source ({duration:.2f} s)",
            {"endTime": clip.end_time, "sourceDuration": duration},
            code="invalid_request", field="endTime",
        )


def clip_process(*, clip: Clip) -> None:
    """Take a claimed (processing) clip through the pipeline to completed or failed."""
    with heartbeat(clip.pk):
        try:
            _set_stage(clip.pk, "ingest")
            source = clip_source(clip)
            analysis = source_analyse(
                source, language=clip.language or None,
                on_stage=lambda stage: _set_stage(clip.pk, stage),
            )
            _check_range(clip, analysis.probe.get("duration"))
            _set_stage(clip.pk, "select")
            # Selection and rendering come with their own stages; until they are here
            # the clip stops after analysis and says so.
            raise StageError(
                "Clip generation failed: clip selection and rendering are not available "
                "in this build yet; the source was analysed",
                {"stage": "select", "sourceId": source.pk,
                 "words": sum(len(s.get("words", [])) for s in analysis.transcript["segments"]),
                 "shots": len(analysis.scenes)},
            )
        except StageError as err:
            _stage_failed(clip, err)
        except Exception as exc:
            logger.exception("clip %s failed unexpectedly", clip.pk)
            clip_fail(clip, message=f"Clip generation failed: internal error ({type(exc).__name__})")
        finally:
            close_old_connections()


def _stage_failed(clip: Clip, err: StageError) -> None:
    """A permanent error fails the clip; a passing one is retried with backoff."""
    attempts = clip.attempts + 1
    if err.permanent or attempts >= settings.CLYPAI_MAX_ATTEMPTS or settings.CLYPAI_JOBS_INLINE:
        message = err.message
        if err.code == "processing_failed" and not message.startswith("Clip generation failed"):
            message = f"Clip generation failed: {message}"
        clip_fail(clip, message=message, code=err.code, field=err.field or "",
                  details=err.details or None)
        return
    delay = settings.CLYPAI_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1)
    updated = Clip.objects.filter(pk=clip.pk, status=Clip.Status.PROCESSING).update(
        status=Clip.Status.PENDING, attempts=attempts, stage="retry-wait",
        error=err.message, updated_at=timezone.now(),
    )
    if updated:
        from datetime import timedelta

        from clypai.queues import get_queue

        logger.info("clip %s: %s; retrying in %.0f s", clip.pk, err.message, delay)
        get_queue("analysis").enqueue_in(
            timedelta(seconds=delay), "clips.jobs.clip_process_job", clip.pk, job_id=clip.pk
        )


def export_process(*, export: Export) -> None:
    """Produce an export's file, or record why it could not be made."""
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.FAILED,
        error="this build has no export renderer yet",
        updated_at=timezone.now(),
    )
