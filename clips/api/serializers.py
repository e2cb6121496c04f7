"""Input and output shapes of /v1/clips (and their transcripts), /v1/uploads and /v1/exports,
exactly as the document names them."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from brandkits.models import BrandKit
from clypai.api.fields import ChoiceField, StrictBooleanField, StrictFloatField, StrictSerializer
from clypai.api.responses import iso
from clypai.api.serializers import file_url
from clypai.lib.languages import is_supported_language
from projects.models import Project

from ..models import Clip, Export, Upload
from ..pipeline.reframe import WHY
from ..platforms import ASPECT_RATIOS, EXPORT_FORMATS, EXPORT_QUALITIES, PLATFORMS

CLIP_STATUSES = tuple(Clip.Status.values)
LAYOUTS = ("auto", "fill", "fit", "split")
SHOT_LAYOUTS = ("fill", "fit", "split")  # what "auto" chose for a shot


def _team_object(model, value, team, message):
    if value is None:
        return None
    if not isinstance(value, str):
        raise serializers.ValidationError(message)
    obj = model.objects.filter(pk=value, team=team).first()
    if obj is None:
        raise serializers.ValidationError(message)
    return obj


def validate_source_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("Must be an http or https URL")
    if parts.username or parts.password:
        raise serializers.ValidationError("URLs with credentials are not accepted")
    return value


class ClipConfigIn(StrictSerializer):
    aspectRatio = ChoiceField(ASPECT_RATIOS, required=False)
    platform = ChoiceField(PLATFORMS, required=False, allow_null=True)
    enableCaptions = StrictBooleanField(
        required=False,
        help_text="Generate captions (default true): burned into the clip and as SRT "
        "(outputs.captionsUrl). false: no captions at all, captionsUrl null.",
    )
    reframing = StrictBooleanField(required=False)
    hookDetection = StrictBooleanField(required=False)
    brandKitId = serializers.CharField(required=False, allow_null=True, max_length=40)
    maxDuration = StrictFloatField(required=False, allow_null=True, min_value=15, max_value=300)
    criteria = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="What to look for, in free text (an extension).",
    )
    language = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=8,
        help_text="ISO 639-1 code of the spoken language (an extension).",
    )
    layout = ChoiceField(
        LAYOUTS, required=False, help_text="auto (per shot), fill, fit or split (an extension)."
    )

    def validate_brandKitId(self, value):
        return _team_object(BrandKit, value, self.context["team"], "Unknown brand kit")

    def validate_language(self, value):
        if value and not is_supported_language(value):
            raise serializers.ValidationError(
                f'"{value}" is not a supported ISO 639-1 language code'
            )
        return value


class ClipCreateIn(StrictSerializer):
    projectId = serializers.CharField(required=False, allow_null=True, max_length=40)
    name = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=300)
    sourceVideoUrl = serializers.CharField(required=False, max_length=2048)
    sourceUploadId = serializers.CharField(
        required=False, max_length=40, help_text="An upl_… id from POST /v1/uploads."
    )
    startTime = StrictFloatField(required=False, allow_null=True, min_value=0)
    endTime = StrictFloatField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="End time in source video (seconds). Required if startTime is provided. "
        "The range may last at most the longest clip the team's plan allows (by default "
        "CLYPAI_MAX_CLIP_SECONDS, 600 s).",
    )
    config = ClipConfigIn(required=False)

    def validate_projectId(self, value):
        return _team_object(Project, value, self.context["team"], "Unknown project")

    def validate_sourceUploadId(self, value):
        return _team_object(Upload, value, self.context["team"], "Unknown upload")

    def validate_sourceVideoUrl(self, value):
        return validate_source_url(value)

    def validate(self, attrs):
        has_url = bool(attrs.get("sourceVideoUrl"))
        has_upload = attrs.get("sourceUploadId") is not None
        if has_url and has_upload:
            raise serializers.ValidationError(
                {"sourceUploadId": "Give sourceVideoUrl or sourceUploadId, not both"}
            )
        if not has_url and not has_upload:
            raise serializers.ValidationError(
                {"sourceVideoUrl": "This field is required (or sourceUploadId)"}
            )
        start, end = attrs.get("startTime"), attrs.get("endTime")
        if start is not None and end is None:
            raise serializers.ValidationError({"endTime": "Required when startTime is given"})
        if end is not None and start is None:
            raise serializers.ValidationError({"startTime": "Required when endTime is given"})
        if start is not None and end <= start:
            raise serializers.ValidationError({"endTime": "Must be greater than startTime"})
        max_duration = (attrs.get("config") or {}).get("maxDuration")
        if start is not None and max_duration is not None and end - start > max_duration:
            raise serializers.ValidationError(
                {
                    "endTime": f"endTime - startTime ({end - start:g} s) exceeds config.maxDuration "
                    f"({max_duration:g} s)"
                }
            )
        return attrs


class ClipListQuery(serializers.Serializer):
    projectId = serializers.CharField(required=False)
    status = ChoiceField(CLIP_STATUSES, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
    cursor = serializers.CharField(required=False)
    sortBy = ChoiceField(("name", "createdAt", "updatedAt", "duration"), required=False)
    sortOrder = ChoiceField(("asc", "desc"), required=False)


_TIMELINE_FORMATS = (
    "A video (mp4, mov, webm), or a timeline for an editor (otio: OpenTimelineIO, fcpxml: "
    "Final Cut Pro XML, edl: CMX 3600), delivered as a zip: the timeline (the clip's cut "
    "of the source to the frame at the source's frame rate; the crop path as keyframed "
    "transforms in FCPXML, as metadata in OTIO; the captions as a caption lane in "
    "FCPXML), the clip's SRT, a README.txt and the source under media/. A source over "
    "CLYPAI_EXPORT_MEDIA_MAX_BYTES (2 GiB) is linked from the README instead, by a "
    "signed link made fresh at each download of the zip. For a timeline, quality and "
    "platform set the timeline's frame size; captions are never burned; no render "
    "minutes are counted (nothing is rendered)."
)


class ExportIn(StrictSerializer):
    format = ChoiceField(EXPORT_FORMATS, required=False, default="mp4", help_text=_TIMELINE_FORMATS)
    quality = ChoiceField(EXPORT_QUALITIES, required=False, default="high")
    platform = ChoiceField(PLATFORMS, required=False, allow_null=True)
    burnCaptions = StrictBooleanField(
        required=False,
        allow_null=True,
        help_text="Burn captions into video (if available). Defaults to the clip's "
        "config.enableCaptions; a clip made with enableCaptions false has no captions, so "
        "none are burned.",
    )


class CorrectionIn(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the word in `words`.")
    word = serializers.CharField(required=False)
    start = serializers.FloatField(required=False)
    end = serializers.FloatField(required=False)


class TranscriptPatchIn(serializers.Serializer):
    words = CorrectionIn(many=True)


# Outputs -------------------------------------------------------------------------


class ClipConfigOut(serializers.Serializer):
    aspectRatio = serializers.CharField(source="aspect_ratio")
    platform = serializers.SerializerMethodField()
    enableCaptions = serializers.BooleanField(source="enable_captions")
    reframing = serializers.BooleanField()
    hookDetection = serializers.BooleanField(source="hook_detection")
    brandKitId = serializers.CharField(source="brand_kit_id", allow_null=True)
    maxDuration = serializers.FloatField(source="max_duration", allow_null=True)
    criteria = serializers.SerializerMethodField()
    language = serializers.SerializerMethodField()
    layout = serializers.ChoiceField(LAYOUTS)

    def get_platform(self, clip) -> str | None:
        return clip.platform or None

    def get_criteria(self, clip) -> str | None:
        return clip.criteria or None

    def get_language(self, clip) -> str | None:
        return clip.language or None


_LINK_LIFETIME = (
    "A signed link, valid for 24 hours from this answer (CLYPAI_SIGNED_URL_TTL_SECONDS); "
    "every GET of the clip gives fresh ones, so fetch the clip again rather than keeping "
    "a link."
)


class ClipOutputsOut(serializers.Serializer):
    """The clip's files. Each link is signed and expires (24 hours by default); a GET of
    the clip always answers fresh ones."""

    videoUrl = serializers.SerializerMethodField(
        help_text=f"The processed video clip. {_LINK_LIFETIME}"
    )
    thumbnailUrl = serializers.SerializerMethodField(
        help_text=f"The clip's thumbnail (JPEG). {_LINK_LIFETIME}"
    )
    captionsUrl = serializers.SerializerMethodField(
        help_text="The SRT captions; null when config.enableCaptions is false (none are "
        f"generated). {_LINK_LIFETIME}"
    )

    def get_videoUrl(self, clip) -> str | None:
        return file_url(clip.video, self.context.get("request"))

    def get_thumbnailUrl(self, clip) -> str | None:
        return file_url(clip.thumbnail, self.context.get("request"))

    def get_captionsUrl(self, clip) -> str | None:
        return file_url(clip.captions, self.context.get("request"))


class HookOut(serializers.Serializer):
    time = serializers.FloatField()
    text = serializers.CharField()
    confidence = serializers.FloatField()


class ClipMetadataOut(serializers.Serializer):
    """Documents the metadata object; the stored JSON is returned as it is."""

    hooks = HookOut(many=True, required=False)
    highlights = serializers.ListField(child=serializers.FloatField(), required=False)
    sentiment = serializers.ChoiceField(("positive", "neutral", "negative"), required=False)
    topics = serializers.ListField(child=serializers.CharField(), required=False)
    scoreBreakdown = serializers.DictField(child=serializers.FloatField(), required=False)
    reason = serializers.CharField(required=False)


class CropKeyframeOut(serializers.Serializer):
    t = serializers.FloatField(help_text="Seconds from the clip's start.")
    x = serializers.IntegerField(help_text="The crop window's left edge, in source pixels.")
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()
    ease = serializers.ChoiceField(
        ("cut", "linear", "inOut"),
        help_text="How the window reaches this keyframe from the previous one.",
    )


class CropWindowOut(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()


class ShotFaceOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="The face's id, to name it in cropOverride.")
    x = serializers.IntegerField(help_text="Its median box in the shot, source pixels.")
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()
    partial = serializers.BooleanField(help_text="Cut by the frame's edge.")


class CropShotOut(serializers.Serializer):
    start = serializers.FloatField(help_text="Seconds from the clip's start.")
    end = serializers.FloatField()
    layout = serializers.ChoiceField(SHOT_LAYOUTS)
    why = serializers.ChoiceField(
        tuple(WHY),
        help_text="Why the shot was framed so: "
        + "; ".join(f"`{name}`: {text}" for name, text in WHY.items())
        + ".",
    )
    reason = serializers.CharField(help_text="The same, in words.")
    panels = CropWindowOut(
        many=True, required=False, help_text="The two windows of a split, top (or left) first."
    )
    zoom = serializers.FloatField(
        required=False, help_text="A fill window shrunk by this about its centre (by hand)."
    )
    faces = ShotFaceOut(many=True, help_text="The faces found in the shot.")


class CropPathOut(serializers.Serializer):
    """The crop path a clip's video follows, as stored with the clip."""

    aspectRatio = serializers.CharField()
    sourceWidth = serializers.IntegerField()
    sourceHeight = serializers.IntegerField()
    reframing = serializers.BooleanField()
    keyframes = CropKeyframeOut(many=True)
    shots = CropShotOut(many=True)


def crop_path_body(clip) -> dict | None:
    """The clip's stored crop path in the API's words, with the faces found in each shot;
    None before it has one."""
    from ..selectors import clip_shot_faces

    stored = (clip.crop_path or {}).get("path")
    if not stored:
        return None
    faces = clip_shot_faces(clip=clip)
    shots = []
    for index, shot in enumerate(stored.get("shots", [])):
        item = {
            "start": shot["start"],
            "end": shot["end"],
            "layout": shot["layout"],
            "why": shot.get("why") or "unknown",
            "reason": shot.get("reason", ""),
        }
        if shot.get("panels"):
            item["panels"] = shot["panels"]
        if shot.get("zoom", 1.0) != 1.0:
            item["zoom"] = shot["zoom"]
        item["faces"] = faces[index] if index < len(faces) else []
        shots.append(item)
    return {
        "aspectRatio": stored["aspect"],
        "sourceWidth": stored["sourceWidth"],
        "sourceHeight": stored["sourceHeight"],
        "reframing": stored.get("reframing", True),
        "keyframes": stored["keyframes"],
        "shots": shots,
    }


class CropCenterIn(serializers.Serializer):
    x = serializers.FloatField(help_text="Source pixels.")
    y = serializers.FloatField()


class CropShotOverrideIn(serializers.Serializer):
    shot = serializers.IntegerField(help_text="The shot's index in cropPath.shots.")
    center = CropCenterIn(required=False, help_text="Hold the window centred here.")
    zoom = serializers.FloatField(required=False, help_text="With center: 1 to 4 (default 1).")
    face = serializers.IntegerField(
        required=False, help_text="Follow this face (an id from cropPath.shots[].faces)."
    )
    layout = serializers.ChoiceField(SHOT_LAYOUTS, required=False)


class CropKeyframeIn(serializers.Serializer):
    t = serializers.FloatField(help_text="Seconds from the clip's start.")
    x = serializers.FloatField(help_text="The window's centre, source pixels.")
    y = serializers.FloatField()
    zoom = serializers.FloatField(required=False, help_text="1 to 4 (default 1).")


class CropOverrideIn(serializers.Serializer):
    shots = CropShotOverrideIn(
        many=True,
        required=False,
        help_text="Per shot, one of center (with zoom), face or layout.",
    )
    keyframes = CropKeyframeIn(
        many=True,
        required=False,
        help_text="Instead of shots: the window's path over the whole clip (linear moves "
        "between keyframes, each zoom held to the next).",
    )


class ClipPatchIn(serializers.Serializer):
    cropOverride = CropOverrideIn(
        allow_null=True,
        help_text="A hand override of the crop path (an extension); null clears it. Stored "
        "by source time: it outlives a re-cut of the range wherever its shot is still "
        "inside. A rendered clip is rendered again; its exports are made anew.",
    )


def crop_override_body(clip) -> dict | None:
    """The stored override in the API's words (clip seconds; shots by their index in the
    stored crop path)."""
    override = (clip.crop_path or {}).get("override")
    if not override or clip.start_time is None:
        return None
    start = clip.start_time
    if override.get("keyframes"):
        return {
            "keyframes": [
                {**k, "t": round(k["t"] - start, 4)}
                for k in override["keyframes"]
                if start <= k["t"] <= clip.end_time
            ]
        }
    shots = ((clip.crop_path or {}).get("path") or {}).get("shots", [])
    out = []
    for index, shot in enumerate(shots):
        begin, end = start + shot["start"], start + shot["end"]
        rule = next(
            (
                r
                for r in override.get("shots", [])
                if r["start"] - 0.05 <= begin and end <= r["end"] + 0.05
            ),
            None,
        )
        if rule is not None:
            item = {"shot": index}
            item.update({k: rule[k] for k in ("center", "zoom", "face", "layout") if k in rule})
            out.append(item)
    return {"shots": out}


class ClipErrorOut(serializers.Serializer):
    """Why a clip failed: the document's Processing Failed error, kept on the clip."""

    code = serializers.CharField(
        help_text="processing_failed; invalid_request when the source turned out unusable "
        "(`field` names it, e.g. sourceVideoUrl)."
    )
    message = serializers.CharField(
        help_text='For people, e.g. "Clip generation failed: Unsupported video codec".'
    )
    field = serializers.CharField(required=False, help_text="The request field at fault.")
    details = serializers.DictField(
        required=False,
        help_text="For programs: for an unsupported codec, `codec` and `supportedCodecs`; "
        "for a source out of bounds, what was found and the limit.",
    )


class ClipOut(serializers.Serializer):
    id = serializers.CharField()
    projectId = serializers.CharField(source="project_id")
    name = serializers.SerializerMethodField()
    sourceVideoUrl = serializers.SerializerMethodField()
    sourceUploadId = serializers.CharField(source="upload_id", allow_null=True)
    status = serializers.ChoiceField(CLIP_STATUSES)
    progress = serializers.IntegerField()
    duration = serializers.FloatField(allow_null=True)
    startTime = serializers.FloatField(source="start_time", allow_null=True)
    endTime = serializers.FloatField(source="end_time", allow_null=True)
    score = serializers.FloatField(allow_null=True)
    config = ClipConfigOut(source="*")
    outputs = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField(
        help_text="Why the clip failed, when its status is failed, as the document's "
        "Processing Failed error shows it (code, message, details); null otherwise."
    )
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()
    cropPath = serializers.SerializerMethodField(
        help_text="Where the crop window sits over the clip and why, shot by shot (an "
        "extension); null until the clip's video is rendered."
    )

    def get_name(self, clip) -> str | None:
        return clip.name or None

    def get_sourceVideoUrl(self, clip) -> str | None:
        return clip.source_url or None

    cropOverride = serializers.SerializerMethodField(
        help_text="The hand override laid over the crop path (an extension), in clip "
        "seconds; null when there is none."
    )

    @extend_schema_field(CropPathOut(allow_null=True))
    def get_cropPath(self, clip) -> dict | None:
        return crop_path_body(clip)

    @extend_schema_field(CropOverrideIn(allow_null=True))
    def get_cropOverride(self, clip) -> dict | None:
        return crop_override_body(clip)

    @extend_schema_field(ClipOutputsOut(allow_null=True))
    def get_outputs(self, clip) -> dict | None:
        if not (clip.video or clip.thumbnail or clip.captions):
            return None
        return ClipOutputsOut(clip, context=self.context).data

    @extend_schema_field(ClipMetadataOut(allow_null=True))
    def get_metadata(self, clip) -> dict | None:
        return clip.metadata

    @extend_schema_field(ClipErrorOut(allow_null=True))
    def get_error(self, clip) -> dict | None:
        if clip.status != Clip.Status.FAILED:
            return None
        error = {"code": clip.error_code or "processing_failed", "message": clip.error}
        if clip.error_field:
            error["field"] = clip.error_field
        if clip.error_details:
            error["details"] = clip.error_details
        return error

    def get_createdAt(self, clip) -> str:
        return iso(clip.created_at)

    def get_updatedAt(self, clip) -> str:
        return iso(clip.updated_at)


class ClipSummaryOut(serializers.Serializer):
    """A clip in a list, as the document's List Clips example shows it."""

    id = serializers.CharField()
    projectId = serializers.CharField(source="project_id")
    name = serializers.SerializerMethodField()
    status = serializers.ChoiceField(CLIP_STATUSES)
    duration = serializers.FloatField(allow_null=True)
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()

    def get_name(self, clip) -> str | None:
        return clip.name or None

    def get_createdAt(self, clip) -> str:
        return iso(clip.created_at)

    def get_updatedAt(self, clip) -> str:
        return iso(clip.updated_at)


class WordOut(serializers.Serializer):
    index = serializers.IntegerField()
    word = serializers.CharField()
    start = serializers.FloatField(help_text="Seconds in the source video.")
    end = serializers.FloatField()
    probability = serializers.FloatField(allow_null=True, required=False)


class TranscriptOut(serializers.Serializer):
    clipId = serializers.CharField()
    words = WordOut(many=True)
    rerender = serializers.ChoiceField(
        ("queued",), allow_null=True, required=False, help_text="A rendered clip is rendered again."
    )


def transcript_body(clip, rerender: bool | None = None) -> dict:
    body = {
        "clipId": clip.pk,
        "words": [
            {
                "index": k,
                "word": w["word"].strip(),
                "start": w["start"],
                "end": w["end"],
                "probability": w.get("probability"),
            }
            for k, w in enumerate(clip.words or [])
        ],
    }
    if rerender is not None:
        body["rerender"] = "queued" if rerender else None
    return body


class ExportOut(serializers.Serializer):
    id = serializers.CharField(help_text="exp_… id (an extension to the document).")
    status = serializers.ChoiceField(("queued", "processing", "completed", "failed"))
    platform = serializers.CharField(allow_null=True)
    burnCaptions = serializers.BooleanField()
    exportUrl = serializers.CharField(
        allow_null=True,
        help_text="A signed link that expires at expiresAt (24 hours); GET /v1/exports/{id} "
        "answers a fresh one.",
    )
    expiresAt = serializers.CharField(allow_null=True)
    format = serializers.ChoiceField(
        EXPORT_FORMATS,
        help_text="mp4, mov, webm: the video; otio, fcpxml, edl: a zip for an editor "
        "(the timeline, the SRT, README.txt, the source or a fresh link to it).",
    )
    quality = serializers.ChoiceField(EXPORT_QUALITIES)
    fileSize = serializers.IntegerField(
        allow_null=True,
        help_text="Bytes of the stored file (a timeline's zip as stored: a zip that links "
        "to its source is answered with its README made anew, a few bytes more or less).",
    )


class ExportPendingOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(("queued", "processing"))
    exportUrl = serializers.CharField(allow_null=True, help_text="null until the export is ready")
    format = serializers.ChoiceField(EXPORT_FORMATS)
    quality = serializers.ChoiceField(EXPORT_QUALITIES)


def export_body(export: Export, request) -> dict:
    """An export as GET /v1/exports/{id} answers it and the export.* webhook events carry it."""
    from ..package_links import package_url

    ttl = settings.CLYPAI_SIGNED_URL_TTL_SECONDS
    url = file_url(export.file, request, ttl=ttl)
    if url and export.source_linked:  # its README's source link is made at download
        url = package_url(export.pk, ttl_seconds=ttl, request=request)
    return {
        "id": export.pk,
        "status": export.status,
        "exportUrl": url,
        "expiresAt": iso(timezone.now() + timedelta(seconds=ttl)) if export.file else None,
        "format": export.format,
        "quality": export.quality,
        "platform": export.platform or None,
        "burnCaptions": export.burn_captions,
        "fileSize": export.file_size,
    }


class UploadOut(serializers.Serializer):
    id = serializers.CharField()
    filename = serializers.CharField()
    contentType = serializers.CharField(source="content_type")
    size = serializers.IntegerField(source="size_bytes")
    sha256 = serializers.SerializerMethodField(
        help_text="null until the bytes of a presigned upload are ingested"
    )
    createdAt = serializers.SerializerMethodField()

    def get_sha256(self, upload) -> str | None:
        return upload.sha256 or None

    def get_createdAt(self, upload) -> str:
        return iso(upload.created_at)


class UploadIn(serializers.Serializer):
    file = serializers.FileField(help_text="The video file (multipart/form-data).")
