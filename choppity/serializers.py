"""Request and response shapes of /choppity/v1/, named exactly as its document names them.

Requests are validated by the `…In` serializers. Responses are built by the functions
at the bottom (fields the document marks "may be omitted" are left out, not null); the
`…Out` serializers describe them in the OpenAPI document, and the tests hold the two
together.
"""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clips.api.serializers import validate_source_url
from clips.models import Clip, Job, Upload
from clips.platforms import TARGET_SECONDS
from clypai.api.fields import StrictFloatField, StrictSerializer
from clypai.lib.languages import is_supported_language
from clypai.lib.storage import signed_url

from .schema import JOB_STATUSES


@extend_schema_field({"type": "number", "minimum": 0, "exclusiveMinimum": True})
class PositiveSecondsField(StrictFloatField):
    """A JSON number above zero."""

    default_error_messages = {"not_positive": "Must be a positive number of seconds."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value <= 0:
            self.fail("not_positive")
        return value


# The document's signed links (previews, outputs) are valid for one hour.
LINK_TTL_SECONDS = 3600


class SourceIn(StrictSerializer):
    url = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=2048,
        help_text="Public https URL to a video file.",
    )
    upload_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="upload_id returned by POST /v1/uploads.",
    )

    class Meta:
        ref_name = "ChoppitySource"

    def validate_url(self, value):
        return validate_source_url(value) if value else value

    def validate(self, attrs):
        if attrs.get("url") and attrs.get("upload_id"):
            raise serializers.ValidationError("Give source.url or source.upload_id, not both")
        if not attrs.get("url") and not attrs.get("upload_id"):
            raise serializers.ValidationError("One of source.url and source.upload_id is required")
        return attrs


class ClipsCreateIn(StrictSerializer):
    source = SourceIn(help_text="Exactly one of source.url or source.upload_id.")
    criteria = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=1000,
        help_text='Free-text description of what to look for (e.g. "funny moments", "key '
        'points"). Defaults to general highlights.',
    )
    target_duration = PositiveSecondsField(
        required=False,
        allow_null=True,
        help_text="Target clip length in seconds. Defaults to a model-chosen length per clip. "
        "Any positive number is accepted and clamped to what the pipeline cuts: "
        f"{TARGET_SECONDS[0]:g} to {TARGET_SECONDS[1]:g} seconds (3600 asks for "
        f"{TARGET_SECONDS[1]:g}).",
    )
    language = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=8,
        help_text="ISO 639-1 code for the source language, e.g. en, es. Defaults to your "
        "team's preferred language (else detected).",
    )

    class Meta:
        ref_name = "ChoppityClipsCreate"

    def validate_language(self, value):
        if value is not None and not is_supported_language(value):
            raise serializers.ValidationError(
                f'"{value}" is not an ISO 639-1 language code this service transcribes'
            )
        return value


class UploadFileIn(serializers.Serializer):
    file = serializers.FileField(help_text="The video file, as one multipart part.")

    class Meta:
        ref_name = "ChoppityUploadFile"


class UploadPresignIn(StrictSerializer):
    filename = serializers.CharField(max_length=255, help_text="The video's file name.")
    size = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Its size in bytes, checked against the limit.",
    )
    content_type = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=120
    )

    class Meta:
        ref_name = "ChoppityUploadPresign"


# Responses -----------------------------------------------------------------------------


class JobCreatedOut(serializers.Serializer):
    job_id = serializers.UUIDField(help_text="Pass to GET /v1/clips/:jobId to poll.")
    status = serializers.ChoiceField(["queued"], help_text="Always queued on creation.")
    created_at = serializers.IntegerField(help_text="Unix-ms.")

    class Meta:
        ref_name = "ChoppityJobCreated"


class JobClipOut(serializers.Serializer):
    id = serializers.UUIDField(help_text="Pass to POST /v1/clips/:clipId/renders.")
    title = serializers.CharField(help_text="Model-generated title.")
    duration = serializers.FloatField(help_text="Length in seconds, two decimal places.")
    score = serializers.FloatField(
        min_value=0, max_value=1, help_text="Composite score, 0–1. Higher = more confident."
    )
    preview_url = serializers.URLField(
        required=False, help_text="One-hour signed MP4. Omitted while still rendering."
    )

    class Meta:
        ref_name = "ChoppityClip"


class JobOut(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(
        JOB_STATUSES, help_text="done only when every clip has its preview_url."
    )
    created_at = serializers.IntegerField(help_text="Unix-ms.")
    clips = JobClipOut(many=True, help_text="Empty until the pipeline produces clips.")
    error = serializers.CharField(required=False, help_text='Present only when status is "error".')

    class Meta:
        ref_name = "ChoppityJob"


class RenderCreatedOut(serializers.Serializer):
    render_id = serializers.UUIDField(
        help_text="Equals the clipId. Pass to GET /v1/renders/:renderId."
    )
    status = serializers.ChoiceField(
        ["queued"],
        help_text="Always queued, as the document says: also when this clip's render was "
        "already active (queued or processing), which is then answered and nothing new "
        "starts. GET /v1/renders/:renderId tells its progress.",
    )
    created_at = serializers.IntegerField(help_text="Unix-ms.")

    class Meta:
        ref_name = "ChoppityRenderCreated"


class RenderOut(serializers.Serializer):
    render_id = serializers.UUIDField()
    status = serializers.ChoiceField(JOB_STATUSES)
    created_at = serializers.IntegerField(help_text="Unix-ms, when this render was requested.")
    output_url = serializers.URLField(
        required=False, help_text="One-hour signed MP4; present once done."
    )
    error = serializers.CharField(required=False, help_text='Present only when status is "error".')

    class Meta:
        ref_name = "ChoppityRender"


class UploadOut(serializers.Serializer):
    upload_id = serializers.UUIDField(help_text="Pass as source.upload_id to POST /v1/clips.")
    status = serializers.ChoiceField(
        ["ready", "pending"],
        help_text="ready: stored (multipart upload). pending: PUT the file to upload_url first.",
    )
    filename = serializers.CharField()
    size = serializers.IntegerField(required=False, help_text="Bytes stored.")
    created_at = serializers.IntegerField(help_text="Unix-ms.")
    upload_url = serializers.URLField(
        required=False, help_text="Presigned URL to PUT the file's bytes to."
    )
    upload_method = serializers.ChoiceField(["PUT"], required=False)
    expires_at = serializers.IntegerField(
        required=False, help_text="Unix-ms after which upload_url stops working."
    )

    class Meta:
        ref_name = "ChoppityUpload"


def unix_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _link(field_file, request) -> str:
    return signed_url(field_file.name, ttl_seconds=LINK_TTL_SECONDS, request=request)


def _preview(job: Job, clip: Clip):
    """A clip's preview file; a job that renders full videos has those as its previews."""
    if clip.preview:
        return clip.preview
    return clip.video if job.clip_video == Job.ClipVideo.FULL and clip.video else None


MISSING_PREVIEW = "Clip generation failed: a clip's preview was not stored"


def job_status(job: Job, clips: list[Clip]) -> str:
    """The document's job status: `done` only when every clip has its preview.

    While previews render the job is `processing` with its clips listed. A job the
    pipeline finished whose clips still lack a preview will never get one: `error`.
    """
    if job.status != Job.Status.DONE or job.clip_video == Job.ClipVideo.NONE:
        return job.status
    return "done" if all(_preview(job, clip) for clip in clips) else "error"


def job_body(job: Job, clips: list[Clip], request) -> dict:
    status = job_status(job, clips)
    body = {
        "job_id": str(job.pk),
        "status": status,
        "created_at": unix_ms(job.created_at),
        "clips": [job_clip_body(job, clip, request) for clip in clips],
    }
    if status == "error":
        body["error"] = (job.error if job.status == Job.Status.ERROR else "") or MISSING_PREVIEW
    return body


def job_clip_body(job: Job, clip: Clip, request) -> dict:
    body = {
        "id": str(clip.uuid),
        "title": clip.name,
        "duration": round(clip.duration or 0.0, 2),
        # A clip cut on shots alone (no speech) has no score: no confidence at all.
        "score": round(min(max(clip.score or 0.0, 0.0), 1.0), 2),
    }
    preview = _preview(job, clip)
    if preview:
        body["preview_url"] = _link(preview, request)
    return body


def render_created_body(clip: Clip) -> dict:
    """The answer to POST /v1/clips/:clipId/renders: `status` is always `queued`, as the
    document says, even when the render asked for was already active (then it is that
    render's, and its `created_at`)."""
    return {
        "render_id": str(clip.uuid),
        "status": "queued",
        "created_at": unix_ms(clip.full_render_requested_at),
    }


def render_body(clip: Clip, request) -> dict:
    body = {
        "render_id": str(clip.uuid),
        "status": clip.full_render_status,
        "created_at": unix_ms(clip.full_render_requested_at),
    }
    if clip.full_render_status == "done" and clip.video:
        body["output_url"] = _link(clip.video, request)
    if clip.full_render_status == "error":
        body["error"] = clip.full_render_error or "Render failed"
    return body


def upload_body(upload: Upload) -> dict:
    return {
        "upload_id": str(upload.uuid),
        "status": "ready",
        "filename": upload.filename,
        "size": upload.size_bytes,
        "created_at": unix_ms(upload.created_at),
    }
