"""clips.pipeline.probe: figures of the real test media, and every early refusal.

Hostile and synthetic files are made in tmp_path at test time, with ffmpeg or by
writing bytes; the shared media are read in place.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from clips.pipeline import StageError
from clips.pipeline.probe import ProbeLimits, ProbeResult, probe
from clypai.lib import ffmpeg

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y"]
GRID_CONCAT = "talking_head/grid_concat_11clips_33s.mp4"
BUNNY = "cuts/big_buck_bunny_0-30s_720p.webm"


def _make(path: Path, *args: str) -> Path:
    subprocess.run([*FFMPEG, *args, str(path)], check=True)
    return path


def _testsrc(seconds: float = 1, size: str = "160x120", rate: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]


def _refusal(path: Path, limits: ProbeLimits | None = None) -> StageError:
    with pytest.raises(StageError) as caught:
        probe(path, limits=limits or ProbeLimits())
    err = caught.value
    assert err.permanent and err.code == "processing_failed"
    assert err.message.startswith("Clip generation failed")
    return err


# --- figures ---------------------------------------------------------------------------


def test_it_reads_the_grid_concatenation(shared_media):
    result = probe(shared_media / GRID_CONCAT, limits=ProbeLimits())

    assert isinstance(result, ProbeResult)
    assert result.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert result.duration == pytest.approx(33.0, abs=0.01)
    assert result.size == os.path.getsize(shared_media / GRID_CONCAT)
    assert result.bit_rate and 300_000 < result.bit_rate < 600_000
    video = result.video
    assert (video.codec, video.width, video.height, video.fps) == ("h264", 360, 288, 25.0)
    assert (video.display_width, video.display_height, video.rotation) == (360, 288, 0)
    assert video.pix_fmt == "yuv420p" and video.frames == 825
    assert result.audio is not None
    assert (result.audio.codec, result.audio.channels, result.audio.sample_rate) == (
        "aac",
        2,
        44100,
    )
    assert {s["codec_type"] for s in result.raw["streams"]} == {"video", "audio"}


def test_it_reads_big_buck_bunny_webm(shared_media):
    result = probe(shared_media / BUNNY, limits=ProbeLimits())

    assert result.container == "matroska,webm"
    assert result.duration == pytest.approx(30.0, abs=0.01)
    video = result.video
    assert (video.codec, video.width, video.height, video.fps) == ("vp8", 1280, 720, 24.0)
    assert (video.display_width, video.display_height) == (1280, 720)
    assert result.audio is not None and result.audio.codec == "vorbis"
    assert (result.audio.channels, result.audio.sample_rate) == (2, 44100)


def test_it_reads_a_grid_mpeg1_clip(shared_media):
    result = probe(shared_media / "talking_head/grid/bbaf2n.mpg", limits=ProbeLimits())

    assert result.container == "mpeg"
    assert result.duration == pytest.approx(3.0, abs=0.05)
    video = result.video
    assert (video.codec, video.width, video.height, video.fps) == ("mpeg1video", 360, 288, 25.0)
    assert result.audio is not None and result.audio.codec == "mp2"


def test_it_reads_rotation_from_the_display_matrix(tmp_path):
    plain = _make(
        tmp_path / "plain.mp4", *_testsrc(size="320x240"), "-c:v", "libx264", "-pix_fmt", "yuv420p"
    )
    # ffmpeg 5.1 has no -display_rotation; the rotate tag on a stream copy writes the matrix
    rotated = _make(
        tmp_path / "rotated.mp4", "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90"
    )

    result = probe(rotated, limits=ProbeLimits())

    side_data = result.raw["streams"][0]["side_data_list"][0]
    assert side_data["side_data_type"] == "Display Matrix"
    assert result.video.rotation == 90
    assert (result.video.width, result.video.height) == (320, 240)
    assert (result.video.display_width, result.video.display_height) == (240, 320)
    assert probe(plain, limits=ProbeLimits()).video.rotation == 0


@pytest.mark.parametrize(
    "codec, encoder",
    [
        ("hevc", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none"]),
        ("vp9", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]),
        ("av1", ["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime"]),
        ("mpeg4", ["-c:v", "mpeg4"]),
    ],
)
def test_it_accepts_any_codec_this_ffmpeg_decodes(tmp_path, codec, encoder):
    # The API document's example refuses h265; ClypAI takes what ffmpeg can decode.
    source = _make(
        tmp_path / f"{codec}.mkv",
        *_testsrc(seconds=0.4, size="128x72"),
        *encoder,
        "-pix_fmt",
        "yuv420p",
    )

    result = probe(source, limits=ProbeLimits())

    assert result.video.codec == codec
    assert (result.video.width, result.video.height) == (128, 72)


def test_it_counts_the_duration_a_streamed_webm_does_not_carry(tmp_path):
    # A browser's MediaRecorder writes WebM as a stream: no duration in the header.
    live = tmp_path / "recorded.webm"
    with live.open("wb") as out:
        subprocess.run(
            [
                *FFMPEG,
                *_testsrc(seconds=4),
                "-c:v",
                "libvpx",
                "-b:v",
                "200k",
                "-f",
                "webm",
                "pipe:1",
            ],
            stdout=out,
            check=True,
        )
    assert "duration" not in ffmpeg.ffprobe_json(live)["format"]

    result = probe(live, limits=ProbeLimits())

    assert result.duration == pytest.approx(4.0, abs=0.05)


def test_limits_hold_in_either_orientation(tmp_path):
    portrait = _make(
        tmp_path / "portrait.mp4",
        *_testsrc(size="120x160"),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    result = probe(portrait, limits=ProbeLimits(max_width=160, max_height=120))

    assert (result.video.width, result.video.height) == (120, 160)


def test_limits_come_from_settings(settings):
    settings.CLYPAI_MAX_SOURCE_SECONDS = 60.0
    settings.CLYPAI_MAX_SOURCE_WIDTH = 1920
    settings.CLYPAI_MAX_SOURCE_HEIGHT = 1080
    settings.CLYPAI_FFMPEG_MAX_PIXELS = 1920 * 1080

    assert ProbeLimits.from_settings(settings) == ProbeLimits(60.0, 1920, 1080, 1920 * 1080)


# --- refusals --------------------------------------------------------------------------


def test_it_refuses_a_file_without_video(shared_media):
    err = _refusal(shared_media / "speech/jfk/jfk.flac")

    assert err.message == "Clip generation failed: no video stream"
    assert err.details["found"] == {"container": "flac", "streams": ["audio"]}
    assert "video stream" in err.details["supported"]


def test_it_refuses_random_bytes(tmp_path):
    junk = tmp_path / "holiday.mp4"
    junk.write_bytes(os.urandom(64 * 1024))

    err = _refusal(junk)

    assert err.message == "Clip generation failed: the file is not a readable video"
    assert err.details["found"]["error"].endswith("Invalid data found when processing input")
    assert "mov" in err.details["supported"]["formats"]


def test_it_refuses_a_source_longer_than_the_limit(shared_media):
    err = _refusal(shared_media / BUNNY, ProbeLimits(max_duration_seconds=20))

    assert "too long" in err.message
    assert err.details["found"]["duration"] == pytest.approx(30.0, abs=0.01)
    assert err.details["limit"] == {"maxDurationSeconds": 20}


@pytest.mark.parametrize(
    "limits",
    [
        ProbeLimits(max_width=1279, max_height=1279),
        ProbeLimits(max_width=1920, max_height=719),
        ProbeLimits(max_pixels=1280 * 720 - 1),
    ],
    ids=["long-side", "short-side", "pixels"],
)
def test_it_refuses_a_frame_larger_than_the_limit(shared_media, limits):
    err = _refusal(shared_media / BUNNY, limits)

    assert err.message == "Clip generation failed: the video is too large (1280x720)"
    assert err.details["found"] == {"width": 1280, "height": 720, "codec": "vp8"}
    assert err.details["limit"] == {
        "maxWidth": limits.max_width,
        "maxHeight": limits.max_height,
        "maxPixels": limits.max_pixels,
    }


@pytest.mark.parametrize("sample_entry", [True, False], ids=["container-too", "frames-only"])
def test_it_refuses_frames_whose_header_claims_30000x30000_naming_the_size(tmp_path, sample_entry):
    from tests.clips.hostile_media import make_huge_header

    err = _refusal(make_huge_header(tmp_path, sample_entry=sample_entry))

    # ffmpeg will not allocate such a frame; the refusal names what the file claims.
    assert err.message == "Clip generation failed: the video is too large (30000x30000)"
    assert err.details["found"] == {"width": 30000, "height": 30000, "codec": "png"}


def test_it_refuses_a_codec_this_ffmpeg_cannot_decode(tmp_path):
    if "avs2" in ffmpeg.decodable_codecs("video"):
        pytest.skip("this ffmpeg decodes AVS2; no undecodable codec to write")
    # ffmpeg knows AVS2 (it can demux and mux it) but Debian ships no decoder for it.
    raw = tmp_path / "raw.avs2"
    header = b"\x00\x00\x01\xb0" + bytes([0x20, 0x42, 0x81, 0x40, 0x20, 0x48, 0x91, 0, 0, 0])
    raw.write_bytes(
        (header + b"\x00\x00\x01\xb3" + bytes(20) + b"\x00\x00\x01\x00" + bytes(50)) * 10
    )
    source = _make(
        tmp_path / "avs2.ts",
        "-f",
        "avs2",
        "-i",
        str(raw),
        "-c",
        "copy",
        "-bsf:v",
        "setts=pts=N*3600:dts=N*3600",
        "-f",
        "mpegts",
    )

    err = _refusal(source)

    assert err.message == "Clip generation failed: Unsupported video codec"
    assert err.details["codec"] == "avs2"
    assert {"h264", "hevc", "vp9", "av1"} <= set(err.details["supportedCodecs"])
    assert err.details["supportedCodecCount"] == len(ffmpeg.decodable_codecs("video"))


def test_it_refuses_an_hls_playlist_disguised_as_mp4(tmp_path):
    secret = _make(tmp_path / "secret.ts", *_testsrc(), "-c:v", "mpeg2video", "-f", "mpegts")
    upload = tmp_path / "upload.mp4"
    upload.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n"
    )

    err = _refusal(upload)

    assert err.message == "Clip generation failed: unsupported file format (hls)"
    assert err.details["found"] == {"format": "hls"}
    assert err.details["supported"]["formats"] == list(ffmpeg.SAFE_INPUT_FORMATS)


def test_it_refuses_a_concat_list_disguised_as_mp4(tmp_path):
    _make(tmp_path / "secret.ts", *_testsrc(), "-c:v", "mpeg2video", "-f", "mpegts")
    upload = tmp_path / "upload.mp4"
    upload.write_text("ffconcat version 1.0\nfile secret.ts\n")

    err = _refusal(upload)

    assert err.message == "Clip generation failed: unsupported file format (concat)"
    assert err.details["found"] == {"format": "concat"}
