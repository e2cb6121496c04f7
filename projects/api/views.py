"""/v1/projects, /v1/auth/token and /v1/api-keys."""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny

from clypai.api.authentication import jwt_issue, user_for_credentials
from clypai.api.errors import ApiError, InvalidRequest
from clypai.api.responses import iso, ok
from clypai.api.schema import envelope, errors
from clypai.api.serializers import DeletedOut
from clypai.api.views import TeamAPIView, TeamViewSet

from .. import selectors, services
from ..models import ApiKey, Membership, Project
from ..selectors import PROJECT_SORTS
from .serializers import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    ProjectIn,
    ProjectOut,
    TokenIn,
    TokenOut,
    UsageOut,
    usage_data,
)


class ProjectViewSet(TeamViewSet):
    queryset = Project.objects.annotate(clip_count=Count("clips"))
    lookup_url_kwarg = "project_id"
    not_found = "Project not found"
    sorts = PROJECT_SORTS

    @extend_schema(
        operation_id="projects_list",
        summary="List projects",
        responses={200: envelope(ProjectOut, many=True, paginated=True), **errors(400, 401)},
        tags=["Projects"],
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ProjectOut(page, many=True).data)

    @extend_schema(
        operation_id="projects_create",
        summary="Create project",
        request=ProjectIn,
        responses={201: envelope(ProjectOut), **errors(400, 401)},
        tags=["Projects"],
    )
    def create(self, request):
        data = self.validated(ProjectIn)
        project = services.project_create(team=self.team, **data)
        return ok(ProjectOut(self.get_queryset().get(pk=project.pk)).data, status_code=201)

    @extend_schema(
        operation_id="projects_retrieve",
        summary="Get project",
        responses={200: envelope(ProjectOut), **errors(401, 404)},
        tags=["Projects"],
    )
    def retrieve(self, request, project_id: str):
        return ok(ProjectOut(self.get_object()).data)

    @extend_schema(
        operation_id="projects_update",
        summary="Update project",
        request=ProjectIn,
        responses={200: envelope(ProjectOut), **errors(400, 401, 404)},
        tags=["Projects"],
    )
    def partial_update(self, request, project_id: str):
        project = self.get_object()
        data = self.validated(ProjectIn, partial=True)
        services.project_update(project=project, **data)
        return ok(ProjectOut(self.get_object()).data)

    @extend_schema(
        operation_id="projects_destroy",
        summary="Delete project",
        description="A project without clips and without jobs in progress, not the team's "
        "default; its finished jobs are deleted with it (409 otherwise).",
        responses={200: envelope(DeletedOut), **errors(401, 404, 409)},
        tags=["Projects"],
    )
    def destroy(self, request, project_id: str):
        services.project_delete(project=self.get_object())
        return ok({"id": project_id, "deleted": True})


class TokenView(TeamAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token",
        summary="Get a JWT for a user's credentials",
        description="The token goes in `Authorization: Bearer <token>`.",
        request=TokenIn,
        responses={200: envelope(TokenOut), **errors(400, 401, 403)},
        tags=["Auth"],
        auth=[],
    )
    def post(self, request):
        data = self.validated(TokenIn)
        user = user_for_credentials(username=data["username"], password=data["password"])
        if user is None:
            raise ApiError("Invalid username or password", code="unauthorized", status_code=401)
        memberships = Membership.objects.select_related("team").filter(user=user)
        if data.get("teamId"):
            membership = memberships.filter(team_id=data["teamId"]).first()
            if membership is None:
                raise InvalidRequest("Not a member of this team", field="teamId")
        else:
            found = list(memberships[:2])
            if not found:
                raise ApiError("User belongs to no team", code="forbidden", status_code=403)
            if len(found) > 1:
                raise InvalidRequest("User belongs to several teams: name one", field="teamId")
            membership = found[0]
        token, expires_at = jwt_issue(user=user, team=membership.team)
        return ok(
            {
                "token": token,
                "tokenType": "Bearer",
                "expiresAt": iso(expires_at),
                "teamId": membership.team_id,
            }
        )

    @property
    def team(self):  # no team before authentication
        return None


def _require_owner(principal):
    if principal.user is None:
        raise ApiError(
            "Managing API keys needs a user's token or session, not an API key",
            code="forbidden",
            status_code=403,
        )
    is_owner = Membership.objects.filter(
        team=principal.team, user=principal.user, role=Membership.Role.OWNER
    ).exists()
    if not is_owner:
        raise ApiError("Only the team's owners manage API keys", code="forbidden", status_code=403)


class ApiKeyViewSet(TeamViewSet):
    queryset = ApiKey.objects.all()
    lookup_url_kwarg = "key_id"
    not_found = "API key not found"

    @extend_schema(
        operation_id="api_keys_list",
        summary="List API keys (by prefix)",
        responses={200: envelope(ApiKeyOut, many=True), **errors(401)},
        tags=["Auth"],
    )
    def list(self, request):
        api_keys = self.get_queryset().order_by("-created_at", "id")
        return ok(ApiKeyOut(api_keys, many=True).data)

    @extend_schema(
        operation_id="api_keys_create",
        summary="Create an API key",
        description="Team owners only, with a JWT or session. The key is shown once.",
        request=ApiKeyIn,
        responses={201: envelope(ApiKeyCreatedOut), **errors(400, 401, 403)},
        tags=["Auth"],
    )
    def create(self, request):
        _require_owner(self.principal)
        data = self.validated(ApiKeyIn)
        created = services.api_key_create(
            team=self.team, name=data.get("name", ""), created_by=self.principal.user
        )
        body = ApiKeyOut(created.api_key).data
        body["key"] = created.raw_key
        return ok(body, status_code=201)

    @extend_schema(
        operation_id="api_keys_revoke",
        summary="Revoke an API key",
        responses={200: envelope(ApiKeyOut), **errors(401, 403, 404)},
        tags=["Auth"],
    )
    def destroy(self, request, key_id: str):
        _require_owner(self.principal)
        return ok(ApiKeyOut(services.api_key_revoke(api_key=self.get_object())).data)


class UsageView(TeamAPIView):
    @extend_schema(
        operation_id="usage_retrieve",
        summary="Get the team's plan and this month's usage",
        description=(
            "Clip generations and render minutes used this calendar month (UTC) against "
            "the team's limits (`limit` null: no limit), when they reset, and the API "
            "rate limit per key. A failed clip gives its generation back; a failed "
            "render its minutes."
        ),
        responses={200: envelope(UsageOut), **errors(401)},
        tags=["Usage"],
    )
    def get(self, request):
        return ok(usage_data(selectors.usage_get(team=self.team)))
