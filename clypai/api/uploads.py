"""The multipart file of an upload request, checked the same way by both APIs."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from clypai.lib.uploads import upload_too_large

from .errors import InvalidRequest, PayloadTooLarge


def received_file(request, *, not_multipart: str) -> UploadedFile:
    """The `file` part of a multipart request, streamed to disk and hashed on the way
    (`.sha256`) by LimitedHashingUploadHandler. Raises PayloadTooLarge past
    CLYPAI_MAX_UPLOAD_BYTES (declared or received), InvalidRequest naming `file` when the
    request is not multipart (`not_multipart` says what to send), the part is missing or
    the file is empty."""
    limit = settings.CLYPAI_MAX_UPLOAD_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge("File is larger than the upload limit", details={"limit": limit})
    content_type = (request.content_type or "").split(";")[0].strip()
    if content_type != "multipart/form-data":
        raise InvalidRequest(not_multipart, field="file")
    uploaded = request.FILES.get("file")
    if upload_too_large(request):
        raise PayloadTooLarge("File is larger than the upload limit", details={"limit": limit})
    if uploaded is None:
        raise InvalidRequest("This field is required", field="file")
    if uploaded.size == 0:
        raise InvalidRequest("File is empty", field="file")
    return uploaded
