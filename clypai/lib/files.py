"""Files that appear whole or not at all.

A stage writes its output under a hidden temporary name beside the final one and renames
it into place when whole (one directory, so the rename is atomic). The temporary name is
this process's own: workers sharing a work dir may write the same target at once (three
jobs of one source extracting its audio), and each renames a whole file into place
instead of one renaming the other's half-written file, or finding it gone.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def partial_path(target: str | os.PathLike[str]) -> Path:
    """A temporary name beside `target` that no other process or call uses. It keeps
    `target`'s suffix, so tools that pick a format by it (ffmpeg) still do."""
    target = Path(target)
    return target.with_name(
        f".{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part{target.suffix}"
    )
