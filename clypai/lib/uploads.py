"""Upload handling: stream to a temporary file, hash on the way, stop at the size limit."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

TOO_LARGE_FLAG = "_clypai_upload_too_large"


class LimitedHashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each uploaded file to a temporary file (never memory), computing its
    SHA-256 as chunks arrive, and stops reading once it passes the upload limit."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.sha256 = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.CLYPAI_MAX_UPLOAD_BYTES:
            setattr(self.request, TOO_LARGE_FLAG, True)
            raise StopUpload(connection_reset=True)
        self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.sha256.hexdigest()
        return uploaded


def upload_too_large(request) -> bool:
    django_request = getattr(request, "_request", request)
    return bool(getattr(django_request, TOO_LARGE_FLAG, False))
