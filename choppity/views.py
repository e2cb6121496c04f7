"""/choppity/v1/: clips (jobs), renders and uploads, as the Choppity document shows them.

Views parse, call one selector or service, and shape the answer; the caller's team is
found once, in `ChoppityView`, and every read goes through the team-scoped selectors.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from clips import services as clip_services
from clips.models import Job
from clypai.api.authentication import ApiKeyAuthentication, IsTeamMember, JWTAuthentication
from clypai.api.errors import InvalidRequest
from clypai.api.limits import ApiLimitsMixin
from clypai.api.uploads import received_file

from . import selectors, services
from .errors import exception_handler
from .schema import ChoppityAutoSchema, errors
from .serializers import (
    ClipsCreateIn,
    JobCreatedOut,
    JobOut,
    RenderCreatedOut,
    RenderOut,
    UploadFileIn,
    UploadOut,
    UploadPresignIn,
    job_body,
    render_body,
    render_created_body,
    unix_ms,
    upload_body,
)

TAGS = ["Choppity"]


def _path_id(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH, description=description)


class ChoppityView(ApiLimitsMixin, APIView):
    """Base of every /choppity/v1/ view: `Key <api key>` or `Bearer <JWT or api key>`,
    JSON in and out, errors in the document's shape, the caller's team in one place."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [IsTeamMember]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = ChoppityAutoSchema()

    def get_exception_handler(self):
        return exception_handler

    @property
    def team(self):
        return self.request.auth.team

    def validated(self, serializer_class) -> dict:
        payload = self.request.data
        if not isinstance(payload, dict):
            raise InvalidRequest("Request body must be a JSON object")
        serializer = serializer_class(data=payload, context={"request": self.request})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class ClipsView(ChoppityView):
    @extend_schema(
        operation_id="choppity_clips_create",
        summary="Start a clip-generation job",
        description="Start a clip-generation job from a public URL or a previously created "
        "upload. Exactly one of source.url or source.upload_id is required.",
        request=ClipsCreateIn,
        responses={202: JobCreatedOut, **errors(400, 401, 429)},
        tags=TAGS,
    )
    def post(self, request):
        data = self.validated(ClipsCreateIn)
        source = data["source"]
        upload = None
        if source.get("upload_id"):
            upload = services.upload_resolve(team=self.team, upload_id=source["upload_id"])
        language = data.get("language") or self.team.preferred_language or ""
        job = clip_services.job_create(
            team=self.team,
            spec=clip_services.JobSpec(
                source_url=source.get("url") or "",
                upload=upload,
                criteria=data.get("criteria") or "",
                target_duration=data.get("target_duration"),
                language=language,
                clip_video=Job.ClipVideo.PREVIEW,
            ),
        )
        body = {"job_id": str(job.pk), "status": "queued", "created_at": unix_ms(job.created_at)}
        return Response(
            body,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/choppity/v1/clips/{job.pk}"},
        )


class JobView(ChoppityView):
    @extend_schema(
        operation_id="choppity_clips_retrieve",
        summary="Poll a clip job",
        description="Once status is done, the response includes the generated clips with "
        "preview URLs. status only becomes done when every clip has a preview_url; while "
        "previews render it is processing with a populated clips[].",
        parameters=[_path_id("jobId", "The job_id returned by POST /v1/clips.")],
        responses={200: JobOut, **errors(401, 404)},
        tags=TAGS,
    )
    def get(self, request, jobId: str):  # noqa: N803 - the document's name
        job = selectors.job_get(team=self.team, job_id=jobId)
        return Response(job_body(job, selectors.job_clips(job=job), request))


class ClipRendersView(ChoppityView):
    @extend_schema(
        operation_id="choppity_renders_create",
        summary="Trigger a full-quality render of a clip",
        description="Empty body. Full renders cost rendering minutes against your team's "
        "allowance (QUOTA_EXCEEDED, 429, when used up). There's at most one active full "
        "render per clip: triggering while one is queued or processing answers 202 with "
        "that render (status queued, as on creation), starts nothing and costs nothing; "
        "triggering after it finished replaces its output.",
        request=None,
        parameters=[_path_id("clipId", "A clip id from clips[].")],
        responses={202: RenderCreatedOut, **errors(401, 404, 409, 429)},
        tags=TAGS,
    )
    def post(self, request, clipId: str):  # noqa: N803
        clip = selectors.clip_get(team=self.team, clip_id=clipId)
        clip = clip_services.full_render_request(clip)
        return Response(
            render_created_body(clip),
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/choppity/v1/renders/{clip.uuid}"},
        )


class RenderView(ChoppityView):
    @extend_schema(
        operation_id="choppity_renders_retrieve",
        summary="Poll a full render",
        description="Its status and, once done, a one-hour signed output_url.",
        parameters=[
            _path_id("renderId", "The render_id returned by POST /v1/clips/:clipId/renders.")
        ],
        responses={200: RenderOut, **errors(401, 404)},
        tags=TAGS,
    )
    def get(self, request, renderId: str):  # noqa: N803
        return Response(
            render_body(selectors.render_get(team=self.team, render_id=renderId), request)
        )


class UploadsView(ChoppityView):
    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(
        operation_id="choppity_uploads_create",
        summary="Upload a source video",
        description="Two ways, one upload_id for source.upload_id:\n\n"
        "- multipart/form-data with one `file` part: stored at once (status ready);\n"
        "- where the server stores files on S3/MinIO, JSON `{filename, size}`: answers a "
        "presigned `upload_url` (status pending) to PUT the bytes to within an hour; the "
        "upload_id works in POST /v1/clips once they are there.",
        request={"multipart/form-data": UploadFileIn, "application/json": UploadPresignIn},
        responses={201: UploadOut, **errors(400, 401, 413)},
        tags=TAGS,
    )
    def post(self, request):
        content_type = (request.content_type or "").split(";")[0].strip()
        if content_type == "application/json":
            data = self.validated(UploadPresignIn)
            presigned = services.upload_presign(
                team=self.team, filename=data["filename"], size=data.get("size")
            )
            body = {
                "upload_id": str(presigned.upload_id),
                "status": "pending",
                "filename": presigned.filename,
                "created_at": int(presigned.created_at * 1000),
                "upload_url": presigned.url,
                "upload_method": "PUT",
                "expires_at": int(presigned.expires_at * 1000),
            }
            return Response(body, status=status.HTTP_201_CREATED)
        uploaded = received_file(
            request,
            not_multipart="Send the video as multipart/form-data with one `file` part "
            "(or JSON {filename, size} for a presigned PUT)",
        )
        upload = clip_services.upload_create(
            team=self.team,
            file=uploaded,
            filename=uploaded.name,
            content_type=uploaded.content_type or "",
            sha256=uploaded.sha256,
        )
        return Response(upload_body(upload), status=status.HTTP_201_CREATED)
