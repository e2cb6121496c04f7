"""/v1/clips, /v1/uploads and /v1/exports."""

from __future__ import annotations

import time

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser

from clypai.api.errors import ApiError, InvalidRequest
from clypai.api.pagination import query_param
from clypai.api.responses import ok
from clypai.api.schema import ErrorEnvelope, envelope, errors
from clypai.api.serializers import DeletedOut
from clypai.api.uploads import received_file
from clypai.api.views import TeamViewSet
from projects.models import Project

from .. import services
from ..models import Clip, Export, Upload
from ..selectors import CLIP_SORTS
from .serializers import (
    ClipCreateIn,
    ClipListQuery,
    ClipOut,
    ClipPatchIn,
    ClipSummaryOut,
    ExportIn,
    ExportOut,
    ExportPendingOut,
    TranscriptOut,
    TranscriptPatchIn,
    UploadIn,
    UploadOut,
    export_body,
    transcript_body,
)

# A failed export, answered as the document's Processing Failed error.
EXPORT_FAILED = {
    422: OpenApiResponse(
        response=ErrorEnvelope,
        description="The export failed (`processing_failed`): `message` says why, `details` "
        "the same for programs, with the export's id (`exportId`).",
        examples=[
            OpenApiExample(
                "processing_failed",
                value={
                    "success": False,
                    "error": {
                        "code": "processing_failed",
                        "message": "Clip export failed: The clip is 147.0 s long; this "
                        "export allows at most 140 s",
                        "details": {
                            "found": {"duration": 147.0},
                            "limit": {"maxSeconds": 140},
                            "exportId": "exp_a1b2c3d4e5",
                        },
                    },
                },
                response_only=True,
                status_codes=["422"],
            )
        ],
    )
}

# A clip that failed, as GET answers it: the document's Processing Failed error in
# `data.error`.
FAILED_CLIP = OpenApiExample(
    "failed",
    summary="A clip whose processing failed",
    value={
        "success": True,
        "data": {
            "id": "clip_xyz789abc",
            "projectId": "proj_a1b2c3d4e5",
            "name": "Product Demo Highlight",
            "sourceVideoUrl": "https://example.com/video.mp4",
            "sourceUploadId": None,
            "status": "failed",
            "progress": 10,
            "duration": None,
            "startTime": None,
            "endTime": None,
            "score": None,
            "config": {
                "aspectRatio": "9:16",
                "platform": "tiktok",
                "enableCaptions": True,
                "reframing": True,
                "hookDetection": True,
                "brandKitId": None,
                "maxDuration": None,
                "criteria": None,
                "language": None,
                "layout": "auto",
            },
            "outputs": None,
            "metadata": None,
            "error": {
                "code": "processing_failed",
                "message": "Clip generation failed: Unsupported video codec",
                "details": {"codec": "h265", "supportedCodecs": ["h264", "vp9"]},
            },
            "createdAt": "2024-01-15T10:30:00Z",
            "updatedAt": "2024-01-15T10:31:02Z",
        },
    },
    response_only=True,
    status_codes=["200"],
)


class ClipViewSet(TeamViewSet):
    queryset = Clip.objects.all()
    lookup_url_kwarg = "clip_id"
    not_found = "Clip not found"
    sorts = CLIP_SORTS

    @extend_schema(
        operation_id="clips_list",
        summary="List clips",
        parameters=[ClipListQuery],
        responses={200: envelope(ClipSummaryOut, many=True, paginated=True), **errors(400, 401)},
        tags=["Clips"],
    )
    def list(self, request):
        clips = self.get_queryset()
        status_filter = query_param(request.query_params, "status")
        if status_filter and status_filter not in ClipListQuery().fields["status"].choices:
            raise InvalidRequest(
                "status must be one of: pending, processing, completed, failed, exported",
                field="status",
            )
        if status_filter:
            clips = clips.filter(status=status_filter)
        project_id = query_param(request.query_params, "projectId")
        if project_id:
            if not self.team_rows(Project.objects.filter(pk=project_id)).exists():
                raise InvalidRequest("Unknown project", field="projectId")
            clips = clips.filter(project_id=project_id)
        clips = clips.only(
            "id", "project_id", "name", "status", "duration", "created_at", "updated_at"
        )
        return self.get_paginated_response(
            ClipSummaryOut(self.paginate_queryset(clips), many=True).data
        )

    @extend_schema(
        operation_id="clips_create",
        summary="Generate clip",
        request=ClipCreateIn,
        responses={201: envelope(ClipOut), **errors(400, 401, 429)},
        tags=["Clips"],
    )
    def create(self, request):
        data = self.validated(ClipCreateIn)
        config = dict(data.get("config") or {})
        if "brandKitId" in config:
            config["brandKit"] = config.pop("brandKitId")
        clip = services.clip_create(
            team=self.team,
            spec=services.ClipSpec(
                name=data.get("name") or "",
                source_url=data.get("sourceVideoUrl") or "",
                upload=data.get("sourceUploadId"),
                project=data.get("projectId"),
                start_time=data.get("startTime"),
                end_time=data.get("endTime"),
                config=config,
            ),
        )
        clip.refresh_from_db()
        return ok(ClipOut(clip, context={"request": request}).data, status_code=201)

    @extend_schema(
        operation_id="clips_retrieve",
        summary="Get clip",
        description="The clip with fresh signed links to its outputs (each valid 24 hours). "
        "A clip whose status is failed says why in `error`, as the document's Processing "
        "Failed error: `code` processing_failed, `message`, and `details` (for an "
        "unsupported codec: `codec` and `supportedCodecs`).",
        responses={200: envelope(ClipOut), **errors(401, 404)},
        examples=[FAILED_CLIP],
        tags=["Clips"],
    )
    def retrieve(self, request, clip_id: str):
        return ok(ClipOut(self.get_object(), context={"request": request}).data)

    @extend_schema(
        operation_id="clips_partial_update",
        summary="Change a clip's crop by hand",
        description=(
            "`cropOverride` per shot (a fixed centre with a zoom, a face from "
            "`cropPath.shots[].faces`, or a layout) or as keyframes over the whole clip; "
            "null clears it. A rendered clip is rendered again (its preview and video) and "
            "its exports are made anew; `cropPath` then shows the effective path, each "
            "overridden shot with why `override`. The new render of the video counts "
            "against the monthly render minutes: past them, 429 and nothing is changed."
        ),
        request=ClipPatchIn,
        responses={200: envelope(ClipOut), **errors(400, 401, 404, 409)},
        tags=["Clips"],
    )
    def partial_update(self, request, clip_id: str):
        clip = self.get_object()
        payload = request.data
        if not isinstance(payload, dict):
            raise InvalidRequest("Request body must be a JSON object")
        unknown = set(payload) - {"cropOverride"}
        if unknown:
            raise InvalidRequest(f"Unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
        if "cropOverride" not in payload:
            raise InvalidRequest("cropOverride is required", field="cropOverride")
        services.clip_crop_override(clip=clip, override=payload["cropOverride"])
        clip.refresh_from_db()
        return ok(ClipOut(clip, context={"request": request}).data)

    @extend_schema(
        operation_id="clips_destroy",
        summary="Delete clip",
        responses={200: envelope(DeletedOut), **errors(401, 404)},
        tags=["Clips"],
    )
    def destroy(self, request, clip_id: str):
        services.clip_delete(clip=self.get_object())
        return ok({"id": clip_id, "deleted": True})

    @extend_schema(
        operation_id="clips_transcript_retrieve",
        summary="Get a clip's transcript",
        description="The clip's words with their times, as its captions show them.",
        responses={200: envelope(TranscriptOut), **errors(401, 404)},
        tags=["Clips"],
    )
    @action(detail=True, methods=["get"], name="Clip Transcript")
    def transcript(self, request, clip_id: str):
        return ok(transcript_body(self.get_object()))

    @extend_schema(
        operation_id="clips_transcript_correct",
        summary="Correct a clip's transcript",
        description=(
            "Corrections by word index (`word`, and optionally `start`/`end` inside the "
            "clip). The SRT/VTT change at once; a rendered clip is rendered again with the "
            "corrected captions, and exports with burned captions are made anew. The new "
            "render of the video counts against the monthly render minutes: past them, 429 "
            "and nothing is changed."
        ),
        request=TranscriptPatchIn,
        responses={200: envelope(TranscriptOut), **errors(400, 401, 404, 409)},
        tags=["Clips"],
    )
    @transcript.mapping.patch
    def transcript_correct(self, request, clip_id: str):
        clip = self.get_object()
        payload = request.data
        if not isinstance(payload, dict):
            raise InvalidRequest("Request body must be a JSON object")
        unknown = set(payload) - {"words"}
        if unknown:
            raise InvalidRequest(f"Unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
        rerender = services.clip_words_correct(clip=clip, corrections=payload.get("words"))
        return ok(transcript_body(clip, rerender))

    @extend_schema(
        operation_id="clips_export",
        summary="Export clip",
        description=(
            "Answers 200 with the export when it is ready within a short wait (or was made "
            "before with the same settings), otherwise 202 with the export's id to poll at "
            "GET /v1/exports/{id}; 422 `processing_failed` when it could not be made. "
            "Export URLs expire after 24 hours."
        ),
        request=ExportIn,
        responses={
            200: envelope(ExportOut),
            202: envelope(ExportPendingOut),
            **errors(400, 401, 404, 409),
            **EXPORT_FAILED,
        },
        tags=["Clips"],
    )
    @action(detail=True, methods=["post"], name="Clip Export")
    def export(self, request, clip_id: str):
        clip = self.get_object()
        data = self.validated(ExportIn)
        export = services.export_request(
            clip=clip,
            format=data["format"],
            quality=data["quality"],
            platform=data.get("platform"),
            burn_captions=data.get("burnCaptions"),
        )
        # Wait a little for a quick export rather than making every client poll.
        deadline = time.monotonic() + settings.CLYPAI_EXPORT_WAIT_SECONDS
        while export.status not in (Export.Status.COMPLETED, Export.Status.FAILED):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.25)
            export.refresh_from_db()
        return export_response(export, request)


def export_response(export: Export, request):
    if export.status == Export.Status.COMPLETED:
        return ok(export_body(export, request))
    if export.status == Export.Status.FAILED:
        # The document's Processing Failed error: code, message, details for programs.
        raise ApiError(
            f"Clip export failed: {export.error}",
            code="processing_failed",
            status_code=422,
            details={**(export.error_details or {}), "exportId": export.pk},
        )
    body = export_body(export, request)
    return ok(
        body, status_code=status.HTTP_202_ACCEPTED, headers={"Location": f"/v1/exports/{export.pk}"}
    )


class ExportViewSet(TeamViewSet):
    queryset = Export.objects.select_related("clip")
    team_field = "clip__team"
    lookup_url_kwarg = "export_id"
    not_found = "Export not found"

    @extend_schema(
        operation_id="exports_retrieve",
        summary="Get export",
        description="200 once made (a fresh exportUrl, valid 24 hours), 202 while it is "
        "made, 422 `processing_failed` when it could not be.",
        responses={
            200: envelope(ExportOut),
            202: envelope(ExportPendingOut),
            **errors(401, 404),
            **EXPORT_FAILED,
        },
        tags=["Clips"],
    )
    def retrieve(self, request, export_id: str):
        return export_response(self.get_object(), request)


class UploadViewSet(TeamViewSet):
    queryset = Upload.objects.all()
    lookup_url_kwarg = "upload_id"
    not_found = "Upload not found"

    @property
    def parser_classes(self):
        # POST /v1/uploads takes the file as multipart/form-data (and OPTIONS says so).
        return TeamViewSet.parser_classes if self.detail else [MultiPartParser]

    @extend_schema(
        operation_id="uploads_create",
        summary="Upload a source video",
        description="multipart/form-data with one `file` part; streamed to storage.",
        request={"multipart/form-data": UploadIn},
        responses={201: envelope(UploadOut), **errors(400, 401, 413)},
        tags=["Uploads"],
    )
    def create(self, request):
        uploaded = received_file(request, not_multipart="Send the file as multipart/form-data")
        upload = services.upload_create(
            team=self.team,
            file=uploaded,
            filename=uploaded.name,
            content_type=uploaded.content_type or "",
            sha256=uploaded.sha256,
        )
        return ok(UploadOut(upload).data, status_code=201)

    @extend_schema(
        operation_id="uploads_retrieve",
        summary="Get upload",
        responses={200: envelope(UploadOut), **errors(401, 404)},
        tags=["Uploads"],
    )
    def retrieve(self, request, upload_id: str):
        return ok(UploadOut(self.get_object()).data)
