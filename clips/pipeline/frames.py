"""Raw frames of a user's video, decoded by ffmpeg: the one reader the stages share.

`FrameReader(source, size=(w, h), vf=...)` is one decode of the first video stream:
`-ss` before the input when `start` is given (a fast seek), the file opened through
`clypai.lib.ffmpeg.safe_input_args`, an optional `-t` (`duration`) and `-frames:v`
(`frames`), the caller's `-vf`, and raw frames on stdout. The filter chain is the
caller's own and must end in the frames' size and a 3-byte pixel format (`format=rgb24`,
or `bgr24` for OpenCV): each stage measured its chain (scenes, faces, the render's reader;
see their docstrings and DESIGN.md), and this module adds no conversion of its own.

- `open()`: the pipe (`clypai.lib.ffmpeg.stream`), for a caller that reads the bytes
  itself (PySceneDetect's stream, the render's reader);
- iterating the reader: each frame as a read-only (h, w, 3) uint8 array, to the end;
- `grab()`: the first frame alone (a thumbnail candidate), or None when there is none.

Raises StageError(`error`) when ffmpeg fails or runs past `timeout` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from clypai.lib import ffmpeg

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class FrameReader:
    """One decode of `source` to raw frames of `size` (width, height)."""

    source: str | os.PathLike[str]
    size: tuple[int, int]
    vf: str  # ends in the frames' size and pixel format
    error: str  # StageError's message when ffmpeg fails
    start: float | None = None  # seconds; None: from the start, without a seek
    duration: float | None = None  # seconds of input to read (-t)
    frames: int | None = None  # at most this many frames (-frames:v)
    threads: int | None = None  # the decoder's threads (None: ffmpeg's choice)
    max_pixels: int | None = ffmpeg.DEFAULT_MAX_PIXELS
    timeout: float = 3600.0

    @property
    def frame_bytes(self) -> int:
        return self.size[0] * self.size[1] * 3

    def args(self) -> list[str]:
        """ffmpeg's arguments for this decode."""
        args = ["-nostdin", "-v", "error"]
        if self.start is not None:
            args += ["-ss", f"{self.start:.4f}"]
        args += ffmpeg.safe_input_args(self.max_pixels)
        if self.threads:
            args += ["-threads", str(self.threads)]
        args += ["-i", ffmpeg.input_url(self.source)]
        if self.duration is not None:
            args += ["-t", f"{self.duration:.4f}"]
        args += ["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", self.vf]
        if self.frames is not None:
            args += ["-frames:v", str(self.frames)]
        return args + ["-f", "rawvideo", "-"]

    def open(self) -> AbstractContextManager[IO[bytes]]:
        """ffmpeg's stdout, to read `frame_bytes` at a time; leaving the block early (an
        exception) stops ffmpeg, leaving it at the end checks how ffmpeg ended."""
        return ffmpeg.stream(self.args(), timeout=self.timeout, error=self.error)

    def __iter__(self) -> Iterator[np.ndarray]:
        import numpy as np

        width, height = self.size
        size = self.frame_bytes
        with self.open() as pipe:
            while True:
                data = pipe.read(size)
                if len(data) < size:
                    break
                yield np.frombuffer(data, np.uint8).reshape(height, width, 3)

    def grab(self) -> np.ndarray | None:
        """The first frame, decoded alone; None when the source gives no whole frame."""
        import numpy as np

        width, height = self.size
        size = self.frame_bytes
        data = ffmpeg.run(self.args(), timeout=self.timeout, error=self.error).stdout
        if len(data) < size:
            return None
        return np.frombuffer(data[:size], np.uint8).reshape(height, width, 3)
