"""Writes for uploads, clips and exports: the API, dashboard and CLI all call these."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from brandkits.models import BrandKit
from clypai.api.errors import ApiError, Conflict, InvalidRequest, NotFound
from clypai.lib.safe_http import reach_url
from clypai.queues import enqueue_on_commit
from projects.models import Project, Team
from projects.services import (
    default_project,
    usage_check_render_minutes,
    usage_lock,
    usage_reserve_clips,
    usage_reserve_render,
)

from . import states
from .models import Analysis, Clip, Export, Job, Upload
from .platforms import EXPORT_TIMELINES, target_seconds
from .rendering import clip_caption_files
from .selection import clip_bounds, clip_words_in
from .selectors import team_work_in_flight
from .tasks import (
    clip_process_task,
    clip_rerender_task,
    export_process_task,
    full_render_rq_id,
    full_render_task,
    job_process_task,
    rerender_rq_id,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def upload_create(
    *, team: Team, file: File, filename: str, content_type: str = "", sha256: str
) -> Upload:
    """Store an uploaded file for `team`; `file` is a temporary file already hashed."""
    filename = (filename or "upload").replace("/", "_").replace("\\", "_")[:255]
    upload = Upload(
        team=team,
        filename=filename,
        content_type=(content_type or "")[:120],
        size_bytes=file.size,
        sha256=sha256,
    )
    upload.file.save(filename, file, save=False)
    upload.save()
    return upload


SOURCE_NOT_ACCESSIBLE = "Source video URL is not accessible"


def source_url_check(url: str, *, field: str) -> None:
    """Refuse a source URL that does not answer now: InvalidRequest on `field` with the
    document's message, the same whatever the cause (refused, private or unresolvable
    address, no connection, an HTTP error), so the answer tells nothing about networks
    it may not reach. The reason goes to the log. A host that says nothing within
    CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS (or fails in a way that may pass) is accepted:
    the worker's download decides. Side effects: one guarded GET of one byte."""
    timeout = settings.CLYPAI_SOURCE_CHECK_TIMEOUT_SECONDS
    if not url or not timeout:
        return
    found = reach_url(
        url,
        timeout=timeout,
        allowlist=settings.CLYPAI_URL_ALLOWLIST,
        max_redirects=settings.CLYPAI_FETCH_MAX_REDIRECTS,
    )
    if found.reachable is False:
        logger.info("source URL refused at creation: %s", found.reason)
        raise InvalidRequest(SOURCE_NOT_ACCESSIBLE, field=field)
    if found.reachable is None:
        logger.info("source URL undecided at creation, accepted: %s", found.reason)


# Compute a team may use -----------------------------------------------------------------


def work_in_flight_check(team: Team) -> None:
    """Refuse a request that would queue more of the team's work while it has
    CLYPAI_MAX_IN_FLIGHT_PER_TEAM pieces queued or running (clips, jobs, exports, full
    renders): 429 `rate_limited` with Retry-After, so one team cannot fill the queues.
    Call it holding the team's usage row (`usage_lock`, or a reservation), in the
    transaction that queues the work: concurrent requests then count one another."""
    limit = settings.CLYPAI_MAX_IN_FLIGHT_PER_TEAM
    if not limit:
        return
    in_flight = team_work_in_flight(team_id=team.pk)
    if in_flight >= limit:
        wait = max(int(settings.CLYPAI_IN_FLIGHT_RETRY_AFTER_SECONDS), 1)
        raise ApiError(
            f"Too much work in progress: a team may have {limit} clips, jobs, exports and "
            "renders queued or running at once; retry when one has finished",
            code="rate_limited",
            status_code=429,
            details={"inFlight": in_flight, "limit": limit, "retryAfter": wait},
            headers={"Retry-After": str(wait)},
        )


def clip_length_check(team: Team, *, start: float | None, end: float | None, config: dict) -> None:
    """Refuse (400 naming the field) a clip longer than the team's plan allows: an
    explicit range (`endTime`), or a `config.maxDuration`."""
    longest = team.limits().clip_seconds
    if start is not None and end is not None and end - start > longest + 1e-6:
        raise InvalidRequest(
            f"endTime - startTime ({end - start:g} s) is longer than the longest clip your "
            f"plan allows ({longest:g} s)",
            field="endTime",
        )
    max_duration = config.get("maxDuration")
    if max_duration is not None and max_duration > longest + 1e-6:
        raise InvalidRequest(
            f"maxDuration ({max_duration:g} s) is longer than the longest clip your plan "
            f"allows ({longest:g} s)",
            field="config.maxDuration",
        )


def clip_render_estimate(
    *, start: float | None, end: float | None, platform: str, aspect_ratio: str, max_duration
) -> float:
    """The most seconds a /v1 clip's full render can last: its range when it names one,
    else the longest the selection may pick. Reserved before any work, settled to the
    clip's real length once it is known (`states.clip_render_settle`)."""
    if start is not None and end is not None:
        return round(max(end - start, 0.0), 3)
    return clip_bounds(platform=platform, aspect_ratio=aspect_ratio, max_duration=max_duration)[1]


@dataclass
class ClipSpec:
    """What a clip request asks for, already validated by the caller's serializer."""

    name: str = ""
    source_url: str = ""
    upload: Upload | None = None
    project: Project | None = None
    start_time: float | None = None
    end_time: float | None = None
    config: dict[str, Any] = field(default_factory=dict)


_CONFIG_COLUMNS = {
    "aspectRatio": "aspect_ratio",
    "platform": "platform",
    "enableCaptions": "enable_captions",
    "reframing": "reframing",
    "layout": "layout",
    "hookDetection": "hook_detection",
    "brandKit": "brand_kit",
    "maxDuration": "max_duration",
    "criteria": "criteria",
    "language": "language",
}


def clip_create(*, team: Team, spec: ClipSpec) -> Clip:
    """Create a pending clip, count it against the monthly quota, queue its processing.
    A source URL that does not answer is refused first (`source_url_check`).

    All or nothing: a quota refusal or any error leaves no clip and no usage behind.
    Under the team's usage row lock it counts a generation, checks the team's work in
    flight and reserves the render minutes of the clip's full render (its range, or the
    longest the selection may pick), settled to its real length once it is done.
    The processing job is enqueued only after the transaction commits.
    """
    if bool(spec.source_url) == bool(spec.upload):
        raise InvalidRequest(
            "Exactly one of sourceVideoUrl and sourceUploadId is required", field="sourceVideoUrl"
        )
    if spec.upload is not None and spec.upload.team_id != team.pk:
        raise InvalidRequest("Unknown upload", field="sourceUploadId")
    if spec.project is not None and spec.project.team_id != team.pk:
        raise InvalidRequest("Unknown project", field="projectId")
    brand_kit = spec.config.get("brandKit")
    if brand_kit is not None and brand_kit.team_id != team.pk:
        raise InvalidRequest("Unknown brand kit", field="config.brandKitId")
    clip_length_check(team, start=spec.start_time, end=spec.end_time, config=spec.config)
    source_url_check(spec.source_url, field="sourceVideoUrl")
    render_seconds = clip_render_estimate(
        start=spec.start_time,
        end=spec.end_time,
        platform=spec.config.get("platform") or "",
        aspect_ratio=spec.config.get("aspectRatio") or "9:16",
        max_duration=spec.config.get("maxDuration"),
    )
    with transaction.atomic():
        usage_reserve_clips(team=team, count=1)  # holds the usage row from here on
        work_in_flight_check(team)
        usage_reserve_render(team=team, seconds=render_seconds)  # its full render
        clip = Clip(
            team=team,
            project=spec.project or default_project(team=team),
            name=spec.name or "",
            source_url=spec.source_url or "",
            upload=spec.upload,
            source=spec.upload.source if spec.upload else None,
            start_time=spec.start_time,
            end_time=spec.end_time,
            duration=(
                round(spec.end_time - spec.start_time, 3)
                if spec.start_time is not None and spec.end_time is not None
                else None
            ),
            render_reserved_seconds=render_seconds,
            render_reserved_at=timezone.now(),
        )
        for key, column in _CONFIG_COLUMNS.items():
            if key in spec.config and spec.config[key] is not None:
                setattr(clip, column, spec.config[key])
        clip.save()
        enqueue_on_commit("analysis", clip_process_task, clip.pk, job_id=clip.pk)
    return clip


@dataclass
class JobSpec:
    """A request for several clips of one source (the Choppity API, the CLI's --count)."""

    source_url: str = ""
    upload: Upload | None = None
    project: Project | None = None
    criteria: str = ""
    target_duration: float | None = None
    language: str = ""
    count: int | None = None
    aspect_ratio: str = "9:16"
    platform: str = ""
    clip_video: str = Job.ClipVideo.PREVIEW
    enable_captions: bool = True
    layout: str = "auto"
    brand_kit: BrandKit | None = None


def job_create(*, team: Team, spec: JobSpec) -> Job:
    """Create a queued job, count it as one clip generation, queue its processing.

    `target_duration` may be any positive number: it is kept clamped to what selection
    can cut (`clips.platforms.TARGET_SECONDS`). A source URL that does not answer is
    refused first (`source_url_check`, on `source.url`)."""
    if bool(spec.source_url) == bool(spec.upload):
        raise InvalidRequest(
            "Exactly one of source.url and source.upload_id is required", field="source"
        )
    if spec.upload is not None and spec.upload.team_id != team.pk:
        raise InvalidRequest("Unknown upload", field="source.upload_id")
    if spec.project is not None and spec.project.team_id != team.pk:
        raise InvalidRequest("Unknown project", field="project")
    if spec.brand_kit is not None and spec.brand_kit.team_id != team.pk:
        raise InvalidRequest("Unknown brand kit", field="brand_kit")
    source_url_check(spec.source_url, field="source.url")
    if spec.clip_video == Job.ClipVideo.FULL:
        usage_check_render_minutes(team=team)
    with transaction.atomic():
        usage_reserve_clips(team=team, count=1)  # holds the usage row from here on
        work_in_flight_check(team)
        job = Job.objects.create(
            team=team,
            project=spec.project or default_project(team=team),
            source_url=spec.source_url or "",
            upload=spec.upload,
            source=spec.upload.source if spec.upload else None,
            criteria=spec.criteria or "",
            target_duration=target_seconds(spec.target_duration),
            language=spec.language or "",
            count=spec.count or settings.CLYPAI_JOB_CLIP_COUNT,
            aspect_ratio=spec.aspect_ratio,
            platform=spec.platform or "",
            clip_video=spec.clip_video,
            enable_captions=spec.enable_captions,
            layout=spec.layout or "auto",
            brand_kit=spec.brand_kit,
        )
        enqueue_on_commit("analysis", job_process_task, str(job.pk), job_id=str(job.pk))
    return job


MAX_WORD_CHARS = 100


def clip_words_correct(*, clip: Clip, corrections: Any) -> bool:
    """Correct words of a clip's transcript before (or after) burn-in.

    `corrections`: a list of `{"index": i, "word": text}` (times may be moved too with
    `start`/`end`, inside the clip and in order). The SRT and VTT (when the clip has
    captions enabled) are rewritten at once;
    exports with burned captions, and timelines (their SRT and caption lane), are dropped
    (the next export makes the correction);
    a rendered clip is queued for a re-render (its full video counted against the render
    minutes: QuotaExceeded, and nothing saved, past them; `states.rerender_queue`).
    Returns whether a re-render was queued. Validation is all or nothing, naming the
    first bad field.
    """
    if clip.status not in (Clip.Status.COMPLETED, Clip.Status.EXPORTED):
        raise Conflict(
            f"The transcript cannot be corrected while the clip is {clip.status}",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    words = [dict(w) for w in clip.words or []]
    if not isinstance(corrections, list) or not corrections:
        raise InvalidRequest("words must be a non-empty list of corrections", field="words")
    seen = set()
    for n, item in enumerate(corrections):
        where = f"words[{n}]"
        if not isinstance(item, dict):
            raise InvalidRequest("Each correction is an object with index and word", field=where)
        unknown = set(item) - {"index", "word", "start", "end"}
        if unknown:
            raise InvalidRequest(
                f"Unknown field {sorted(unknown)[0]!r}", field=f"{where}.{sorted(unknown)[0]}"
            )
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(words):
            raise InvalidRequest(
                f"index must be an integer from 0 to {len(words) - 1}", field=f"{where}.index"
            )
        if index in seen:
            raise InvalidRequest(
                "Each word may be corrected once per request", field=f"{where}.index"
            )
        seen.add(index)
        if "word" in item:
            text = item["word"]
            if (
                not isinstance(text, str)
                or not text.strip()
                or len(text) > MAX_WORD_CHARS
                or any(c in text for c in "\r\n\x00{}")
            ):
                raise InvalidRequest(
                    f"word must be 1 to {MAX_WORD_CHARS} characters on one line, without braces",
                    field=f"{where}.word",
                )
            words[index]["word"] = " " + text.strip()
        for key in ("start", "end"):
            if key in item:
                value = item[key]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not (clip.start_time <= value <= clip.end_time)
                ):
                    raise InvalidRequest(
                        f"{key} must be a time in seconds inside the clip "
                        f"({clip.start_time:g}–{clip.end_time:g})",
                        field=f"{where}.{key}",
                    )
                words[index][key] = float(value)
    for k, w in enumerate(words):
        if w["end"] < w["start"] or (k and w["start"] < words[k - 1]["start"]):
            raise InvalidRequest("Word times must stay in order", field="words")
    with transaction.atomic():
        rerender = bool(clip.video or clip.preview)
        if rerender:  # first: refused for render minutes, nothing is saved
            states.rerender_queue(clip)
            enqueue_on_commit("render", clip_rerender_task, clip.pk, job_id=rerender_rq_id(clip.pk))
        Clip.objects.filter(pk=clip.pk).update(words=words, updated_at=timezone.now())
        clip.words = words
        stale = list(clip.exports.filter(Q(burn_captions=True) | Q(format__in=EXPORT_TIMELINES)))
        Export.objects.filter(pk__in=[e.pk for e in stale]).delete()
    clip_caption_files(clip)
    for export in stale:
        if export.file:
            export.file.storage.delete(export.file.name)
    return rerender


CROP_LAYOUTS = ("fill", "fit", "split")
MAX_CROP_KEYFRAMES = 500


def clip_crop_override(*, clip: Clip, override: Any) -> bool:
    """Set (or, with None, clear) the hand override of a clip's crop path.

    `override` (times in clip seconds, positions in source pixels): {"shots": [{"shot": i,
    and one of "center": {x, y} (with an optional "zoom" 1-4), "face": a face id that
    GET lists for that shot, "layout": fill | fit | split}]} or {"keyframes": [{t, x, y,
    zoom}]}. It is stored in source seconds (shots by their span, a face with its box too)
    so that it outlives a re-cut of the range wherever the shot is still inside it. Exports
    are dropped (their picture changes) and a rendered clip is queued for a re-render,
    which lays the override over the automatic path (counted as a transcript
    correction's: QuotaExceeded, nothing saved, past the render minutes). Returns whether
    a re-render was queued. Validation is all or nothing, naming the first bad field.
    """
    from .selectors import clip_shot_faces

    if clip.status not in (Clip.Status.COMPLETED, Clip.Status.EXPORTED):
        raise Conflict(
            f"The crop cannot be changed while the clip is {clip.status}",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    stored = dict(clip.crop_path or {})
    path = stored.get("path")
    if override is not None and not path:
        raise Conflict("The clip has no crop path yet: render it first", code="clip_not_ready")
    if override is not None:
        override = _crop_override_source(clip, override, path, clip_shot_faces(clip=clip))
    if override:
        stored["override"] = override
    else:
        stored.pop("override", None)
    stored["request"] = None  # the next render lays the override over the automatic path
    with transaction.atomic():
        rerender = bool(clip.video or clip.preview)
        if rerender:  # first: refused for render minutes, nothing is saved
            states.rerender_queue(clip)
            enqueue_on_commit("render", clip_rerender_task, clip.pk, job_id=rerender_rq_id(clip.pk))
        Clip.objects.filter(pk=clip.pk).update(crop_path=stored, updated_at=timezone.now())
        clip.crop_path = stored
        stale = list(clip.exports.all())
        Export.objects.filter(pk__in=[e.pk for e in stale]).delete()
    for export in stale:
        if export.file:
            export.file.storage.delete(export.file.name)
    return rerender


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"must be a number from {low:g} to {high:g}", field=field)
    return float(value)


def _crop_override_source(
    clip: Clip, override: Any, path: dict, faces: list[list[dict]]
) -> dict[str, Any]:
    """The API's override (clip seconds, shots by index) in source seconds."""
    where = "cropOverride"
    if not isinstance(override, dict) or len(set(override) & {"shots", "keyframes"}) != 1:
        raise InvalidRequest("Give either shots or keyframes", field=where)
    unknown = set(override) - {"shots", "keyframes"}
    if unknown:
        raise InvalidRequest(f"Unknown field {sorted(unknown)[0]!r}", field=where)
    width, height = path["sourceWidth"], path["sourceHeight"]
    start, length = clip.start_time, clip.end_time - clip.start_time
    if "keyframes" in override:
        points = override["keyframes"]
        if not isinstance(points, list) or not 1 <= len(points) <= MAX_CROP_KEYFRAMES:
            raise InvalidRequest(
                f"keyframes must be a list of 1 to {MAX_CROP_KEYFRAMES}", field=f"{where}.keyframes"
            )
        out = []
        for n, point in enumerate(points):
            at = f"{where}.keyframes[{n}]"
            if not isinstance(point, dict) or set(point) - {"t", "x", "y", "zoom"}:
                raise InvalidRequest("Each keyframe is {t, x, y, zoom}", field=at)
            for key in ("t", "x", "y"):
                if key not in point:
                    raise InvalidRequest(f"{key} is required", field=f"{at}.{key}")
            t = _number(point["t"], f"{at}.t", 0, length)
            out.append(
                {
                    "t": round(start + t, 4),
                    "x": _number(point["x"], f"{at}.x", 0, width),
                    "y": _number(point["y"], f"{at}.y", 0, height),
                    "zoom": _number(point.get("zoom", 1.0), f"{at}.zoom", 1, 4),
                }
            )
        if any(b["t"] <= a["t"] for a, b in zip(out, out[1:], strict=False)):
            raise InvalidRequest("Keyframe times must increase", field=f"{where}.keyframes")
        return {"keyframes": out}
    rules = override["shots"]
    shots = path["shots"]
    if not isinstance(rules, list) or not rules:
        raise InvalidRequest("shots must be a non-empty list", field=f"{where}.shots")
    out, seen = [], set()
    for n, rule in enumerate(rules):
        at = f"{where}.shots[{n}]"
        if not isinstance(rule, dict):
            raise InvalidRequest("Each shot override is an object", field=at)
        unknown = set(rule) - {"shot", "center", "zoom", "face", "layout"}
        if unknown:
            raise InvalidRequest(f"Unknown field {sorted(unknown)[0]!r}", field=at)
        index = rule.get("shot")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(shots):
            raise InvalidRequest(
                f"shot must be an integer from 0 to {len(shots) - 1}", field=f"{at}.shot"
            )
        if index in seen:
            raise InvalidRequest("Each shot may be overridden once", field=f"{at}.shot")
        seen.add(index)
        kinds = set(rule) & {"center", "face", "layout"}
        if len(kinds) != 1:
            raise InvalidRequest("Give one of center, face or layout", field=at)
        shot = shots[index]
        item: dict[str, Any] = {
            "start": round(start + shot["start"], 4),
            "end": round(start + shot["end"], 4),
        }
        if "center" in rule:
            centre = rule["center"]
            if not isinstance(centre, dict) or set(centre) != {"x", "y"}:
                raise InvalidRequest("center is {x, y}", field=f"{at}.center")
            item["center"] = {
                "x": _number(centre["x"], f"{at}.center.x", 0, width),
                "y": _number(centre["y"], f"{at}.center.y", 0, height),
            }
            item["zoom"] = _number(rule.get("zoom", 1.0), f"{at}.zoom", 1, 4)
        elif "zoom" in rule:
            raise InvalidRequest("zoom goes with center", field=f"{at}.zoom")
        elif "face" in rule:
            found = {f["id"]: f for f in (faces[index] if index < len(faces) else [])}
            if rule["face"] not in found or isinstance(rule["face"], bool):
                raise InvalidRequest(
                    f"face must be one of the faces found in shot {index}: "
                    f"{sorted(found) or 'none'}",
                    field=f"{at}.face",
                )
            box = found[rule["face"]]
            item["face"] = rule["face"]
            item["box"] = [box["x"], box["y"], box["w"], box["h"]]
        else:
            if rule["layout"] not in CROP_LAYOUTS:
                raise InvalidRequest(
                    f"layout must be one of {', '.join(CROP_LAYOUTS)}", field=f"{at}.layout"
                )
            item["layout"] = rule["layout"]
        out.append(item)
    return {"shots": out}


# The longest clip an editor may cut (the longest any platform takes: YouTube's 10 min).
MAX_RECUT_SECONDS = 600.0
MIN_RECUT_SECONDS = 0.5
LAYOUTS = ("auto", "fill", "fit", "split")


def clip_recut(
    *,
    clip: Clip,
    start: float,
    end: float,
    layout: str | None = None,
    brand_kit: BrandKit | None | bool = False,
    enable_captions: bool | None = None,
) -> bool:
    """Cut a completed clip again at [start, end] (seconds of its source; past the
    selection's bounds too) and with this layout, brand kit (None: none; False: keep) and
    captions, then render it again (its preview and its full video, whichever it has).

    Its words are taken anew from the source's transcript (earlier corrections of words
    outside the new range are gone); its exports are dropped (their settings can be asked
    for again). The re-render counts its new length against the render minutes
    (QuotaExceeded, nothing saved, past them). Returns whether anything changed (and so
    a re-render was queued).
    """
    if clip.status not in EXPORTABLE:
        raise Conflict(
            f"The clip cannot be edited while it is {clip.status}",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    duration = (clip.source.duration if clip.source else None) or clip.end_time or 0.0
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise InvalidRequest(f"{name} must be a number of seconds", field=name)
    start, end = round(float(start), 3), round(float(end), 3)
    if start < 0:
        raise InvalidRequest("start must be 0 or more", field="start")
    if end > duration + 0.05:
        raise InvalidRequest(
            f"end must be inside the video (it lasts {duration:.2f} s)", field="end"
        )
    if end - start < MIN_RECUT_SECONDS:
        raise InvalidRequest(
            f"end must come at least {MIN_RECUT_SECONDS:g} s after start", field="end"
        )
    longest = min(MAX_RECUT_SECONDS, clip.team.limits().clip_seconds)
    if end - start > longest + 1e-6:
        raise InvalidRequest(f"A clip lasts at most {longest:g} s", field="end")
    if layout is not None and layout not in LAYOUTS:
        raise InvalidRequest(f"layout must be one of {', '.join(LAYOUTS)}", field="layout")
    if brand_kit and brand_kit.team_id != clip.team_id:
        raise InvalidRequest("Unknown brand kit", field="brand_kit")
    changes: dict[str, Any] = {}
    if (start, end) != (clip.start_time, clip.end_time):
        changes.update(start_time=start, end_time=end, duration=round(end - start, 3))
        transcript = (
            Analysis.objects.filter(source=clip.source_id, kind=Analysis.Kind.TRANSCRIPT)
            .order_by("-created_at")
            .values_list("result", flat=True)
            .first()
        )
        changes["words"] = clip_words_in(transcript or {}, start, end)
    if layout is not None and layout != clip.layout:
        changes["layout"] = layout
    if brand_kit is not False and (brand_kit.pk if brand_kit else None) != clip.brand_kit_id:
        changes["brand_kit"] = brand_kit
    if enable_captions is not None and enable_captions != clip.enable_captions:
        changes["enable_captions"] = enable_captions
    if not changes:
        return False
    try:
        with transaction.atomic():
            for key, value in changes.items():
                setattr(clip, key, value)
            clip.save(update_fields=[*changes, "updated_at"])
            stale = list(clip.exports.all())
            Export.objects.filter(pk__in=[e.pk for e in stale]).delete()
            states.rerender_queue(clip)  # its new length, against the render minutes
            enqueue_on_commit("render", clip_rerender_task, clip.pk, job_id=rerender_rq_id(clip.pk))
    except ApiError:
        clip.refresh_from_db()  # refused (render minutes): the clip as it is stored
        raise
    clip_caption_files(clip)
    for export in stale:
        if export.file:
            export.file.storage.delete(export.file.name)
    return True


def clip_move(*, clip: Clip, project: Project) -> bool:
    """Move `clip` into `project`, another of its team's: the clip then shows in that
    project's gallery (and /v1's `projectId`) and no longer in the old one. Nothing is
    rendered again. Its job stays where it was and keeps listing it. A project of another
    team is not found (as any other team's row). Returns whether the project changed."""
    if project.team_id != clip.team_id:
        raise NotFound("Project not found", field="project")
    if project.pk == clip.project_id:
        return False
    clip.project = project
    clip.save(update_fields=["project", "updated_at"])
    return True


def clip_delete(*, clip: Clip) -> None:
    """Delete a clip, its exports and their files. Its source's analysis stays shared."""
    stored = [clip.video, clip.preview, clip.thumbnail, clip.captions]
    stored += [export.file for export in clip.exports.all()]
    files = [(f.storage, f.name) for f in stored if f]
    if clip.captions and clip.captions.name.endswith(".srt"):  # the VTT written beside it
        files.append((clip.captions.storage, clip.captions.name[: -len(".srt")] + ".vtt"))
    with transaction.atomic():
        clip.delete()

    def _remove_files():
        for storage, name in files:
            try:
                storage.delete(name)
            except Exception:  # storage hiccups must not resurrect the clip
                logger.warning("could not delete %s", name, exc_info=True)

    transaction.on_commit(_remove_files)


EXPORTABLE = (Clip.Status.COMPLETED, Clip.Status.EXPORTED)


@transaction.atomic
def export_request(
    *, clip: Clip, format: str, quality: str, platform: str | None, burn_captions: bool | None
) -> Export:
    """The export of `clip` with these settings: an existing one is reused, else queued.
    A failed one is queued again; a queued one is queued on RQ again unless its task is
    there (a lost enqueue is not waited on); one whose worker died is the sweep's.

    An export that is queued anew is work: under the team's usage row lock it is checked
    against the team's work in flight (429) and its clip's length counted against the
    render minutes (QuotaExceeded), given back only when it fails before encoding. A
    timeline (otio, fcpxml, edl) renders nothing: it counts as work in flight only."""
    if clip.status not in EXPORTABLE:
        raise Conflict(
            f"Clip cannot be exported while its status is {clip.status}; "
            "wait until it is completed",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    platform = platform if platform is not None else clip.platform
    # "Burn captions into video (if available)": a clip made with enableCaptions false
    # has none to burn.
    burn = clip.enable_captions and burn_captions is not False
    if format in EXPORT_TIMELINES:  # a timeline carries its captions as a track and an SRT
        burn = False
    wanted = dict(
        clip=clip, format=format, quality=quality, platform=platform or "", burn_captions=burn
    )
    usage_lock(team=clip.team)
    found = Export.objects.filter(**wanted).values_list("status", flat=True).first()
    new_work = found is None or found == Export.Status.FAILED
    seconds = 0.0
    if new_work:
        work_in_flight_check(clip.team)
        if format not in EXPORT_TIMELINES:
            length = clip.duration or (clip.end_time or 0) - (clip.start_time or 0)
            seconds = round(float(length), 3)
            usage_reserve_render(team=clip.team, seconds=seconds)
    export, created = Export.objects.get_or_create(**wanted)
    if new_work:
        Export.objects.filter(pk=export.pk).update(
            charged_seconds=seconds, charged_at=timezone.now()
        )
    if created or states.export_requeue(export) or export.status == Export.Status.QUEUED:
        enqueue_on_commit("render", export_process_task, export.pk, job_id=export.pk)
    return export


# Staff's Re-run of failed work -------------------------------------------------------


def clip_rerun(*, clip: Clip) -> bool:
    """Queue a failed clip's processing again, from its start; its generation counts
    against the team's month again when its failure had given it back (as a new request
    through the API would: QuotaExceeded when none is left). False when not failed."""
    with transaction.atomic():
        refunded = Clip.objects.filter(pk=clip.pk, job__isnull=True, usage_refunded=True).exists()
        # Its render minutes were given back (it failed before rendering): reserved again.
        released = Clip.objects.filter(
            pk=clip.pk, job__isnull=True, render_charged=True, render_reserved_seconds=0
        ).exists()
        if not states.clip_rerun(clip.pk):
            return False
        if refunded:
            usage_reserve_clips(team=clip.team, count=1)
        if released:
            seconds = clip_render_estimate(
                start=clip.start_time,
                end=clip.end_time,
                platform=clip.platform,
                aspect_ratio=clip.aspect_ratio,
                max_duration=clip.max_duration,
            )
            usage_reserve_render(team=clip.team, seconds=seconds)
            Clip.objects.filter(pk=clip.pk).update(
                render_reserved_seconds=seconds,
                render_reserved_at=timezone.now(),
                render_charged=False,
            )
        enqueue_on_commit("analysis", clip_process_task, clip.pk, job_id=clip.pk)
    return True


def job_rerun(*, job: Job) -> bool:
    """Queue a failed job again: its analysis if it stopped there, else its failed clips;
    its generation counts again when its failure had given it back. False when not
    failed."""
    with transaction.atomic():
        refunded = Job.objects.filter(pk=job.pk, usage_refunded=True).exists()
        if not states.job_rerun(job.pk):
            return False
        if refunded:
            usage_reserve_clips(team=job.team, count=1)
        enqueue_on_commit("analysis", job_process_task, str(job.pk), job_id=str(job.pk))
    return True


# Full renders on request (the Choppity API's renders) ----------------------------------


def full_render_request(clip: Clip) -> Clip:
    """Queue a full-quality render of a completed clip; the clip, with its render state.

    At most one full render per clip is active (`states.full_render_queue`): a second
    request while one is queued or processing changes nothing, charges nothing and
    answers the active render. A request after a render finished (or failed) starts a
    new one, whose output replaces the earlier one. The clip's duration counts against
    the team's monthly render minutes (QuotaExceeded); the task is enqueued on commit,
    as `full_render_rq_id(clip.pk)` on the "render" queue.
    """
    if clip.status not in EXPORTABLE:
        raise Conflict(
            f"Clip cannot be rendered while its status is {clip.status}; wait until its "
            "preview is ready",
            code="clip_not_ready",
            details={"status": clip.status},
        )
    with transaction.atomic():
        usage_lock(team=clip.team)
        if not Clip.objects.filter(
            pk=clip.pk, full_render_status__in=states.FULL_RENDER_ACTIVE
        ).exists():
            work_in_flight_check(clip.team)  # a new render is work; an active one is not
        if states.full_render_queue(clip):
            enqueue_on_commit(
                "render", full_render_task, clip.pk, job_id=full_render_rq_id(clip.pk)
            )
    clip.refresh_from_db()
    return clip
