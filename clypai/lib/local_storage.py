"""Local-disk storage whose files appear whole or not at all.

Django's FileSystemStorage writes a file in place, chunk by chunk: when the disk fills
half-way (or the process dies) a half-written file stays under its final name, where a
link or the next run finds it. Here each file is written under a hidden temporary name
beside its place (`.<random>.part`) and renamed there once whole (one directory, so the
rename is atomic); the temporary file is removed when the write fails.
"""

from __future__ import annotations

import os
import tempfile

from django.core.files import File
from django.core.files.storage import FileSystemStorage


class _Written(File):
    """A whole file on disk that FileSystemStorage moves into place (its upload path)."""

    def __init__(self, path: str):
        super().__init__(None, name=path)
        self._path = path

    def temporary_file_path(self) -> str:
        return self._path


class LocalStorage(FileSystemStorage):
    def _save(self, name, content):
        if hasattr(content, "temporary_file_path"):  # already whole on disk: moved
            return super()._save(name, content)
        directory = os.path.dirname(self.path(name))
        os.makedirs(directory, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
        try:
            os.fchmod(fd, self.file_permissions_mode or 0o644)
            with os.fdopen(fd, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk.encode() if isinstance(chunk, str) else chunk)
            return super()._save(name, _Written(temporary))
        finally:
            if os.path.exists(temporary):  # moved into place, or failed: never left
                os.unlink(temporary)
