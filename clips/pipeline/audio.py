"""A source's audio: extracted once as mono WAV, then measured for scoring.

`extract_audio(src, dst_wav)` writes the first audio stream of a user's file as mono
16-bit PCM WAV (16 kHz by default), opened through `clypai.lib.ffmpeg.safe_input_args`.

`audio_features(wav)` reads that WAV in chunks (an hour of audio never sits in memory
at once) and returns `AudioFeatures`: loudness per window in dBFS (RMS; a full-scale
sine reads -3 dBFS), the silences (spans under a threshold lasting at least
`min_silence`), and the integrated loudness in LUFS after ITU-R BS.1770 (K-weighting,
400 ms blocks, absolute and relative gates). numpy only; no side effects.
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clypai.lib import ffmpeg
from clypai.lib.files import partial_path

from .base import StageError

if TYPE_CHECKING:
    import numpy as np

HOP_SECONDS = 0.01  # silences are found on this grid, loudness windows are built from it
FLOOR_DB = -100.0  # what digital silence reads
CHUNK_SECONDS = 30.0


@dataclass
class AudioFeatures:
    window: float  # seconds per loudness value
    loudness: np.ndarray  # dBFS (RMS) per window, float64, rounded to 0.01 dB
    silences: list[tuple[float, float]]  # (start, end) seconds
    integrated_lufs: float | None  # None when every block is gated out (silence)
    duration: float
    sample_rate: int
    silence_threshold_db: float
    min_silence: float
    peak_dbfs: float = field(default=FLOOR_DB)

    def loudness_at(self, start: float, end: float) -> float:
        """Mean loudness (power average, dBFS) of the windows between two times."""
        import numpy as np

        first = max(0, int(start / self.window))
        last = max(first + 1, int(math.ceil(end / self.window)))
        values = self.loudness[first:last]
        if len(values) == 0:
            return FLOOR_DB
        return float(10 * np.log10(np.mean(10 ** (values / 10))))


def extract_audio(
    src: str | os.PathLike[str],
    dst_wav: str | os.PathLike[str],
    *,
    duration: float | None = None,
    sample_rate: int = 16000,
    max_pixels: int | None = ffmpeg.DEFAULT_MAX_PIXELS,
    timeout: float = 3600.0,
) -> Path:
    """Write `src`'s first audio stream to `dst_wav` as mono s16 WAV; returns `dst_wav`.

    `duration`: the probed duration. The decode reads at most `ffmpeg.decode_bound` of
    it (`-t`) and writes at most that many seconds of samples (`-fs`); a file that still
    has sound at the bound lied about its length and is refused. The WAV is written to
    a temporary name beside `dst_wav` and renamed when whole: a failure leaves nothing.
    Raises a permanent StageError when the file has no audio stream, cannot be read, or
    plays longer than its header says. Overwrites `dst_wav`.
    """
    dst = Path(dst_wav)
    partial = partial_path(dst)
    bound = ffmpeg.decode_bound(duration) if duration is not None else None
    limits: list[str] = []
    if bound is not None:
        limits = ["-t", f"{bound:.3f}", "-fs", str(_wav_bytes(bound, sample_rate))]
    args = [
        "-nostdin",
        "-v",
        "error",
        "-y",
        *ffmpeg.safe_input_args(max_pixels),
        "-i",
        ffmpeg.input_url(src),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(int(sample_rate)),
        "-c:a",
        "pcm_s16le",
        *limits,
        "-f",
        "wav",
        str(partial),
    ]
    try:
        try:
            ffmpeg.run(
                args, timeout=timeout, error="Clip generation failed: could not extract the audio"
            )
        except StageError as err:
            stderr = " ".join(err.details.get("stderr") or [])
            if "matches no streams" in stderr:
                raise StageError(
                    "Clip generation failed: no audio stream",
                    {"found": {"audio": None}, "supported": "a file with an audio stream"},
                ) from err
            raise
        if bound is not None and duration is not None:
            decoded = max(0, partial.stat().st_size - WAV_HEADER_BYTES) / (2.0 * sample_rate)
            if decoded >= bound - BOUND_REACHED_SECONDS:
                raise ffmpeg.longer_than_header(duration, decoded)
        partial.replace(dst)
    finally:
        partial.unlink(missing_ok=True)
    return dst


WAV_HEADER_BYTES = 78  # ffmpeg's WAV header (with its LIST chunk); 44 without
BOUND_REACHED_SECONDS = 0.25  # samples this close to the bound: the decode was cut there


def _wav_bytes(seconds: float, sample_rate: int) -> int:
    """The size of `seconds` of mono s16 WAV at `sample_rate`, with room for its header."""
    return int(math.ceil(seconds * sample_rate)) * 2 + 4096


def audio_features(
    wav_path: str | os.PathLike[str],
    *,
    window: float = 0.1,
    silence_threshold_db: float = -40.0,
    min_silence: float = 0.3,
    chunk_seconds: float = CHUNK_SECONDS,
) -> AudioFeatures:
    """Loudness per `window` seconds, silences and integrated loudness of a PCM WAV file.

    A silence is a run of 10 ms hops whose RMS is under `silence_threshold_db` (dBFS),
    lasting at least `min_silence` seconds; its edges are exact to 10 ms.
    """
    import numpy as np

    try:
        reader = wave.open(str(wav_path), "rb")
    except (wave.Error, EOFError) as exc:
        raise StageError(
            "Clip generation failed: the audio is not a PCM WAV file",
            {"found": {"error": str(exc)}, "supported": "PCM WAV (8, 16, 24 or 32 bit)"},
        ) from exc
    with reader:
        rate = reader.getframerate()
        channels = reader.getnchannels()
        width = reader.getsampwidth()
        hop = max(1, round(rate * HOP_SECONDS))
        hop_seconds = hop / rate
        kweight = _KWeighting(rate)
        chunk = max(1, int(chunk_seconds / hop_seconds)) * hop

        hop_power: list[np.ndarray] = []  # mean square per hop, channels averaged
        hop_kpower: list[np.ndarray] = []  # K-weighted mean square per hop, channels summed
        peak = 0.0
        total = 0
        while True:
            data = reader.readframes(chunk)
            if not data:
                break
            samples = _pcm_to_float(data, width).reshape(-1, channels)
            total += len(samples)
            peak = max(peak, float(np.max(np.abs(samples))) if samples.size else 0.0)
            weighted = kweight(samples)
            hop_power.append(_per_hop(samples * samples, hop).mean(axis=1))
            hop_kpower.append(_per_hop(weighted * weighted, hop).sum(axis=1))

    power = np.concatenate(hop_power) if hop_power else np.zeros(0)
    kpower = np.concatenate(hop_kpower) if hop_kpower else np.zeros(0)
    hops_per_window = max(1, round(window / hop_seconds))
    window_power = _group_mean(power, hops_per_window)
    return AudioFeatures(
        window=round(hops_per_window * hop_seconds, 6),
        loudness=np.round(_db(window_power), 2),
        silences=_silences(
            _db(power),
            hop_seconds,
            silence_threshold_db,
            min_silence,
            total / rate if rate else 0.0,
        ),
        integrated_lufs=_integrated(kpower, max(1, round(0.1 / hop_seconds))),
        duration=round(total / rate, 6) if rate else 0.0,
        sample_rate=rate,
        silence_threshold_db=silence_threshold_db,
        min_silence=min_silence,
        peak_dbfs=round(float(_db(np.array([peak * peak]))[0]), 2),
    )


def _pcm_to_float(data: bytes, width: int) -> np.ndarray:
    import numpy as np

    if width == 1:  # unsigned 8 bit
        return (np.frombuffer(data, np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(data, "<i2").astype(np.float64) / 32768.0
    if width == 3:
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
        ints = (
            raw[:, 0].astype(np.int32)
            | (raw[:, 1].astype(np.int32) << 8)
            | (raw[:, 2].astype(np.int8).astype(np.int32) << 16)
        )
        return ints.astype(np.float64) / 8388608.0
    if width == 4:
        return np.frombuffer(data, "<i4").astype(np.float64) / 2147483648.0
    raise StageError(
        "Clip generation failed: unsupported WAV sample width",
        {"found": {"sampleWidth": width}, "supported": [1, 2, 3, 4]},
    )


def _per_hop(squares: np.ndarray, hop: int) -> np.ndarray:
    """(samples, channels) squares -> (hops, channels) means; a short last hop is kept."""
    import numpy as np

    whole = len(squares) // hop
    # the channel count spelled out: reshape cannot infer -1 when there is no whole hop
    means = squares[: whole * hop].reshape(whole, hop, squares.shape[1]).mean(axis=1)
    if len(squares) % hop:
        means = np.vstack([means, squares[whole * hop :].mean(axis=0, keepdims=True)])
    return means


def _group_mean(values: np.ndarray, size: int) -> np.ndarray:
    import numpy as np

    whole = len(values) // size
    means = values[: whole * size].reshape(whole, size).mean(axis=1)
    if len(values) % size:
        means = np.append(means, values[whole * size :].mean())
    return means


def _db(power: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB)


def _silences(
    hop_db: np.ndarray, hop_seconds: float, threshold: float, min_silence: float, duration: float
) -> list[tuple[float, float]]:
    import numpy as np

    quiet = np.concatenate([[False], hop_db < threshold, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    spans = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        start_s, end_s = float(start * hop_seconds), float(min(end * hop_seconds, duration))
        if end_s - start_s >= min_silence - 1e-9:
            spans.append((round(start_s, 3), round(end_s, 3)))
    return spans


def _integrated(kpower: np.ndarray, hops_per_100ms: int) -> float | None:
    """BS.1770 gated loudness from K-weighted power per hop."""
    import numpy as np

    if len(kpower) == 0:
        return None
    step = _group_mean(kpower, hops_per_100ms)  # 100 ms steps
    if len(step) >= 4:  # 400 ms blocks overlapping by 75 %
        blocks = np.convolve(step, np.ones(4) / 4, mode="valid")
    else:
        blocks = np.array([step.mean()])
    loudness = -0.691 + 10 * np.log10(np.maximum(blocks, 1e-30))
    kept = blocks[loudness > -70.0]
    if len(kept) == 0:
        return None
    relative_gate = -0.691 + 10 * np.log10(kept.mean()) - 10.0
    kept = blocks[(loudness > -70.0) & (loudness > relative_gate)]
    return round(float(-0.691 + 10 * np.log10(kept.mean())), 2)


class _KWeighting:
    """BS.1770's K-weighting (shelf + high-pass), streamed chunk by chunk.

    The two biquads are applied as one FIR: their impulse response dies out within a
    few milliseconds (energy past 50 ms is 1e-11 of the total), so 100 ms of it,
    convolved by FFT with the previous chunk's tail carried over, is exact for our
    purpose and keeps the work in numpy.
    """

    def __init__(self, rate: int):
        import numpy as np

        length = max(16, int(0.1 * rate))
        impulse = np.zeros(length)
        impulse[0] = 1.0
        for b, a in _k_weighting_biquads(rate):
            impulse = _biquad(impulse, b, a)
        self.response = impulse
        self.history: np.ndarray | None = None

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        import numpy as np

        taps = len(self.response)
        if self.history is None:
            self.history = np.zeros((taps - 1, samples.shape[1]))
        extended = np.vstack([self.history, samples])
        size = 1 << int(math.ceil(math.log2(len(extended) + taps - 1)))
        spectrum = np.fft.rfft(extended, size, axis=0) * np.fft.rfft(self.response, size)[:, None]
        filtered = np.fft.irfft(spectrum, size, axis=0)[taps - 1 : taps - 1 + len(samples)]
        self.history = extended[-(taps - 1) :]
        return filtered


def _k_weighting_biquads(rate: int) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """The two K-weighting stages for any sample rate (libebur128's formulas)."""
    f0, gain, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0)
    shelf_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    highpass = (1.0, -2.0, 1.0)
    highpass_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    return [(shelf, shelf_a), (highpass, highpass_a)]


def _biquad(x: np.ndarray, b: tuple[float, ...], a: tuple[float, ...]) -> np.ndarray:
    """Direct-form I, sample by sample: only ever run on the short impulse response."""
    import numpy as np

    y = np.zeros_like(x)
    x1 = x2 = y1 = y2 = 0.0
    for i, xi in enumerate(x.tolist()):
        yi = b[0] * xi + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1, y2, y1 = x1, xi, y1, yi
        y[i] = yi
    return y
