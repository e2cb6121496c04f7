"""The base of every /v1/ view: the caller's team, strict request checks, the API limits."""

from __future__ import annotations

from rest_framework.views import APIView

from .authentication import Principal
from .errors import InvalidRequest, NotFound
from .limits import ApiLimitsMixin


class TeamAPIView(ApiLimitsMixin, APIView):
    """Base of every /v1/ view: the caller's team in one place, never per endpoint."""

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
