"""The one way ClypAI runs ffmpeg and ffprobe.

Binaries: `CLYPAI_FFMPEG` / `CLYPAI_FFPROBE` when set, else `ffmpeg` / `ffprobe` on PATH.

Every user file is opened with `safe_input_args()` before its `-i`:

- `-protocol_whitelist file`: no network, pipes or subprocess protocols.
- `-format_whitelist` of real audio/video containers. The protocol whitelist alone is
  not enough: an HLS playlist or an ffconcat list renamed to `.mp4` is still detected as
  `hls` / `concat` by content, and those demuxers open the files they name through the
  allowed `file` protocol, so a user's upload could pull in other files of the worker
  (another team's source, for one). Demuxers that refer to other files are simply not
  on the list (`tests/clypai/lib/test_ffmpeg.py` shows both attacks, and the fix).
- `-max_pixels`: no decoder allocates frames larger than the cap, whatever the header says.

A container's header can lie about its duration (an MP4 whose `mvhd`/`mdhd` say 5 s
over 600 s of samples passes the probe's duration limit). So every decode of a user's
file is bounded by the probed duration: `decode_bound(duration)` is how far past it a
decode may read (`-t`), and outputs are bounded in size too (`-fs` on files, a frame
count on pipes). A decode that reaches the bound read more than the header said.

`run()` and `stream()` raise `StageError` with ffmpeg's last stderr lines (paths given
on the command line shortened to their file names) when the tool fails or times out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from .errors import StageError

DEFAULT_MAX_PIXELS = 7680 * 4320

# Demuxer names as `ffmpeg -demuxers` prints them (Debian's 5.1). ffmpeg matches a
# whitelist entry against each comma-separated part of a demuxer's name, so "mov"
# admits "mov,mp4,m4a,3gp,3g2,mj2" and "matroska" admits "matroska,webm". Left out on
# purpose: hls, dash, concat, image2/tty/lavfi-like readers, and any playlist format.
SAFE_INPUT_FORMATS: tuple[str, ...] = (
    "mov",  # mov,mp4,m4a,3gp,3g2,mj2
    "matroska",  # matroska,webm
    "avi",
    "mpegts",
    "flv",
    "mpeg",  # MPEG-PS (.mpg, .vob)
    "ogg",
    "asf",  # .wmv
    "ivf",  # raw VP8/VP9/AV1 in IVF
    "wav",
    "flac",
    "mp3",
    "aac",
)

STDERR_TAIL_LINES = 12

# How far past the probed duration a decode may read: streams rarely end exactly where
# the container says (an audio track 20-60 ms longer is common), never seconds later.
DECODE_SLACK_SECONDS = 2.0
DECODE_SLACK_RATIO = 0.01


def decode_bound(duration: float) -> float:
    """Seconds a decode of a file probed at `duration` seconds may read (its `-t`)."""
    return max(float(duration), 0.0) * (1 + DECODE_SLACK_RATIO) + DECODE_SLACK_SECONDS


def longer_than_header(duration: float, decoded: float) -> StageError:
    """The error of a decode that ran into its bound: the file is longer than it says."""
    return StageError(
        f"Clip generation failed: the file plays longer than its header says "
        f"({duration:.1f} s); it was not read further",
        {
            "found": {"headerDuration": round(duration, 3), "decodedAtLeast": round(decoded, 3)},
            "limit": {"decodeBoundSeconds": round(decode_bound(duration), 3)},
            "supported": "a file whose container states its real duration",
        },
    )


def ffmpeg_path() -> str:
    """The ffmpeg binary: $CLYPAI_FFMPEG, else `ffmpeg` from PATH."""
    return _binary("CLYPAI_FFMPEG", "ffmpeg")


def ffprobe_path() -> str:
    """The ffprobe binary: $CLYPAI_FFPROBE, else `ffprobe` from PATH."""
    return _binary("CLYPAI_FFPROBE", "ffprobe")


def _binary(variable: str, name: str) -> str:
    configured = os.environ.get(variable)
    if configured:
        return configured
    found = shutil.which(name)
    if not found:
        raise StageError(
            f"{name} is not installed on this machine",
            {"tool": name, "setting": variable},
            permanent=False,
        )
    return found


def safe_input_args(max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[str]:
    """Input options for any file a user gave us; put them right before its `-i`."""
    args = [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(SAFE_INPUT_FORMATS),
    ]
    if max_pixels:
        args += ["-max_pixels", str(int(max_pixels))]
    return args


def input_url(path: str | os.PathLike[str]) -> str:
    """`file:` + absolute path, so a name such as `concat:a|b` is never read as a protocol."""
    return "file:" + str(Path(path).resolve())


def run(
    args: Sequence[str],
    *,
    timeout: float,
    error: str,
    tool: str = "ffmpeg",
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg (or ffprobe, `tool="ffprobe"`) with `args`; its stdout is captured.

    Raises StageError(`error`) with the exit status and stderr's last lines when it fails
    (permanent: the same input fails the same way), or a passing one when it runs past
    `timeout` seconds.
    """
    binary = ffprobe_path() if tool == "ffprobe" else ffmpeg_path()
    command = [binary, "-hide_banner", *args]
    try:
        completed = subprocess.run(
            command,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except OSError as exc:
        raise _missing(tool, binary, exc) from exc
    except subprocess.TimeoutExpired as exc:
        raise StageError(
            f"{error} ({tool} ran past {timeout:g} s)",
            {
                "tool": tool,
                "timeoutSeconds": timeout,
                "stderr": stderr_tail(exc.stderr or b"", args),
            },
            permanent=False,
        ) from exc
    if completed.returncode != 0:
        raise StageError(
            error,
            {
                "tool": tool,
                "returncode": completed.returncode,
                "stderr": stderr_tail(completed.stderr, args),
            },
        )
    return completed


@contextmanager
def stream(args: Sequence[str], *, timeout: float, error: str) -> Iterator[IO[bytes]]:
    """Run ffmpeg with `args` writing to stdout, and yield that pipe to read to its end.

    stderr goes to a temporary file (a full stderr pipe would stall ffmpeg). On leaving
    the block ffmpeg is waited for; a failure or a run past `timeout` seconds raises
    StageError as `run()` does. If the block raises, ffmpeg is killed.
    """
    binary = ffmpeg_path()
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                [binary, "-hide_banner", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        except OSError as exc:
            raise _missing("ffmpeg", binary, exc) from exc
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            assert process.stdout is not None
            yield process.stdout
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            timer.cancel()
            if process.stdout is not None:
                process.stdout.close()
        returncode = process.wait()
        stderr.seek(0)
        tail = stderr_tail(stderr.read(), args)
    if timed_out.is_set():
        raise StageError(
            f"{error} (ffmpeg ran past {timeout:g} s)",
            {"tool": "ffmpeg", "timeoutSeconds": timeout, "stderr": tail},
            permanent=False,
        )
    if returncode != 0:
        raise StageError(error, {"tool": "ffmpeg", "returncode": returncode, "stderr": tail})


def _missing(tool: str, binary: str, exc: OSError) -> StageError:
    return StageError(
        f"{tool} could not be started ({binary}: {exc.strerror or exc})",
        {"tool": tool, "binary": binary, "setting": f"CLYPAI_{tool.upper()}"},
        permanent=False,
    )


def stderr_tail(
    stderr: bytes | str, args: Sequence[str] = (), lines: int = STDERR_TAIL_LINES
) -> list[str]:
    """ffmpeg's last stderr lines, with the paths from `args` cut to their file names."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    for arg in args:
        bare = arg[5:] if arg.startswith("file:") else arg
        if bare.startswith("/") and len(bare) > 1:
            text = text.replace(arg, Path(bare).name).replace(bare, Path(bare).name)
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def ffprobe(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    timeout: float = 60.0,
    error: str = "Clip generation failed: the file is not a readable video",
) -> tuple[dict[str, Any], list[str]]:
    """ffprobe's `-show_format -show_streams` JSON for a user's file, opened safely,
    with its stderr's last lines (warnings of a run that still succeeded)."""
    args = [
        "-v",
        "error",
        *safe_input_args(max_pixels),
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        "-i",
        input_url(path),
    ]
    completed = run(args, timeout=timeout, error=error, tool="ffprobe")
    try:
        data = json.loads(completed.stdout or b"{}")
    except ValueError as exc:  # never seen, but ffprobe's output is not ours
        raise StageError(
            error, {"tool": "ffprobe", "stdout": completed.stdout[:200].decode("utf-8", "replace")}
        ) from exc
    return data, stderr_tail(completed.stderr, args)


def ffprobe_json(path: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """`ffprobe()`'s JSON alone."""
    return ffprobe(path, **kwargs)[0]


_REFUSED_FORMAT = re.compile(r"\[([\w,]+) @ 0x[0-9a-f]+\] Format not on whitelist")


def refused_format(stderr_lines: Sequence[str]) -> str | None:
    """The demuxer ffmpeg detected and refused for not being on the format whitelist."""
    for line in stderr_lines:
        match = _REFUSED_FORMAT.search(line)
        if match:
            return match.group(1)
    return None


@lru_cache(maxsize=4)
def _codecs(binary: str) -> dict[str, frozenset[str]]:
    try:
        completed = subprocess.run(
            [binary, "-hide_banner", "-codecs"],
            capture_output=True,
            timeout=30,
            check=True,
        )
    except OSError as exc:
        raise _missing("ffmpeg", binary, exc) from exc
    kinds: dict[str, set[str]] = {"video": set(), "audio": set()}
    started = False
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        if line.strip().startswith("-------"):
            started = True
            continue
        parts = line.split()
        if not started or len(parts) < 2 or len(parts[0]) != 6:
            continue
        flags, name = parts[0], parts[1]
        if flags[0] != "D":
            continue
        if flags[2] == "V":
            kinds["video"].add(name)
        elif flags[2] == "A":
            kinds["audio"].add(name)
    return {kind: frozenset(names) for kind, names in kinds.items()}


def decodable_codecs(kind: str = "video") -> frozenset[str]:
    """Codec names (as ffprobe reports them) this machine's ffmpeg can decode; cached.

    From `ffmpeg -codecs` rather than `-decoders`: decoders carry their own names
    (libdav1d, libvpx-vp9), codecs carry the names ffprobe puts in `codec_name`.
    """
    return _codecs(ffmpeg_path())[kind]
