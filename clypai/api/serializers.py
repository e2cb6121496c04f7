"""Output pieces every API shares: stored files as signed URLs, the answer to a delete."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from clypai.lib.storage import signed_url


def file_url(field_file, request=None, *, ttl=None) -> str | None:
    if not field_file:
        return None
    return signed_url(
        field_file.name, ttl_seconds=ttl or settings.CLYPAI_SIGNED_URL_TTL_SECONDS, request=request
    )


class DeletedOut(serializers.Serializer):
    id = serializers.CharField()
    deleted = serializers.BooleanField()
