"""clips.pipeline.audio: extraction from real media, loudness and silences measured.

Synthetic signals are written as WAV into tmp_path at test time, so their loudness and
silences are known exactly; real speech is checked against ffmpeg's own EBU R128 meter.
"""

from __future__ import annotations

import re
import subprocess
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from clips.pipeline import StageError
from clips.pipeline.audio import AudioFeatures, audio_features, extract_audio

RATE = 16000


def _write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


def _tone(seconds: float, peak: float, freq: float = 1000.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return peak * np.sin(2 * np.pi * freq * t)


def _ffmpeg_integrated_lufs(path: Path) -> float:
    done = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = done.stderr[done.stderr.rindex("Integrated loudness") :]
    return float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))


def test_it_extracts_mono_16k_wav_from_a_video(shared_media, tmp_path):
    out = extract_audio(
        shared_media / "talking_head/grid_concat_11clips_33s.mp4", tmp_path / "grid.wav"
    )

    with wave.open(str(out)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.getnframes() / 16000 == pytest.approx(33.0, abs=0.05)


def test_runs_extracting_the_same_source_at_once_each_leave_a_whole_wav(shared_media, tmp_path):
    # Three jobs of one source on workers sharing a work dir extract its audio to one
    # place at once (the serve proof met it: a shared temporary name renamed away by
    # the first run left the others a FileNotFoundError).
    source = shared_media / "talking_head/grid_concat_11clips_33s.mp4"
    target = tmp_path / "audio" / "src.wav"
    target.parent.mkdir()
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def extract():
        start.wait()
        try:
            extract_audio(source, target, duration=33.0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    runs = [threading.Thread(target=extract) for _ in range(4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()

    assert failures == []
    with wave.open(str(target)) as wav:
        assert wav.getnframes() / 16000 == pytest.approx(33.0, abs=0.05)
    assert [p.name for p in target.parent.iterdir()] == ["src.wav"]  # no temporary left


def test_it_extracts_vorbis_from_webm_at_the_asked_rate(shared_media, tmp_path):
    out = extract_audio(
        shared_media / "cuts/big_buck_bunny_0-30s_720p.webm",
        tmp_path / "bunny.wav",
        sample_rate=8000,
    )

    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 8000
        assert wav.getnframes() / 8000 == pytest.approx(30.0, abs=0.05)


def test_it_refuses_to_extract_from_a_video_without_audio(tmp_path):
    silent = tmp_path / "silent.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=5:duration=1",
            "-c:v",
            "libx264",
            str(silent),
        ],
        check=True,
    )

    with pytest.raises(StageError) as caught:
        extract_audio(silent, tmp_path / "out.wav")

    assert caught.value.permanent
    assert caught.value.message == "Clip generation failed: no audio stream"


def test_it_refuses_to_extract_from_a_playlist_disguised_as_mp4(tmp_path):
    secret = tmp_path / "secret.wav"
    _write_wav(secret, _tone(1.0, 0.5))
    upload = tmp_path / "upload.mp4"
    upload.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n"
    )

    with pytest.raises(StageError) as caught:
        extract_audio(upload, tmp_path / "out.wav")

    assert any("Format not on whitelist" in line for line in caught.value.details["stderr"])
    assert not (tmp_path / "out.wav").exists()


def test_a_minus_20_dbfs_sine_reads_minus_23_dbfs_rms(tmp_path):
    # A sine's RMS is its peak minus 3.01 dB; BS.1770 is calibrated so that a 1 kHz sine
    # reads the same in LUFS.
    wav = _write_wav(tmp_path / "sine.wav", _tone(5.0, 10 ** (-20 / 20)))

    features = audio_features(wav, window=0.1)

    assert isinstance(features, AudioFeatures)
    assert features.window == pytest.approx(0.1)
    assert len(features.loudness) == 50
    assert np.all(np.abs(features.loudness - (-23.01)) < 1.0)
    assert features.integrated_lufs == pytest.approx(-23.0, abs=0.5)
    assert features.peak_dbfs == pytest.approx(-20.0, abs=0.1)
    assert features.silences == []
    assert features.duration == pytest.approx(5.0)


def test_it_finds_a_one_second_silence_between_tones(tmp_path):
    signal = np.concatenate([_tone(1.25, 0.5, 440), np.zeros(RATE), _tone(1.5, 0.5, 440)])
    wav = _write_wav(tmp_path / "gap.wav", signal)

    features = audio_features(wav)

    assert len(features.silences) == 1
    start, end = features.silences[0]
    assert start == pytest.approx(1.25, abs=0.1)
    assert end == pytest.approx(2.25, abs=0.1)
    # The windows inside the gap read as digital silence; the tones around it do not.
    assert features.loudness[15:21].max() == -100.0
    assert features.loudness[:12].min() > -10.0


def test_silences_shorter_than_the_minimum_are_not_silences(tmp_path):
    signal = np.concatenate(
        [
            _tone(1.0, 0.5),
            np.zeros(RATE // 5),
            _tone(1.0, 0.5),
            np.zeros(RATE // 2),
            _tone(1.0, 0.5),
        ]
    )
    wav = _write_wav(tmp_path / "gaps.wav", signal)

    features = audio_features(wav, min_silence=0.3)

    assert features.silences == [(pytest.approx(2.2, abs=0.02), pytest.approx(2.7, abs=0.02))]


def test_reading_in_chunks_changes_nothing(tmp_path):
    rng = np.random.default_rng(7)
    signal = np.concatenate(
        [rng.normal(0, 0.1, 3 * RATE), np.zeros(RATE // 2), _tone(2.0, 0.3, 220)]
    )
    wav = _write_wav(tmp_path / "mix.wav", signal)

    whole = audio_features(wav, chunk_seconds=60)
    chunked = audio_features(wav, chunk_seconds=0.37)  # many chunks, none on a window edge

    np.testing.assert_allclose(chunked.loudness, whole.loudness, atol=0.011)
    assert chunked.silences == whole.silences
    assert chunked.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=0.01)


def test_real_speech_loudness_agrees_with_ffmpegs_r128_meter(shared_media, tmp_path):
    wav = extract_audio(shared_media / "speech/jfk/jfk.flac", tmp_path / "jfk.wav")

    features = audio_features(wav)

    assert features.duration == pytest.approx(11.0, abs=0.05)
    assert features.integrated_lufs == pytest.approx(_ffmpeg_integrated_lufs(wav), abs=0.3)
    assert len(features.loudness) == 110


def test_silence_alone_has_no_integrated_loudness(tmp_path):
    wav = _write_wav(tmp_path / "quiet.wav", np.zeros(2 * RATE))

    features = audio_features(wav)

    assert features.integrated_lufs is None
    assert features.silences == [(0.0, 2.0)]
    assert features.loudness.max() == -100.0


def test_a_last_chunk_shorter_than_one_hop_is_measured_not_a_crash(tmp_path):
    # A source of exactly N x 30 s extracts to N x 30 s and a millisecond: the last
    # chunk read holds less than one 10 ms hop.
    wav = _write_wav(tmp_path / "edge.wav", _tone(30.001, 0.1))
    features = audio_features(wav, window=0.1)
    assert features.duration == pytest.approx(30.001, abs=1e-3)
    assert len(features.loudness) == 301
    assert np.all(np.isfinite(features.loudness))
