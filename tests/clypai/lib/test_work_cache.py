"""The work dir's cache stays under CLYPAI_WORK_CACHE_MAX_BYTES: `local_path` trims the
least recently used files before a download, never one a running task may still hold."""

from __future__ import annotations

import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from clypai.lib.storage import cache_trim, local_path

pytestmark = pytest.mark.django_db

HOUR = 3600


def _file(folder, name: str, size: int, *, age: float):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_it_deletes_the_least_recently_used_files_until_the_new_one_fits(tmp_path):
    oldest = _file(tmp_path, "a.mp4", 400, age=5 * HOUR)
    older = _file(tmp_path, "audio/b.wav", 400, age=4 * HOUR)
    old = _file(tmp_path, "c.mp4", 400, age=3 * HOUR)
    removed = cache_trim(tmp_path, max_bytes=1000, room=300, idle_seconds=HOUR)
    assert removed == [oldest, older]  # 1200 + 300 > 1000, 800 + 300 > 1000, 400 + 300 fits
    assert old.exists()


def test_it_keeps_what_a_running_task_may_still_hold_so_the_limit_is_soft(tmp_path):
    stale = _file(tmp_path, "a.mp4", 600, age=2 * HOUR)
    held = _file(tmp_path, "b.mp4", 600, age=10 * 60)  # used 10 minutes ago
    assert cache_trim(tmp_path, max_bytes=100, idle_seconds=HOUR) == [stale]
    assert held.exists()


def test_the_idle_time_defaults_to_the_longest_task(settings, tmp_path):
    settings.CLYPAI_QUEUE_TIMEOUTS = {"analysis": 600, "render": 7200}
    kept = _file(tmp_path, "a.mp4", 600, age=HOUR)  # a render may still hold it
    gone = _file(tmp_path, "b.mp4", 600, age=3 * HOUR)
    assert cache_trim(tmp_path, max_bytes=100) == [gone]
    assert kept.exists()


def test_on_s3_a_download_trims_the_cache_and_a_hit_counts_as_a_use(settings, s3_storage, tmp_path):
    settings.CLYPAI_WORK_CACHE_MAX_BYTES = 2500
    settings.CLYPAI_QUEUE_TIMEOUTS = {"analysis": HOUR}
    cache = tmp_path / "cache"
    names = [default_storage.save(f"sources/{n}.mp4", ContentFile(b"v" * 1000)) for n in "abc"]
    first, second = (local_path(name, cache_dir=cache) for name in names[:2])
    for path in (first, second):
        os.utime(path, (time.time() - 3 * HOUR,) * 2)  # both unused for hours...
    assert local_path(names[0], cache_dir=cache) == first  # ...then the first used again
    third = local_path(names[2], cache_dir=cache)  # 3000 bytes would not fit: one goes
    assert first.exists() and third.exists()
    assert not second.exists()
    assert third.read_bytes() == b"v" * 1000
    # Gone from the cache is not gone: asked again, it comes back from storage.
    assert local_path(names[1], cache_dir=cache).read_bytes() == b"v" * 1000


def test_with_no_limit_nothing_is_trimmed(settings, s3_storage, tmp_path):
    settings.CLYPAI_WORK_CACHE_MAX_BYTES = 0
    cache = tmp_path / "cache"
    old = _file(cache, "old.bin", 10_000, age=10 * HOUR)
    name = default_storage.save("sources/x.mp4", ContentFile(b"v" * 1000))
    local_path(name, cache_dir=cache)
    assert old.exists()
