"""What every stage shares: `StageError`, which lives in `clypai.lib.errors` so that the
shared helpers (`clypai.lib.ffmpeg`) raise it without importing the pipeline."""

from __future__ import annotations

from clypai.lib.errors import StageError

__all__ = ["StageError"]
