"""A small filesystem for full-disk tests: a tmpfs of a few MiB mounted on a temporary
folder (the test runs as root, as the worker's container does), and a filler that takes
every free byte of it until it is deleted."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(size: str) -> Iterator[Path]:
    """A tmpfs of `size` (as mount takes it: "8m") on a new temporary folder; unmounted
    and removed on leaving."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = Path(tempfile.mkdtemp(prefix="clypai-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"could not mount a tmpfs: {mounted.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`'s filesystem with one file; delete it to give the
    space back. Returns its path."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "ab", buffering=0) as fh:
        while chunk:
            try:
                fh.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    return filler


def free_bytes(disk: Path) -> int:
    stats = os.statvfs(disk)
    return stats.f_bavail * stats.f_frsize
