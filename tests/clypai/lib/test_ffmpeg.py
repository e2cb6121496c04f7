"""clypai.lib.ffmpeg: how user files are opened, and how failures are reported.

The two attacks below are real on this machine's ffmpeg (Debian's 5.1): a playlist or a
concat list renamed to .mp4 is recognised by its content, and with only
`-protocol_whitelist file` ffmpeg reads the local files it names into the output. The
"secret" is a recording of the worker's (another team's source, say): a media file,
because Debian's 5.1 build only opens HLS segments with media extensions.
"""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest

from clypai.lib import ffmpeg
from clypai.lib.errors import StageError

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y"]


def _make_secret(folder: Path) -> Path:
    """Two seconds of a 440 Hz tone in MPEG-TS: what the attacker wants to read."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / "secret.ts"
    subprocess.run(
        [
            *FFMPEG,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "mp2",
            "-f",
            "mpegts",
            str(secret),
        ],
        check=True,
    )
    return secret


def _to_wav(args: list[str], source: Path, out: Path) -> subprocess.CompletedProcess:
    """Convert `source` to WAV the way a careless pipeline would, opened with `args`."""
    return subprocess.run(
        [*FFMPEG, *args, "-i", str(source), "-vn", "-ac", "1", "-ar", "8000", str(out)],
        capture_output=True,
        text=True,
    )


def _seconds(wav_path: Path) -> float:
    with wave.open(str(wav_path)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_safe_input_args_allow_only_files_and_real_containers():
    args = ffmpeg.safe_input_args(1000)

    assert args[args.index("-protocol_whitelist") + 1] == "file"
    formats = args[args.index("-format_whitelist") + 1].split(",")
    assert {"mov", "matroska", "avi", "mpegts", "flv", "mpeg", "ogg"} <= set(formats)
    assert not {"hls", "concat", "image2", "tty", "lavfi", "dash", "applehttp"} & set(formats)
    assert args[args.index("-max_pixels") + 1] == "1000"


def test_whitelisted_names_are_demuxers_of_this_ffmpeg():
    listing = subprocess.run(
        ["ffmpeg", "-hide_banner", "-demuxers"], capture_output=True, text=True, check=True
    ).stdout
    names = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "D":
            names.update(parts[1].split(","))

    assert set(ffmpeg.SAFE_INPUT_FORMATS) <= names


def test_an_hls_playlist_named_mp4_reads_local_files_with_the_protocol_whitelist_alone(tmp_path):
    secret = _make_secret(tmp_path / "other-team")
    upload = tmp_path / "upload.mp4"
    upload.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n{secret}\n#EXT-X-ENDLIST\n"
    )
    out = tmp_path / "leak.wav"

    done = _to_wav(["-protocol_whitelist", "file"], upload, out)

    assert done.returncode == 0, done.stderr
    assert _seconds(out) == pytest.approx(2.0, abs=0.1)  # the secret, now in our output


def test_safe_input_args_refuse_an_hls_playlist_named_mp4(tmp_path):
    secret = _make_secret(tmp_path / "other-team")
    upload = tmp_path / "upload.mp4"
    upload.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n{secret}\n#EXT-X-ENDLIST\n"
    )
    out = tmp_path / "leak.wav"

    done = _to_wav(["-v", "verbose", *ffmpeg.safe_input_args()], upload, out)

    assert done.returncode != 0
    assert "[hls @" in done.stderr and "Format not on whitelist" in done.stderr
    assert "secret.ts" not in done.stderr  # never opened
    assert not out.exists()


def test_a_concat_list_named_mp4_reads_its_neighbours_with_the_protocol_whitelist_alone(tmp_path):
    _make_secret(tmp_path)  # a file beside the upload, as sources sit in one folder
    upload = tmp_path / "upload.mp4"
    upload.write_text("ffconcat version 1.0\nfile secret.ts\n")
    out = tmp_path / "leak.wav"

    done = _to_wav(["-protocol_whitelist", "file"], upload, out)

    assert done.returncode == 0, done.stderr
    assert _seconds(out) == pytest.approx(2.0, abs=0.1)


def test_safe_input_args_refuse_a_concat_list_named_mp4(tmp_path):
    _make_secret(tmp_path)
    upload = tmp_path / "upload.mp4"
    upload.write_text("ffconcat version 1.0\nfile secret.ts\n")
    out = tmp_path / "leak.wav"

    done = _to_wav(["-v", "verbose", *ffmpeg.safe_input_args()], upload, out)

    assert done.returncode != 0
    assert "[concat @" in done.stderr and "Format not on whitelist" in done.stderr
    assert "secret.ts" not in done.stderr
    assert not out.exists()


def test_safe_input_args_still_open_real_containers(shared_media, tmp_path):
    for name in (
        "talking_head/grid_concat_11clips_33s.mp4",
        "cuts/big_buck_bunny_0-30s_720p.webm",
        "talking_head/grid/bbaf2n.mpg",
        "speech/jfk/jfk.flac",
    ):
        out = tmp_path / "out.wav"
        done = _to_wav(ffmpeg.safe_input_args(), shared_media / name, out)
        assert done.returncode == 0, (name, done.stderr)


def test_max_pixels_stops_the_decoder_on_larger_frames(shared_media):
    source = ffmpeg.input_url(shared_media / "talking_head/grid/bbaf2n.mpg")  # 360x288
    small = [
        "-v",
        "error",
        *ffmpeg.safe_input_args(360 * 288 - 1),
        "-i",
        source,
        "-frames:v",
        "1",
        "-f",
        "null",
        "-",
    ]

    with pytest.raises(StageError) as caught:
        ffmpeg.run(small, timeout=30, error="decode failed")

    assert any(
        "exceeds specified max pixel count" in line for line in caught.value.details["stderr"]
    )
    ffmpeg.run(
        [
            "-v",
            "error",
            *ffmpeg.safe_input_args(360 * 288),
            "-i",
            source,
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
        ],
        timeout=30,
        error="decode failed",
    )


def test_input_url_keeps_a_protocol_looking_name_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert ffmpeg.input_url("concat:a.mp4|b.mp4") == f"file:{tmp_path}/concat:a.mp4|b.mp4"


def test_run_raises_a_permanent_stage_error_with_the_last_stderr_lines(tmp_path):
    missing = tmp_path / "nowhere" / "missing.mp4"

    with pytest.raises(StageError) as caught:
        ffmpeg.run(
            ["-v", "error", "-i", ffmpeg.input_url(missing), "-f", "null", "-"],
            timeout=30,
            error="Clip generation failed: could not read the source",
        )

    err = caught.value
    assert err.permanent and err.code == "processing_failed"
    assert err.message == "Clip generation failed: could not read the source"
    assert err.details["returncode"] != 0
    assert err.details["stderr"][-1] == "missing.mp4: No such file or directory"
    assert str(tmp_path) not in " ".join(err.details["stderr"])  # paths cut to names


def test_run_gives_up_after_its_timeout_with_a_passing_error():
    forever = ["-v", "error", "-re", "-f", "lavfi", "-i", "anullsrc", "-f", "null", "-"]

    with pytest.raises(StageError) as caught:
        ffmpeg.run(forever, timeout=0.5, error="stuck")

    assert not caught.value.permanent
    assert caught.value.details["timeoutSeconds"] == 0.5


def test_stream_pipes_stdout_and_raises_when_ffmpeg_fails(tmp_path):
    args = [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "color=red:size=4x2:rate=5:duration=1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-",
    ]
    with ffmpeg.stream(args, timeout=30, error="x") as pipe:
        data = pipe.read()
    assert len(data) == 5 * 4 * 2

    with pytest.raises(StageError) as caught:
        with ffmpeg.stream(
            ["-v", "error", "-i", ffmpeg.input_url(tmp_path / "no.mp4"), "-f", "rawvideo", "-"],
            timeout=30,
            error="cannot decode",
        ) as pipe:
            pipe.read()
    assert caught.value.message == "cannot decode"
    assert caught.value.details["stderr"][-1] == "no.mp4: No such file or directory"


def test_a_missing_binary_is_a_passing_error(monkeypatch):
    monkeypatch.setenv("CLYPAI_FFMPEG", "/nonexistent/ffmpeg")

    assert ffmpeg.ffmpeg_path() == "/nonexistent/ffmpeg"
    with pytest.raises(StageError) as caught:
        ffmpeg.run(["-version"], timeout=5, error="x")
    assert not caught.value.permanent
    assert caught.value.details["setting"] == "CLYPAI_FFMPEG"


def test_decodable_codecs_come_from_this_ffmpeg():
    video = ffmpeg.decodable_codecs("video")

    assert {"h264", "hevc", "vp8", "vp9", "av1", "mpeg1video", "mpeg4", "prores"} <= video
    assert "avs2" not in video  # Debian builds no AVS2 decoder (libdavs2)
    assert {"aac", "mp2", "vorbis", "opus", "flac"} <= ffmpeg.decodable_codecs("audio")
