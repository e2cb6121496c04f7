"""Hostile media for the tests, made at run time with ffmpeg and a few byte patches:
nothing is stored in the repository. Each `make_*` writes its file into `folder` and
returns its path."""

from __future__ import annotations

import random
import struct
import subprocess
import zlib
from pathlib import Path

CLAIMED_SECONDS = 5.0  # what the lying header says
REAL_SECONDS = 600  # what its data holds


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


def seconds(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
        + [str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return float(out or 0)


def _boxes(data: bytes | bytearray, tag: bytes):
    """Where each `tag` box's payload (its version and flags) starts."""
    at = 0
    while (at := data.find(tag, at)) >= 0:
        yield at + 4
        at += 4


def _small_video(path: Path, seconds: float, *extra: str, size="64x48", codec="libx264"):
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
        "-t", str(seconds), "-c:v", codec, *(["-preset", "ultrafast"] if codec == "libx264" else []),
        "-pix_fmt", "yuv420p" if codec == "libx264" else "rgb24", "-c:a", "aac", *extra, str(path),
    )  # fmt: skip


# The corpus --------------------------------------------------------------------------


def make_text(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("These are my meeting notes, not a video.\n" * 200)
    return path


def make_truncated(folder: Path) -> Path:
    """A recording cut off: its index (moov, written last) never arrived."""
    whole = folder / "whole.mp4"
    _small_video(whole, 8)
    path = folder / "truncated.mp4"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    return path


def make_huge_header(folder: Path, *, sample_entry: bool = True) -> Path:
    """PNG frames in a MOV whose sample entry and every frame header say 30000x30000 (a
    decompression bomb's first bytes: a decoder that believed them would allocate 2.7 GB
    a frame). `sample_entry=False`: the container says 16x16, only the frames lie."""
    small = folder / "small.mov"
    _small_video(small, 2, "-c:a", "pcm_s16le", size="16x16", codec="png")
    data = bytearray(small.read_bytes())
    at = 0
    while (at := data.find(b"IHDR", at)) >= 0:
        struct.pack_into(">II", data, at + 4, 30000, 30000)
        struct.pack_into(">I", data, at + 17, zlib.crc32(bytes(data[at : at + 17])))
        at += 4
    if sample_entry:
        entry = data.find(b"png ", data.find(b"stsd"))  # its width and height
        struct.pack_into(">HH", data, entry + 4 + 24, 30000, 30000)
    path = folder / "huge.mov"
    path.write_bytes(bytes(data))
    return path


def make_lying_duration(folder: Path) -> Path:
    """Ten minutes of data whose movie, track and media headers all say 5 s (the edit
    lists are left alone, so a decoder that reads on gets all ten minutes)."""
    honest = folder / "long.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=blue:size=32x32:rate=1",
        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000",
        "-t", str(REAL_SECONDS), "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-b:a", "16k", str(honest),
    )  # fmt: skip
    data = bytearray(honest.read_bytes())
    mvhd = next(_boxes(data, b"mvhd"))
    movie_scale = struct.unpack(">I", data[mvhd + 12 : mvhd + 16])[0]
    struct.pack_into(">I", data, mvhd + 16, int(CLAIMED_SECONDS * movie_scale))
    for tkhd in _boxes(data, b"tkhd"):
        struct.pack_into(">I", data, tkhd + 20, int(CLAIMED_SECONDS * movie_scale))
    for mdhd in _boxes(data, b"mdhd"):
        scale = struct.unpack(">I", data[mdhd + 12 : mdhd + 16])[0]
        struct.pack_into(">I", data, mdhd + 16, int(CLAIMED_SECONDS * scale))
    path = folder / "lying.mp4"
    path.write_bytes(bytes(data))
    assert abs(seconds(path) - CLAIMED_SECONDS) < 0.01
    return path


def make_audio_only(folder: Path) -> Path:
    path = folder / "voice.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=sample_rate=16000", "-t", "4", "-c:a", "aac", str(path))
    return path


def make_corrupted_middle(folder: Path) -> Path:
    """A whole file (index first) whose middle third is noise."""
    whole = folder / "fine.mp4"
    _small_video(whole, 8, "-movflags", "+faststart")
    data = bytearray(whole.read_bytes())
    start, end = len(data) // 3, 2 * len(data) // 3
    data[start:end] = random.Random(16).randbytes(end - start)  # the same noise every run
    path = folder / "corrupted.mp4"
    path.write_bytes(bytes(data))
    return path


def make_many_tracks(folder: Path, tracks: int = 3000) -> Path:
    """One video track and `tracks` copies of a 1 s audio track, all pointing at the same
    samples: a few MB of index that asks a demuxer for thousands of streams."""
    base = folder / "base.mov"
    _small_video(base, 1, "-c:a", "pcm_s16le", "-movflags", "+faststart", size="32x32")
    data = base.read_bytes()

    def children(start: int, end: int):
        at = start
        while at < end:
            size, tag = struct.unpack(">I4s", data[at : at + 8])
            yield at, size, tag
            at += size

    top = list(children(0, len(data)))
    moov_at, moov_size, _ = next(t for t in top if t[2] == b"moov")
    traks = [
        data[a : a + s] for a, s, t in children(moov_at + 8, moov_at + moov_size) if t == b"trak"
    ]
    copies = bytearray()
    for number in range(tracks):
        trak = bytearray(traks[-1])
        struct.pack_into(">I", trak, trak.find(b"tkhd") + 4 + 12, 3 + number)  # track_ID
        copies += trak
    moov = bytearray(data[moov_at : moov_at + moov_size]) + copies
    struct.pack_into(">I", moov, 0, len(moov))
    struct.pack_into(">I", moov, moov.find(b"mvhd") + 4 + 96, 3 + tracks)  # next_track_ID
    out = bytearray(data[:moov_at]) + moov + data[moov_at + moov_size :]
    for stco in _boxes(out, b"stco"):  # the samples moved down by the copies
        for entry in range(struct.unpack(">I", out[stco + 4 : stco + 8])[0]):
            at = stco + 8 + 4 * entry
            struct.pack_into(">I", out, at, struct.unpack(">I", out[at : at + 4])[0] + len(copies))
    path = folder / "tracks.mov"
    path.write_bytes(bytes(out))
    return path


def make_hls(folder: Path, canary: Path) -> Path:
    path = folder / "playlist.mp4"
    path.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\nfile:///etc/passwd\n#EXTINF:10.0,\n{canary}\n"
        "#EXTINF:10.0,\n/etc/passwd\n#EXT-X-ENDLIST\n"
    )
    return path


def make_ffconcat(folder: Path, canary: Path) -> Path:
    path = folder / "list.mp4"
    path.write_text(f"ffconcat version 1.0\nfile /etc/passwd\nfile '{canary}'\n")
    return path
