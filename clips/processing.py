"""Processing of a claimed clip: the pipeline's stages glued to the models.

Each stage checks for its own output before it works, so a rerun after a crash (the
sweep re-enqueues a clip whose worker died) reuses what an earlier run finished:
- the source's bytes are stored once under their SHA-256 (`Source`);
- the probe lives on the source; the audio track is extracted once into the work dir;
- transcript, scenes and audio features are `Analysis` rows keyed by source and by
  what produced them (engine, model, language, options).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from clypai.lib.storage import local_path
from webhooks.services import clip_event_emit, export_event_emit, job_event_emit

from .jobs import clip_fail
from .models import Analysis, Clip, Export, Job, Source, Upload
from .pipeline import StageError
from .platforms import MIN_CLIP_SECONDS, default_clip_seconds

if TYPE_CHECKING:
    from .pipeline.render import RenderSettings

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
def heartbeat(clip_id, *, interval: float | None = None, model=None):
    """Beat `heartbeat_at` from a thread while the body runs; the sweep goes by it.

    `model` is Clip by default; a Job beats the same way.
    """
    model = model or Clip
    interval = settings.CLYPAI_HEARTBEAT_SECONDS if interval is None else interval
    stop = threading.Event()

    def beat():
        try:
            while True:
                model.objects.filter(pk=clip_id, status=model.Status.PROCESSING).update(
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
    if not upload.sha256:
        # A presigned upload, recorded without hashing inside its request.
        digest = hashlib.sha256()
        with upload.file.storage.open(upload.file.name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(chunk)
        upload.sha256 = digest.hexdigest()
        Upload.objects.filter(pk=upload.pk).update(sha256=upload.sha256)
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
    """
    from concurrent.futures import ThreadPoolExecutor

    from .pipeline.audio import audio_features
    from .pipeline.scenes import detect_scenes
    from .pipeline.select import warm_up as select_warm_up
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
    scenes_key = "content:v1"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"beside-{source.pk}") as pool:
        stop = threading.Event()
        beside = None
        if (
            wav is not None
            and not Analysis.objects.filter(
                source=source, kind=Analysis.Kind.SCENES, key=scenes_key
            ).exists()
        ):
            beside = pool.submit(_timed, detect_scenes, path, stop=stop, threads=1)
            # then load what selection needs next, unless the job is failing
            pool.submit(lambda: stop.is_set() or select_warm_up())
        try:
            if wav is not None:
                transcript = _analysis(
                    source,
                    Analysis.Kind.TRANSCRIPT,
                    transcript_key(engine=engine, model=model, language=language),
                    lambda: transcribe(
                        wav,
                        engine=engine,
                        model=model,
                        device=settings.CLYPAI_WHISPER_DEVICE,
                        language=language,
                    ).to_dict(),
                )
                audio = _analysis(
                    source, Analysis.Kind.AUDIO, "rms:0.1", lambda: audio_features(wav)
                )
            else:  # a silent film still gets clips, from shots alone
                transcript = {"language": language, "text": "", "segments": []}
                audio = {}
        except BaseException:
            stop.set()  # the job fails: do not decode the rest of the source for nothing
            raise
        on_stage("scenes")
        scenes = _analysis(
            source,
            Analysis.Kind.SCENES,
            scenes_key,
            beside.result if beside is not None else lambda: detect_scenes(path),
        )
    return SourceAnalysis(
        source=source, path=path, probe=probe, transcript=transcript, scenes=scenes, audio=audio
    )


# Range checks -------------------------------------------------------------------------


def _check_range(clip: Clip, duration: float | None) -> None:
    if clip.start_time is None or duration is None:
        return
    if clip.start_time >= duration:
        raise StageError(
            f"startTime {clip.start_time:g} s is past the end of the source ({duration:.2f} s)",
            {"startTime": clip.start_time, "sourceDuration": duration},
            code="invalid_request",
            field="startTime",
        )
    if clip.end_time > duration + 0.05:
        raise StageError(
            f"endTime {clip.end_time:g} s is past the end of the source ({duration:.2f} s)",
            {"endTime": clip.end_time, "sourceDuration": duration},
            code="invalid_request",
            field="endTime",
        )


# Selection -----------------------------------------------------------------------------


def clip_bounds(
    *,
    platform: str = "",
    aspect_ratio: str = "9:16",
    max_duration: float | None = None,
    target_duration: float | None = None,
) -> tuple[float, float]:
    """(min, max) clip length in seconds for a request.

    `target_duration` (the Choppity API) asks for about that length; `max_duration`
    (/v1/'s maxDuration) caps it; otherwise the platform's default clip length does (a
    vertical YouTube clip is a Short: under a minute; see clips.platforms).
    """
    limit = default_clip_seconds(platform, aspect_ratio)
    if target_duration:
        hi = target_duration * 1.2
        lo = target_duration * 0.7
        if max_duration:
            hi = min(hi, max_duration)
        return (min(lo, hi), hi)
    hi = max_duration or limit
    return (min(MIN_CLIP_SECONDS, hi), hi)


def select_for(
    analysis: SourceAnalysis,
    *,
    count: int,
    criteria: str,
    min_duration: float,
    max_duration: float,
    start: float | None = None,
    end: float | None = None,
    hook_detection: bool = True,
):
    """The best clips of an analysed source (see clips.pipeline.select)."""
    from .pipeline.llm import llm_from_env
    from .pipeline.select import select_clips

    return select_clips(
        analysis.transcript,
        shots=analysis.scenes,
        audio=analysis.audio or None,
        criteria=criteria,
        count=count,
        min_duration=min_duration,
        max_duration=max_duration,
        start=start,
        end=end,
        hook_detection=hook_detection,
        llm=llm_from_env(),
    )


def _clip_words(transcript: dict, start: float, end: float) -> list[dict]:
    """The transcript's words inside [start, end], times still on the source's clock."""
    words = []
    for segment in transcript.get("segments", []):
        for w in segment.get("words", []):
            if w["start"] >= start - 0.05 and w["end"] <= end + 0.05:
                words.append(
                    {
                        "word": w["word"],
                        "start": w["start"],
                        "end": w["end"],
                        "probability": w.get("probability"),
                    }
                )
    return words


def _metadata(selected, *, shift: float = 0.0, hook_detection: bool = True) -> dict:
    """/v1/'s metadata object for a selected clip; `shift` moves times to the clip's start."""
    data = {
        "hooks": [{**h, "time": round(max(h["time"] + shift, 0.0), 2)} for h in selected.hooks]
        if hook_detection
        else [],
        "highlights": [round(max(t + shift, 0.0), 2) for t in selected.highlights],
        "sentiment": selected.sentiment,
        "topics": selected.topics,
        "scoreBreakdown": selected.score_breakdown,
        "reason": selected.reason,
    }
    return data


def _no_speech_clip(
    analysis: SourceAnalysis, *, start: float | None, end: float | None, max_duration: float
) -> tuple[float, float]:
    """A source without speech still gets a clip: whole shots from the start of the range."""
    duration = float(analysis.probe.get("duration") or 0.0)
    lo = start if start is not None else 0.0
    hi = end if end is not None else min(duration, lo + max_duration)
    cuts = [s["end"] for s in analysis.scenes if lo < s["end"] <= hi]
    if end is None and cuts and cuts[-1] - lo >= min(MIN_CLIP_SECONDS, hi - lo):
        hi = cuts[-1]
    return round(lo, 3), round(hi, 3)


def clip_select(clip: Clip, analysis: SourceAnalysis) -> None:
    """Fill a /v1/ clip's range (the best segment unless startTime was given), score, name
    and metadata. A clip that already has its metadata (a rerun, a job's clip) is kept."""
    if clip.metadata is not None:
        return
    lo, hi = clip_bounds(
        platform=clip.platform, aspect_ratio=clip.aspect_ratio, max_duration=clip.max_duration
    )
    exact = clip.start_time is not None
    if exact:  # the user's range is the clip; selection scores it and finds its moments
        span = clip.end_time - clip.start_time
        lo, hi = max(0.0, span * 0.6), span
    found = select_for(
        analysis,
        count=1,
        criteria=clip.criteria,
        min_duration=lo,
        max_duration=hi,
        start=clip.start_time,
        end=clip.end_time,
        hook_detection=clip.hook_detection,
    )
    update: dict[str, Any] = {}
    if found:
        best = found[0]
        if exact:
            start, end = clip.start_time, clip.end_time
            shift = best.start - start
        else:
            start, end, shift = best.start, best.end, 0.0
        update.update(
            start_time=start,
            end_time=end,
            duration=round(end - start, 3),
            score=best.score,
            metadata=_metadata(best, shift=shift, hook_detection=clip.hook_detection),
        )
        if not clip.name:
            update["name"] = best.title
    else:
        start, end = (
            (clip.start_time, clip.end_time)
            if exact
            else _no_speech_clip(analysis, start=None, end=None, max_duration=hi)
        )
        update.update(
            start_time=start,
            end_time=end,
            duration=round(end - start, 3),
            score=None,
            metadata={
                "hooks": [],
                "highlights": [],
                "sentiment": "neutral",
                "topics": [],
                "scoreBreakdown": {},
                "reason": "No speech in this range: cut on shots",
            },
        )
        if not clip.name:
            update["name"] = f"Clip at {int(start // 60)}:{int(start % 60):02d}"
    update["words"] = _clip_words(analysis.transcript, update["start_time"], update["end_time"])
    Clip.objects.filter(pk=clip.pk).update(**update, updated_at=timezone.now())
    for key, value in update.items():
        setattr(clip, key, value)


# Rendering -----------------------------------------------------------------------------


def _brand_caption_style(clip: Clip) -> tuple[dict[str, Any], int]:
    """The caption style for the renderer from the clip's brand kit (or the defaults),
    and how many words a caption chunk holds."""
    from brandkits.models import DEFAULT_CAPTION_STYLE

    kit = clip.brand_kit
    brand = kit.effective_caption_style if kit else dict(DEFAULT_CAPTION_STYLE)
    accent = kit.accent_color if kit else "#FFD60A"
    style: dict[str, Any] = {
        "size": brand.get("fontSize"),
        "color": brand.get("textColor"),
        "highlightColor": brand.get("highlightColor") or accent,
        "outlineColor": brand.get("outlineColor"),
        "outline": brand.get("outlineWidth"),
        "box": brand.get("box"),
        "boxColor": (brand.get("boxColor") or "#000000")[:7],
        "position": brand.get("position")
        if brand.get("position") in ("top", "middle", "bottom")
        else "bottom",
        "uppercase": brand.get("uppercase"),
    }
    if kit and kit.font_file:
        style["font"] = str(local_path(kit.font_file.name, cache_dir=_work_dir("cache")))
    elif brand.get("fontFamily") and brand["fontFamily"] != "DejaVu Sans":
        style["font"] = brand["fontFamily"]
    return style, int(brand.get("maxWordsPerChunk") or 4)


def _brand_watermark(clip: Clip) -> dict[str, Any] | None:
    kit = clip.brand_kit
    if not kit or not kit.logo:
        return None
    mark = kit.effective_watermark
    return {
        "path": str(local_path(kit.logo.name, cache_dir=_work_dir("cache"))),
        "position": mark.get("position", "top-right"),
        "scale": float(mark.get("scale", 0.15)),
        "opacity": float(mark.get("opacity", 0.8)),
    }


def clip_crop_path(clip: Clip, path: Path, analysis: SourceAnalysis | None) -> dict[str, Any]:
    """The clip's crop path: stored with the clip once computed (an editor may reuse it)."""
    from .pipeline.faces import detect_faces
    from .pipeline.probe import ProbeLimits, probe
    from .pipeline.reframe import crop_path

    wanted = {
        "aspect": clip.aspect_ratio,
        "reframing": clip.reframing,
        "layout": clip.layout,
        "start": clip.start_time,
        "end": clip.end_time,
    }
    stored = clip.crop_path or {}
    if stored.get("request") == wanted:
        return stored["path"]
    info = probe(path, limits=ProbeLimits(max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS))
    source = clip.source
    faces = None
    if clip.reframing:
        key = f"mediapipe:{clip.start_time:.3f}-{clip.end_time:.3f}"
        faces = _analysis(
            source,
            Analysis.Kind.FACES,
            key,
            lambda: detect_faces(
                path, start=clip.start_time, end=clip.end_time, probe=info
            ).to_dict(),
        )
    scenes = (
        analysis.scenes
        if analysis
        else (
            Analysis.objects.filter(source=source, kind=Analysis.Kind.SCENES)
            .values_list("result", flat=True)
            .first()
            or []
        )
    )
    audio = (
        analysis.audio
        if analysis
        else (
            Analysis.objects.filter(source=source, kind=Analysis.Kind.AUDIO)
            .values_list("result", flat=True)
            .first()
            or {}
        )
    )
    result = crop_path(
        source_width=info.video.display_width,
        source_height=info.video.display_height,
        start=clip.start_time,
        end=clip.end_time,
        aspect=clip.aspect_ratio,
        shots=scenes,
        faces=faces,
        loudness=(audio or {}).get("loudness"),
        loudness_window=(audio or {}).get("window", 0.1),
        reframing=clip.reframing,
        layout=clip.layout or "auto",
    ).to_dict()
    Clip.objects.filter(pk=clip.pk).update(crop_path={"request": wanted, "path": result})
    clip.crop_path = {"request": wanted, "path": result}
    return result


def clip_captions(clip: Clip) -> list:
    """Caption chunks of the clip's (possibly corrected) words, times from its start."""
    from .pipeline.captions import caption_chunks

    _, max_words = _brand_caption_style(clip)
    return caption_chunks(
        clip.words or [], start=clip.start_time, end=clip.end_time, max_words=max_words
    )


def clip_write_captions(clip: Clip) -> None:
    """Store the clip's SRT (and a VTT beside it) from its words."""
    from .pipeline.captions import to_srt, to_vtt

    chunks = clip_captions(clip)
    srt = ContentFile(to_srt(chunks).encode("utf-8"), name=f"{clip.pk}.srt")
    if clip.captions:
        clip.captions.storage.delete(clip.captions.name)
    clip.captions.save(f"{clip.pk}.srt", srt, save=False)
    vtt_name = clip.captions.name[: -len(".srt")] + ".vtt"
    if default_storage.exists(vtt_name):
        default_storage.delete(vtt_name)
    default_storage.save(vtt_name, ContentFile(to_vtt(chunks).encode("utf-8")))
    Clip.objects.filter(pk=clip.pk).update(captions=clip.captions.name)


def _bumpers(clip: Clip) -> tuple[Path | None, Path | None]:
    """The brand kit's intro and outro files, local, when it has them."""
    kit = clip.brand_kit
    if kit is None:
        return None, None
    found = []
    for upload in (kit.intro_upload, kit.outro_upload):
        found.append(
            local_path(upload.file.name, cache_dir=_work_dir("cache"))
            if upload is not None and upload.file
            else None
        )
    return found[0], found[1]


def render_variant(
    clip: Clip,
    out: Path,
    *,
    render_settings: RenderSettings,
    burn: bool,
    analysis: SourceAnalysis | None = None,
    bumpers: bool = True,
    stills: list[float] | None = None,
):
    """Render the clip with these render settings into `out` (the work dir), with the
    brand kit's intro and outro around it when it has them and `bumpers` is on. `stills`:
    clip seconds whose frames the result keeps (render_clip's), for the thumbnail."""
    from .pipeline.captions import fonts_dir, write_ass
    from .pipeline.render import Captions, join_bumpers, render_clip

    render_settings = replace(render_settings, max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS)
    path = local_path(clip.source.file.name, cache_dir=_work_dir("cache"))
    crop = clip_crop_path(clip, path, analysis)
    intro, outro = _bumpers(clip) if bumpers else (None, None)
    captions = None
    if burn and clip.words:
        style, _ = _brand_caption_style(clip)
        chunks = clip_captions(clip)
        if chunks:
            ass = write_ass(
                out.with_suffix(".ass"),
                chunks,
                width=render_settings.width,
                height=render_settings.height,
                style=style,
                platform=clip.platform or "default",
            )
            captions = Captions(ass, fonts_dir(style))
    main = out.with_name(f"{out.stem}.main{out.suffix}") if intro or outro else out
    try:
        result = render_clip(
            path,
            main,
            start=clip.start_time,
            end=clip.end_time,
            settings=render_settings,
            crop_path=crop,
            captions=captions,
            watermark=_brand_watermark(clip),
            stills=stills or (),
        )
        if main is out:
            return result
        joined = join_bumpers(main, out, intro=intro, outro=outro, settings=render_settings)
        return replace(joined, stills=result.stills)
    finally:
        if captions:
            Path(captions.ass).unlink(missing_ok=True)
        if main is not out:
            main.unlink(missing_ok=True)


def clip_render(clip: Clip, analysis: SourceAnalysis | None, *, kind: str) -> None:
    """Render a clip's preview ("preview": 480 px on the short side, fast) or its full
    video ("full": 1080 px), with its thumbnail and captions, and store them on the clip.

    Captions are burned in when the clip's config enables them; the SRT and VTT are
    always written. Rendering again replaces the earlier file.
    """
    from .pipeline.render import thumbnail, thumbnail_from_stills
    from .platforms import full_settings, preview_settings

    if clip.start_time is None or clip.end_time is None:
        raise StageError("The clip has no range to render", {"stage": "render"})
    clip.refresh_from_db()
    work = _work_dir("render", clip.pk)
    out = work / f"{kind}.mp4"
    render_settings = (
        preview_settings(clip.aspect_ratio)
        if kind == "preview"
        else full_settings(clip.aspect_ratio)
    )
    stills = None
    if not clip.thumbnail:  # candidates for the thumbnail, kept by the render's reader
        length = clip.end_time - clip.start_time
        stills = [length * f for f in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85)]
        stills += [hook["time"] + 0.5 for hook in (clip.metadata or {}).get("hooks", [])[:2]]
        stills = [t for t in stills if 0 <= t < length]
    # Previews are for choosing: the brand kit's intro and outro join the full render.
    result = render_variant(
        clip,
        out,
        render_settings=render_settings,
        burn=clip.enable_captions,
        analysis=analysis,
        bumpers=kind != "preview",
        stills=stills,
    )
    kept = getattr(result, "stills", None)
    field = clip.preview if kind == "preview" else clip.video
    if field:
        field.storage.delete(field.name)
    with open(out, "rb") as fh:
        field.save(f"{clip.pk}.mp4", File(fh), save=False)
    update = {"preview" if kind == "preview" else "video": field.name}

    if not clip.thumbnail:
        jpg = work / "thumbnail.jpg"
        width = min(render_settings.width, 720)
        if kept:  # the render's own frames: nothing decoded twice
            thumbnail_from_stills(kept, jpg, width=width)
        else:
            from .pipeline.reframe import CropPath

            path = local_path(clip.source.file.name, cache_dir=_work_dir("cache"))
            thumbnail(
                path,
                jpg,
                times=[clip.start_time + t for t in stills or [0.0]],
                crop=CropPath.from_dict(clip.crop_path["path"]) if clip.crop_path else None,
                clip_start=clip.start_time,
                width=width,
                max_pixels=settings.CLYPAI_FFMPEG_MAX_PIXELS,
            )
        with open(jpg, "rb") as fh:
            clip.thumbnail.save(f"{clip.pk}.jpg", File(fh), save=False)
        update["thumbnail"] = clip.thumbnail.name
    Clip.objects.filter(pk=clip.pk).update(**update, updated_at=timezone.now())
    clip_write_captions(clip)
    for leftover in work.iterdir():
        leftover.unlink(missing_ok=True)
    logger.info(
        "clip %s: %s render %dx%d in %.1f s",
        clip.pk,
        kind,
        result.width,
        result.height,
        result.seconds,
    )


# The clip ----------------------------------------------------------------------------


def clip_process(*, clip: Clip) -> None:
    """Take a claimed (processing) clip through the pipeline to completed or failed."""
    with heartbeat(clip.pk):
        try:
            _set_stage(clip.pk, "ingest")
            source = clip_source(clip)
            analysis = source_analyse(
                source,
                language=clip.language or None,
                on_stage=lambda stage: _set_stage(clip.pk, stage),
            )
            _check_range(clip, analysis.probe.get("duration"))
            _set_stage(clip.pk, "select")
            clip_select(clip, analysis)
            kind = "full"
            if clip.job_id is not None:
                kind = Job.objects.values_list("render", flat=True).get(pk=clip.job_id)
            if kind != Job.Render.NONE:
                _set_stage(clip.pk, "render")
                clip_render(clip, analysis, kind=kind)
                if kind == Job.Render.FULL:
                    # Counted once made; the request was checked for minutes left.
                    from projects.services import usage_charge_render

                    clip.refresh_from_db(fields=["start_time", "end_time"])
                    usage_charge_render(
                        team_id=clip.team_id, seconds=clip.end_time - clip.start_time
                    )
            completed = Clip.objects.filter(pk=clip.pk, status=Clip.Status.PROCESSING).update(
                status=Clip.Status.COMPLETED,
                stage="done",
                progress=100,
                error="",
                error_code="",
                error_field="",
                error_details=None,
                updated_at=timezone.now(),
            )
            if completed:
                clip_event_emit(clip_id=clip.pk, type="clip.completed")
        except StageError as err:
            _stage_failed(clip, err)
        except Exception as exc:
            logger.exception("clip %s failed unexpectedly", clip.pk)
            clip_fail(
                clip, message=f"Clip generation failed: internal error ({type(exc).__name__})"
            )
        finally:
            if clip.job_id is not None:
                job_refresh(clip.job_id)
            close_old_connections()


# Jobs (several clips of one source) --------------------------------------------------

JOB_STAGE_PROGRESS = {
    "ingest": 2,
    "probe": 8,
    "audio": 10,
    "transcribe": 12,
    "scenes": 60,
    "select": 75,
    "render": 80,
}


def _set_job_stage(job_id, stage: str) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.PROCESSING).update(
        stage=stage, progress=JOB_STAGE_PROGRESS.get(stage, 0), updated_at=timezone.now()
    )


def job_fail(
    job: Job, *, message: str, code: str = "processing_failed", details: dict | None = None
) -> None:
    failed = Job.objects.filter(pk=job.pk).update(
        status=Job.Status.ERROR,
        error=message,
        error_code=code,
        error_details=details,
        updated_at=timezone.now(),
    )
    from .services import job_generation_refund

    job_generation_refund(job_id=job.pk)
    if failed:
        job_event_emit(job_id=job.pk, type="job.error")


def job_source(job: Job) -> Source:
    if job.source_id:
        return job.source
    source = (
        source_ingest_upload(job.upload) if job.upload_id else source_ingest_url(job.source_url)
    )
    Job.objects.filter(pk=job.pk).update(source=source)
    job.source = source
    return source


def job_process(*, job: Job) -> None:
    """Analyse a claimed job's source, select its clips and queue each clip's render.

    The clips are created once (a rerun after a crash finds them); each is then an
    ordinary clip whose processing renders it, and the job is done when all are.
    """
    from clypai.queues import enqueue_on_commit

    with heartbeat(job.pk, model=Job):
        try:
            _set_job_stage(job.pk, "ingest")
            source = job_source(job)
            if not job.clips.exists():
                analysis = source_analyse(
                    source,
                    language=job.language or None,
                    on_stage=lambda stage: _set_job_stage(job.pk, stage),
                )
                _set_job_stage(job.pk, "select")
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
                    if found:
                        for rank, selected in enumerate(found, start=1):
                            _job_clip(job, source, analysis, rank=rank, selected=selected)
                    else:
                        start, end = _no_speech_clip(
                            analysis, start=None, end=None, max_duration=hi
                        )
                        _job_clip(
                            job, source, analysis, rank=1, selected=None, start=start, end=end
                        )
            _set_job_stage(job.pk, "render")
            with transaction.atomic():
                for clip_id in job.clips.filter(status=Clip.Status.PENDING).values_list(
                    "id", flat=True
                ):
                    enqueue_on_commit(
                        "render", "clips.jobs.clip_process_job", clip_id, job_id=clip_id
                    )
        except StageError as err:
            job_fail(job, message=err.message, code=err.code, details=err.details or None)
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", job.pk)
            job_fail(job, message=f"Clip generation failed: internal error ({type(exc).__name__})")
        finally:
            job_refresh(job.pk)
            close_old_connections()


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
        metadata = _metadata(selected)
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
        criteria=job.criteria,
        language=job.language,
        metadata=metadata,
        words=_clip_words(analysis.transcript, start, end),
    )


def job_refresh(job_id) -> None:
    """Settle a processing job from its clips: done when every clip is, error when one
    failed. A job still analysing (no clips yet) is left alone."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != Job.Status.PROCESSING:
            return
        states = list(job.clips.values_list("status", "error"))
        if not states:
            return
        failed = [error for status, error in states if status == Clip.Status.FAILED]
        if failed:
            errored = Job.objects.filter(pk=job.pk).update(
                status=Job.Status.ERROR,
                error=failed[0],
                error_code="processing_failed",
                updated_at=timezone.now(),
            )
            from .services import job_generation_refund

            job_generation_refund(job_id=job.pk)
            if errored:
                job_event_emit(job_id=job.pk, type="job.error")
        elif all(status in (Clip.Status.COMPLETED, Clip.Status.EXPORTED) for status, _ in states):
            if Job.objects.filter(pk=job.pk).update(
                status=Job.Status.DONE, stage="done", progress=100, updated_at=timezone.now()
            ):
                job_event_emit(job_id=job.pk, type="job.done")


def _stage_failed(clip: Clip, err: StageError) -> None:
    """A permanent error fails the clip; a passing one is retried with backoff."""
    attempts = clip.attempts + 1
    if err.permanent or attempts >= settings.CLYPAI_MAX_ATTEMPTS or settings.CLYPAI_JOBS_INLINE:
        message = err.message
        if err.code == "processing_failed" and not message.startswith("Clip generation failed"):
            message = f"Clip generation failed: {message}"
        clip_fail(
            clip, message=message, code=err.code, field=err.field or "", details=err.details or None
        )
        return
    delay = settings.CLYPAI_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1)
    updated = Clip.objects.filter(pk=clip.pk, status=Clip.Status.PROCESSING).update(
        status=Clip.Status.PENDING,
        attempts=attempts,
        stage="retry-wait",
        error=err.message,
        updated_at=timezone.now(),
    )
    if updated:
        from datetime import timedelta

        from clypai.queues import get_queue

        logger.info("clip %s: %s; retrying in %.0f s", clip.pk, err.message, delay)
        get_queue("analysis").enqueue_in(
            timedelta(seconds=delay), "clips.jobs.clip_process_job", clip.pk, job_id=clip.pk
        )


def export_process(*, export: Export) -> None:
    """Produce an export's file (format, quality, platform preset, captions burned or not),
    or record why it could not be made. The clip becomes `exported`."""
    from .platforms import export_settings

    claimed = Export.objects.filter(
        pk=export.pk, status__in=(Export.Status.QUEUED, Export.Status.FAILED)
    ).update(status=Export.Status.PROCESSING, updated_at=timezone.now())
    if not claimed:
        return
    clip = Clip.objects.select_related("source", "brand_kit").get(pk=export.clip_id)
    work = _work_dir("export", export.pk)
    out = work / f"{export.pk}.{export.format}"
    try:
        render_settings = export_settings(
            aspect=clip.aspect_ratio, quality=export.quality, platform=export.platform or None
        )
        render_variant(
            clip,
            out,
            render_settings=replace(render_settings, container=export.format),
            burn=export.burn_captions,
        )
        with open(out, "rb") as fh:
            export.file.save(out.name, File(fh), save=False)
        size = out.stat().st_size
    except (StageError, ValueError) as err:
        message = getattr(err, "message", None) or str(err)
        if Export.objects.filter(pk=export.pk).update(
            status=Export.Status.FAILED, error=message, updated_at=timezone.now()
        ):
            export_event_emit(export_id=export.pk, type="export.failed")
        return
    except Exception as exc:
        logger.exception("export %s failed unexpectedly", export.pk)
        if Export.objects.filter(pk=export.pk).update(
            status=Export.Status.FAILED,
            error=f"internal error ({type(exc).__name__})",
            updated_at=timezone.now(),
        ):
            export_event_emit(export_id=export.pk, type="export.failed")
        return
    finally:
        out.unlink(missing_ok=True)
        close_old_connections()
    if Export.objects.filter(pk=export.pk).update(
        status=Export.Status.COMPLETED,
        file=export.file.name,
        file_size=size,
        error="",
        updated_at=timezone.now(),
    ):
        export_event_emit(export_id=export.pk, type="export.ready")
    if Clip.objects.filter(pk=clip.pk, status=Clip.Status.COMPLETED).update(
        status=Clip.Status.EXPORTED, updated_at=timezone.now()
    ):
        clip_event_emit(clip_id=clip.pk, type="clip.exported")
