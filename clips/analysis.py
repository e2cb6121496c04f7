"""A source and its analysis: ingest, probe, transcript, shots and audio, each once.

Each step checks for its own output before it works, so a rerun after a crash (the
sweep re-enqueues work whose worker died) reuses what an earlier run finished:
- the source's bytes are stored once per team under their SHA-256 (`Source`), at a key
  no client can write;
- the probe lives on the source; the audio track is extracted once, and only while a
  transcript or the loudness is still to be made;
- transcript, scenes, audio features and faces are `Analysis` rows keyed by source and
  by what produced them (engine, model, language, options): `analysis_cached`.

Nothing here assumes that an earlier step ran on this machine: every input is read from
storage (the source's file, the stored audio) or PostgreSQL, and the work dir
(CLYPAI_WORK_DIR) is a cache that a new machine starts without. With transcription on
its own queue (`transcribe_on_queue()`), `source_analyse` stores the audio and raises
`TranscriptWanted`; `source_transcribe`, on whatever worker serves the `transcribe`
queue, reads that audio from storage and stores the transcript; the analysis then runs
again and finds every step done.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from clypai.lib.db import connection_ensure
from clypai.lib.storage import local_path, storage_copy

from .models import (
    Analysis,
    Clip,
    Job,
    Source,
    Upload,
    client_writable,
    source_path,
    upload_path,
)
from .pipeline import StageError

logger = logging.getLogger(__name__)


def work_dir(*parts: str) -> Path:
    """A folder of this machine's work dir (CLYPAI_WORK_DIR), made when missing."""
    path = Path(settings.CLYPAI_WORK_DIR).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


WORK_CACHES = ("cache", "audio", "fonts")


def work_files_evict(*, now: float | None = None) -> dict[str, int]:
    """Delete the work dir's cached files (`WORK_CACHES`) unused for
    CLYPAI_WORK_CACHE_MAX_AGE_SECONDS, then the least recently used while the caches hold
    more than CLYPAI_WORK_CACHE_MAX_BYTES, sparing files used in the last
    CLYPAI_WORK_CACHE_IN_USE_SECONDS. Use is the file's mtime (reuse touches it). Every
    cached file can be made again (downloaded, extracted). Returns files and bytes freed.
    """
    now = time.time() if now is None else now
    max_age = settings.CLYPAI_WORK_CACHE_MAX_AGE_SECONDS
    max_bytes = settings.CLYPAI_WORK_CACHE_MAX_BYTES
    in_use = settings.CLYPAI_WORK_CACHE_IN_USE_SECONDS
    found: list[tuple[float, int, Path]] = []
    for name in WORK_CACHES:
        folder = Path(settings.CLYPAI_WORK_DIR) / name
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            try:
                stat = path.stat()
            except OSError:  # gone meanwhile
                continue
            if path.is_file():
                found.append((stat.st_mtime, stat.st_size, path))
    found.sort()  # least recently used first
    total = sum(size for _, size, _ in found)
    freed = {"files": 0, "bytes": 0}
    for used, size, path in found:
        unused = now - used
        if unused < in_use:
            break  # sorted by use: all the rest is in use too
        if unused < max_age and total <= max_bytes:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("could not evict %s from the work dir", path, exc_info=True)
            continue
        total -= size
        freed["files"] += 1
        freed["bytes"] += size
    return freed


_evicted_at: float | None = None


def work_files_evict_due(*, now: float | None = None) -> dict[str, int] | None:
    """`work_files_evict` on this machine, at most once every
    CLYPAI_SWEEP_INTERVAL_SECONDS in this process (None when not due). The sweep evicts
    only its own machine's work dir: on many machines each worker keeps its own caches
    bounded, at the start of its tasks."""
    global _evicted_at
    now = time.time() if now is None else now
    if _evicted_at is not None and now - _evicted_at < settings.CLYPAI_SWEEP_INTERVAL_SECONDS:
        return None
    _evicted_at = now
    return work_files_evict(now=now)


# Ingest ------------------------------------------------------------------------------


def _suffix(name: str) -> str:
    suffix = Path(name.split("?", 1)[0]).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


def _source_record(*, team_id: str, sha256: str, name: str, size: int) -> Source:
    """The team's source for these bytes, recorded once (another worker may race us)."""
    try:
        with transaction.atomic():
            return Source.objects.create(team_id=team_id, sha256=sha256, file=name, size_bytes=size)
    except IntegrityError:
        return Source.objects.get(team_id=team_id, sha256=sha256)


def source_from_file(*, team_id: str, path: Path, sha256: str, size: int, suffix: str) -> Source:
    """The team's source for these bytes: found by SHA-256, or stored and recorded once."""
    existing = Source.objects.filter(team_id=team_id, sha256=sha256).first()
    if existing is not None:
        return existing
    name = source_path(team_id=team_id, sha256=sha256, suffix=suffix)
    if not default_storage.exists(name):
        with open(path, "rb") as fh:
            name = default_storage.save(name, File(fh))
    return _source_record(team_id=team_id, sha256=sha256, name=name, size=size)


def source_ingest_url(url: str, *, team_id: str) -> Source:
    """Fetch `url` safely (SSRF guard, size and time limits) and record its source."""
    from .pipeline.fetch import fetch_url

    fetched = fetch_url(
        url,
        work_dir("fetch"),
        max_bytes=settings.CLYPAI_FETCH_MAX_BYTES,
        timeout=settings.CLYPAI_FETCH_TIMEOUT_SECONDS,
        max_redirects=settings.CLYPAI_FETCH_MAX_REDIRECTS,
        allowlist=settings.CLYPAI_URL_ALLOWLIST,
    )
    try:
        return source_from_file(
            team_id=team_id,
            path=fetched.path,
            sha256=fetched.sha256,
            size=fetched.size,
            suffix=_suffix(url),
        )
    finally:
        fetched.path.unlink(missing_ok=True)


def _stored_digest(name: str, *, limit: int) -> tuple[str, int]:
    """SHA-256 and size of stored file `name`, read through; StageError past `limit`."""
    digest, size = hashlib.sha256(), 0
    with default_storage.open(name, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            size += len(chunk)
            if size > limit:
                raise StageError(
                    "The uploaded file is larger than the upload limit",
                    {"stage": "ingest", "limit": limit},
                )
            digest.update(chunk)
    return digest.hexdigest(), size


def source_ingest_upload(upload: Upload) -> Source:
    """The source of an upload: the team's source of the same bytes, or a new one on the
    upload's own file.

    An upload's file is a key only the server writes (a multipart upload stored by the
    request, or the copy `choppity.services.upload_resolve` made of a presigned PUT), so
    the bytes hashed and sized here are the bytes every later stage reads.
    """
    if upload.source_id:
        return upload.source
    name = upload.file.name
    if client_writable(name):  # recorded before uploads were copied out: copy it now
        name = storage_copy(name, upload_path(upload, upload.filename))
        Upload.objects.filter(pk=upload.pk).update(file=name)
    size = upload.size_bytes
    if not upload.sha256:
        # A presigned upload, recorded without hashing inside its request.
        upload.sha256, size = _stored_digest(name, limit=settings.CLYPAI_MAX_UPLOAD_BYTES)
        Upload.objects.filter(pk=upload.pk).update(sha256=upload.sha256, size_bytes=size)
    source = Source.objects.filter(team_id=upload.team_id, sha256=upload.sha256).first()
    if source is None:
        source = _source_record(team_id=upload.team_id, sha256=upload.sha256, name=name, size=size)
    Upload.objects.filter(pk=upload.pk).update(source=source)
    return source


def clip_source(clip: Clip) -> Source:
    """The clip's source, ingested from its upload or URL the first time."""
    if clip.source_id:
        return clip.source
    if clip.upload_id:
        source = source_ingest_upload(clip.upload)
    else:
        source = source_ingest_url(clip.source_url, team_id=clip.team_id)
    Clip.objects.filter(pk=clip.pk).update(source=source)
    clip.source = source
    return source


def job_source(job: Job) -> Source:
    """The job's source, ingested from its upload or URL the first time."""
    if job.source_id:
        return job.source
    source = (
        source_ingest_upload(job.upload)
        if job.upload_id
        else source_ingest_url(job.source_url, team_id=job.team_id)
    )
    Job.objects.filter(pk=job.pk).update(source=source)
    job.source = source
    return source


# Analysis ----------------------------------------------------------------------------


@dataclass
class SourceAnalysis:
    """What the analysis of a source found, as the selection and the reframing read it."""

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


def analysis_cached(source: Source, kind: str, key: str, compute: Callable[[], Any]) -> Any:
    """The stored result of (source, kind, key), computing and storing it if missing.
    `compute` may return a `_Timed` (work done elsewhere, with its own time)."""
    found = Analysis.objects.filter(source=source, kind=kind, key=key).first()
    if found is not None:
        return found.result
    started = time.monotonic()
    result = compute()
    if isinstance(result, _Timed):
        result, started = result.value, time.monotonic() - result.seconds
    result = _plain(result)
    connection_ensure()  # the computation may have outlived the connection (a restart)
    try:
        with transaction.atomic():
            Analysis.objects.create(
                source=source,
                kind=kind,
                key=key,
                result=result,
                seconds=round(time.monotonic() - started, 3),
            )
    except IntegrityError:
        return Analysis.objects.get(source=source, kind=kind, key=key).result
    return result


@dataclass
class _Timed:
    value: Any
    seconds: float


def _timed(func, *args, **kwargs) -> _Timed:
    started = time.monotonic()
    value = func(*args, **kwargs)
    return _Timed(value, time.monotonic() - started)


def source_probe(source: Source, path: Path) -> dict[str, Any]:
    """The source's probe (streams, duration), stored on the source the first time."""
    from .pipeline.probe import ProbeLimits, probe

    if source.probe is None:
        result = probe(
            path,
            limits=ProbeLimits(
                max_duration_seconds=settings.CLYPAI_MAX_SOURCE_SECONDS,
                max_width=settings.CLYPAI_MAX_SOURCE_WIDTH,
                max_height=settings.CLYPAI_MAX_SOURCE_HEIGHT,
                max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
                timeout_seconds=settings.CLYPAI_PROBE_TIMEOUT_SECONDS,
            ),
        )
        data = _plain(result)
        Source.objects.filter(pk=source.pk).update(probe=data, duration=data.get("duration"))
        source.probe, source.duration = data, data.get("duration")
    return source.probe


def source_audio_path(source: Source, path: Path) -> Path:
    """The source's audio as 16 kHz mono WAV, extracted once into the work dir.

    The decode is bounded by the probed duration (a file that plays longer than its
    header says fails here), and the WAV appears only when whole. Reusing it marks it
    used, for `work_files_evict`."""
    from .pipeline.audio import extract_audio

    wav = work_dir("audio") / f"{source.pk}.wav"
    if wav.exists():
        _touch(wav)
    else:
        extract_audio(
            path,
            wav,
            duration=source.duration or (source.probe or {}).get("duration"),
            sample_rate=16000,
            timeout=settings.CLYPAI_DECODE_TIMEOUT_SECONDS,
        )
    return wav


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError:  # evicted meanwhile: the caller finds out when it opens it
        pass


def source_audio_name(source: Source) -> str:
    """Where the source's 16 kHz audio is stored for the transcribe queue's workers."""
    return f"analysis/{source.team_id}/{source.pk}/audio-16k.wav"


def source_audio_stored(source: Source, path: Path | None = None) -> str:
    """The stored name of the source's audio, extracted from the source (at `path`, or
    fetched from storage) and stored the first time."""
    name = source_audio_name(source)
    if default_storage.exists(name):
        return name
    if path is None:
        path = local_path(source.file.name, cache_dir=work_dir("cache"))
    wav = source_audio_path(source, path)
    with open(wav, "rb") as fh:
        return default_storage.save(name, File(fh))


def transcript_key(*, engine: str, model: str, language: str | None) -> str:
    return f"{engine}:{model}:{language or 'auto'}"


def transcribe_on_queue() -> bool:
    """Whether transcription is a task of its own on the `transcribe` queue (RQ only:
    inline jobs, the embedded default and `manage.py clip`, transcribe in place)."""
    return settings.CLYPAI_TRANSCRIBE_ON_QUEUE and not settings.CLYPAI_JOBS_INLINE


class TranscriptWanted(Exception):
    """The analysis needs a transcript that is to be made on the `transcribe` queue: its
    audio is stored, and its other steps are done. The run hands its work over
    (`states.*_transcribe_wait`) and its task queues the transcribe task with these."""

    def __init__(self, *, engine: str, model: str, language: str | None):
        super().__init__(f"transcript {engine}:{model}:{language or 'auto'} wanted")
        self.engine, self.model, self.language = engine, model, language


def source_transcribe(
    source: Source, *, engine: str, model: str, language: str | None
) -> dict[str, Any]:
    """The source's transcript by (`engine`, `model`, `language`), made from its stored
    audio on this worker's CLYPAI_WHISPER_DEVICE and stored, unless already there.
    Reads only storage and PostgreSQL: the audio was extracted on another machine."""
    from .pipeline.transcribe import transcribe

    def compute():
        name = source_audio_stored(source)
        wav = local_path(name, cache_dir=work_dir("cache"))
        return transcribe(
            wav,
            engine=engine,
            model=model,
            device=settings.CLYPAI_WHISPER_DEVICE,
            language=language,
        ).to_dict()

    return analysis_cached(
        source,
        Analysis.Kind.TRANSCRIPT,
        transcript_key(engine=engine, model=model, language=language),
        compute,
    )


def source_analyse(
    source: Source, *, language: str | None = None, on_stage=lambda stage: None
) -> SourceAnalysis:
    """Probe, transcribe, detect shots and measure audio: each once per source.

    Shots are detected in a thread beside the transcription, their decode on one thread,
    and the same thread then loads the selection's models, which the job needs next.
    Whisper keeps about 1.2 of this machine's 2 cores busy; measured on 180 s of 1080p
    with others' work running (load 4-5), one after the other took 66-70 s, side by side
    52-57 s. With ffmpeg's own threads (3) beside, the transcription lost more than the
    shots took alone (120 s instead of 67 s, for 35 s of shots, bench/pipeline.py).

    With transcription on its queue (`transcribe_on_queue()`) and no transcript yet, the
    audio is stored, loudness and shots are measured, and `TranscriptWanted` is raised:
    the caller hands the work to the transcribe task and calls this again afterwards.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .pipeline.audio import audio_features
    from .pipeline.scenes import detect_scenes
    from .pipeline.select import warm_up as select_warm_up
    from .pipeline.transcribe import transcribe

    path = local_path(source.file.name, cache_dir=work_dir("cache"))
    on_stage("probe")
    probe = source_probe(source, path)
    has_audio = bool(probe.get("audio"))
    engine, model = settings.CLYPAI_WHISPER_ENGINE, settings.CLYPAI_WHISPER_MODEL
    key = transcript_key(engine=engine, model=model, language=language)
    scenes_key = "content:v1"
    done = set(Analysis.objects.filter(source=source).values_list("kind", "key"))
    transcribed = (Analysis.Kind.TRANSCRIPT, key) in done
    wav = None
    if has_audio and not (transcribed and (Analysis.Kind.AUDIO, "rms:0.1") in done):
        on_stage("audio")
        wav = source_audio_path(source, path)
    if has_audio and not transcribed and transcribe_on_queue():
        # The transcript is made on the `transcribe` queue, from the stored audio; the
        # rest of the analysis is done here meanwhile, and found done when it comes back.
        source_audio_stored(source, path)
        analysis_cached(source, Analysis.Kind.AUDIO, "rms:0.1", lambda: audio_features(wav))
        on_stage("scenes")
        analysis_cached(
            source,
            Analysis.Kind.SCENES,
            scenes_key,
            lambda: detect_scenes(path, timeout=settings.CLYPAI_DECODE_TIMEOUT_SECONDS),
        )
        raise TranscriptWanted(engine=engine, model=model, language=language)
    on_stage("transcribe")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"beside-{source.pk}") as pool:
        stop = threading.Event()
        beside = None
        if wav is not None and (Analysis.Kind.SCENES, scenes_key) not in done:
            beside = pool.submit(
                _timed,
                detect_scenes,
                path,
                stop=stop,
                threads=1,
                timeout=settings.CLYPAI_DECODE_TIMEOUT_SECONDS,
            )
            # then load what selection needs next, unless the job is failing
            pool.submit(lambda: stop.is_set() or select_warm_up())
        try:
            if has_audio:
                transcript = analysis_cached(
                    source,
                    Analysis.Kind.TRANSCRIPT,
                    key,
                    lambda: transcribe(
                        wav,
                        engine=engine,
                        model=model,
                        device=settings.CLYPAI_WHISPER_DEVICE,
                        language=language,
                    ).to_dict(),
                )
                audio = analysis_cached(
                    source, Analysis.Kind.AUDIO, "rms:0.1", lambda: audio_features(wav)
                )
            else:  # a silent film still gets clips, from shots alone
                transcript = {"language": language, "text": "", "segments": []}
                audio = {}
        except BaseException:
            stop.set()  # the job fails: do not decode the rest of the source for nothing
            raise
        on_stage("scenes")
        scenes = analysis_cached(
            source,
            Analysis.Kind.SCENES,
            scenes_key,
            beside.result
            if beside is not None
            else lambda: detect_scenes(path, timeout=settings.CLYPAI_DECODE_TIMEOUT_SECONDS),
        )
    return SourceAnalysis(
        source=source, path=path, probe=probe, transcript=transcript, scenes=scenes, audio=audio
    )
