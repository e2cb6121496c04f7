"""Errors of the shared helpers and of the media pipeline.

`StageError` is what a pipeline stage raises when it cannot do its work; the helpers in
`clypai.lib` (ffmpeg and the SSRF-safe HTTP client) raise it too, so it lives here,
below both. The pipeline's public name for it stays `clips.pipeline.StageError`.
"""

from __future__ import annotations

from typing import Any


class StageError(Exception):
    """A stage could not do its work.

    `message` is for people (it becomes the clip's error), `details` for programs (what
    was found, what is supported, the limit). `permanent` errors (a bad file) fail the
    clip at once; others (network, storage) may pass on a retry. `code` and `field` say
    how the API reports it: `processing_failed` by default, `invalid_request` on
    `sourceVideoUrl` for a source URL that cannot be fetched.
    """

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        permanent: bool = True,
        *,
        code: str = "processing_failed",
        field: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.permanent = permanent
        self.code = code
        self.field = field

    def __repr__(self) -> str:
        return f"StageError({self.message!r}, permanent={self.permanent})"


NO_SPACE = "No space left on device"


def disk_full(stage: str) -> StageError:
    """The error of work that ran out of disk space (ENOSPC) in `stage`. Passing: space
    comes back (the work cache is evicted, other runs end and remove their files), so
    the work is tried again a bounded number of times (CLYPAI_MAX_ATTEMPTS) before it
    fails with this reason."""
    return StageError(
        f"the worker ran out of disk space in {stage} ({NO_SPACE})",
        {"stage": stage, "error": "ENOSPC"},
        permanent=False,
    )
