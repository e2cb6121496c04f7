"""The bases of every /v1/ view: the caller's team, strict request checks, the API limits.

TeamViewSet for the resources, registered on the router in clypai/api_router.py;
TeamAPIView for the two endpoints that are no resource (auth/token and usage).
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import QuerySet
from rest_framework.response import Response
from rest_framework.utils.formatting import camelcase_to_spaces
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from .authentication import Principal
from .errors import InvalidRequest, NotFound
from .limits import ApiLimitsMixin
from .pagination import KeysetPagination, SortField


class TeamRequestMixin(ApiLimitsMixin):
    """The caller and its team, requests refused before they reach a handler, and strict
    validation of request bodies."""

    @property
    def principal(self) -> Principal:
        return self.request.auth

    @property
    def team(self):
        return self.request.auth.team

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # PostgreSQL text cannot hold NUL: a lookup with one fails as a 500, so refuse it here.
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in values):
                raise InvalidRequest("Null characters are not allowed", field=name)
        if any(isinstance(value, str) and "\x00" in value for value in kwargs.values()):
            raise NotFound("Not found")

    def validated(self, serializer_class, data=None, *, partial=False, **kwargs):
        """Validate a request body (or `data`) with strict field checks; the cleaned dict."""
        payload = self.request.data if data is None else data
        if not isinstance(payload, dict):
            raise InvalidRequest("Request body must be a JSON object")
        serializer = serializer_class(
            data=payload,
            partial=partial,
            context={"request": self.request, "team": self.team},
            **kwargs,
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class TeamAPIView(TeamRequestMixin, APIView):
    """Base of the /v1/ endpoints that are no resource of the team (auth/token, usage)."""


class TeamViewSet(TeamRequestMixin, ViewSet):
    """Base of every /v1/ view: the caller's team in one place, never per endpoint."""

    # drf-spectacular describes each operation that has no description of its own with
    # the docstring above: changing it changes /v1/openapi.json.

    queryset: QuerySet  # every row of the resource, whichever team's
    team_field = "team"  # the lookup from a row to its team
    lookup_field = "pk"
    lookup_url_kwarg: str  # the path parameter, named as the document names it
    not_found = "Not found"
    # What `sortBy` may name; None: the list is newest first and takes no sortBy/sortOrder.
    sorts: dict[str, SortField] | None = None
    pagination_class = KeysetPagination

    def team_rows(self, queryset: QuerySet, team_field: str = "team") -> QuerySet:
        """`queryset` cut to the caller's team: the one place /v1/ filters by team."""
        return queryset.filter(**{team_field: self.team})

    def get_queryset(self) -> QuerySet:
        return self.team_rows(self.queryset, self.team_field)

    def get_object(self):
        """The row the path names, of the caller's team; another team's is not found."""
        value = self.kwargs[self.lookup_url_kwarg]
        row = self.get_queryset().filter(**{self.lookup_field: value}).first()
        if row is None:
            raise NotFound(self.not_found)
        return row

    @cached_property
    def paginator(self) -> KeysetPagination:
        return self.pagination_class()

    def paginate_queryset(self, queryset: QuerySet) -> list:
        return self.paginator.paginate_queryset(queryset, self.request, view=self)

    def get_paginated_response(self, data) -> Response:
        return self.paginator.get_paginated_response(data)

    def get_view_name(self) -> str:
        # OPTIONS answers with the names the views had before they were viewsets:
        # "Clip List Create", "Clip Detail"; an @action names itself.
        if self.name:
            return self.name
        resource = camelcase_to_spaces(type(self).__name__.removesuffix("ViewSet"))
        if self.detail:
            return f"{resource} Detail"
        actions = self.action_map.values()
        return " ".join([resource] + [a.title() for a in ("list", "create") if a in actions])
