"""Analysis benchmark: how long does understanding a 10-minute source take on this machine?

Builds a source at run time from the real recordings in ../shared/media (bench/_media.py:
the GRID talking-head concatenation looped, a hard cut every 3 s, scaled to 720p, with
real speech under it: GRID, JFK, LibriVox and a telephone call in shuffled rounds, so the
reference text is known) into a temporary folder, then runs the project's own stages on
it, in the pipeline's order, in a fresh process (as a worker would):

    probe → audio extraction → transcription (faster-whisper, the default engine)
          → scene detection → audio features

and prints the wall time and CPU time of each stage, the real-time factor of the whole
analysis, and peak memory: of the Python process (getrusage RUSAGE_SELF ru_maxrss), of its
children (RUSAGE_CHILDREN ru_maxrss, which on Linux mostly shows the Python process's own
size when it spawned them), and of ffmpeg/ffprobe themselves, measured by running them
under GNU time (/usr/bin/time) through wrapper scripts on PATH and CLYPAI_FFMPEG/FFPROBE
(--no-tool-rss turns that off). It also says how much CPU other processes took meanwhile
(/proc/stat): on this shared 2-core machine that inflates every figure. Then the same WAV is
transcribed by openai-whisper, in a process of its own, on the same packaged weights
(converted by clips/pipeline/whisper_convert.py), and the two engines are shown side by
side: model load, transcription wall time, real-time factor, their ratio, peak memory,
word error rate of each against the known text, and the word agreement (WER) between
the two outputs.

One-time work (assembling the base model from its two packages, converting a model for
openai-whisper: `manage.py prepare_models` does both at install time) is timed apart and
not counted in the stages; it writes into $CLYPAI_MODEL_DIR (default var/models).

Usage: .venv/bin/python bench/analysis.py [--minutes 10] [--model tiny.en|base]
                                          [--skip-openai] [--json] [--height 720]
                                          [--source FILE] [--keep DIR] [--no-tool-rss]
No Django settings are needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAGES = ("probe", "audio extraction", "transcription", "scene detection", "audio features")
CUT_TOLERANCE_FRAMES = 2


# --- measuring ------------------------------------------------------------------------


def _rusage() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self": own.ru_utime + own.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        # Linux reports ru_maxrss in KiB.
        "maxrss_self_mib": own.ru_maxrss / 1024,
        "maxrss_children_mib": kids.ru_maxrss / 1024,
    }


class Meter:
    """Wall time, CPU time and the peak-memory high-water marks of each step.

    With `tool_log` (see `_tool_wrappers`), also the real peak RSS of each ffmpeg and
    ffprobe run of the step, as GNU time measured it around that run.
    """

    def __init__(self, tool_log: Path | None = None) -> None:
        self.steps: dict[str, dict[str, float]] = {}
        self.tool_log = tool_log
        self._log_offset = 0

    def _tool_runs(self) -> list[tuple[float, str]]:
        if self.tool_log is None or not self.tool_log.is_file():
            return []
        with open(self.tool_log) as fh:
            fh.seek(self._log_offset)
            text = fh.read()
            self._log_offset = fh.tell()
        runs = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit():
                runs.append((int(parts[0]) / 1024, parts[1]))
        return runs

    def run(self, name: str, func, *args, **kwargs):
        self._tool_runs()  # skip what ran before this step
        before = _rusage()
        started = time.perf_counter()
        result = func(*args, **kwargs)
        wall = time.perf_counter() - started
        after = _rusage()
        runs = self._tool_runs()
        self.steps[name] = {
            "wall_s": round(wall, 3),
            "cpu_self_s": round(after["cpu_self"] - before["cpu_self"], 3),
            "cpu_children_s": round(after["cpu_children"] - before["cpu_children"], 3),
            "maxrss_self_mib": round(after["maxrss_self_mib"], 1),
            "maxrss_children_mib": round(after["maxrss_children_mib"], 1),
        }
        if self.tool_log is not None:
            self.steps[name]["tool_runs"] = len(runs)
            self.steps[name]["tool_peak_mib"] = round(max((r for r, _ in runs), default=0.0), 1)
        return result


def _tool_wrappers(folder: Path) -> tuple[Path, Path] | None:
    """`ffmpeg` and `ffprobe` scripts that run the real tools under GNU time, appending
    each run's peak RSS (KiB) to a log: (folder to put first on PATH, log).

    Why: RUSAGE_CHILDREN's ru_maxrss is no measure of ffmpeg. Linux charges a child the
    resident size of the process it was forked from (exec records the old image's high
    water mark), so a 20 MiB ffmpeg spawned by a 300 MiB Python process reads 300 MiB.
    GNU time is small, so what it reports for its own child is ffmpeg's.
    """
    import shutil

    gnu_time = Path("/usr/bin/time")
    if not gnu_time.is_file():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "tools.log"
    for tool in ("ffmpeg", "ffprobe"):
        real = os.environ.get(f"CLYPAI_{tool.upper()}") or shutil.which(tool)
        if real is None:
            return None
        script = folder / tool
        script.write_text(f'#!/bin/sh\nexec {gnu_time} -a -o "{log}" -f "%M {tool}" {real} "$@"\n')
        script.chmod(0o755)
    return folder, log


# --- word error rate ------------------------------------------------------------------

_NUMBERS = "zero one two three four five six seven eight nine".split()
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalise(text: str) -> list[str]:
    """Lower case, no punctuation, hyphens split, digits spelt (GRID says "p two");
    as tests/clips/pipeline/test_transcribe.py does."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"(\d)", lambda m: f" {_NUMBERS[int(m.group(1))]} ", text)
    words = re.sub(r"[^a-z' ]+", " ", text).replace("'", "").split()
    return [_ABBREVIATIONS.get(word, word) for word in words]


def align(reference: list[str], hypothesis: list[str]) -> dict[str, float]:
    """Levenshtein alignment of words: substitutions, deletions, insertions, hits, WER."""
    n, m = len(reference), len(hypothesis)
    # One byte per cell for the way back: 0 match/substitution, 1 deletion, 2 insertion.
    back = [bytearray(m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        back[0][j] = 2
    previous = list(range(m + 1))
    for i in range(1, n + 1):
        ref = reference[i - 1]
        current = [i] + [0] * m
        row = back[i]
        row[0] = 1
        for j in range(1, m + 1):
            diagonal = previous[j - 1] + (ref != hypothesis[j - 1])
            deletion = previous[j] + 1
            insertion = current[j - 1] + 1
            if diagonal <= deletion and diagonal <= insertion:
                current[j] = diagonal
            elif deletion <= insertion:
                current[j], row[j] = deletion, 1
            else:
                current[j], row[j] = insertion, 2
        previous = current
    hits = subs = dels = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        step = back[i][j]
        if i > 0 and j > 0 and step == 0:
            if reference[i - 1] == hypothesis[j - 1]:
                hits += 1
            else:
                subs += 1
            i, j = i - 1, j - 1
        elif i > 0 and (step == 1 or j == 0):
            dels += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return {
        "reference_words": n,
        "hypothesis_words": m,
        "hits": hits,
        "substitutions": subs,
        "deletions": dels,
        "insertions": ins,
        "wer": round((subs + dels + ins) / n, 4) if n else 0.0,
        # Words both sides agree on, over the longer of the two.
        "agreement": round(hits / max(n, m), 4) if max(n, m) else 1.0,
    }


# --- the worker processes ---------------------------------------------------------------


def worker_analysis(args: argparse.Namespace) -> dict:
    """The five stages on `args.source`, in a fresh process; faster-whisper transcribes."""
    started = time.perf_counter()
    from clips.pipeline.audio import audio_features, extract_audio
    from clips.pipeline.probe import probe
    from clips.pipeline.scenes import detect_scenes
    from clips.pipeline.transcribe import get_engine, resolve_model, transcribe

    imports = time.perf_counter() - started
    tool_log = os.environ.get("CLYPAI_BENCH_TOOL_LOG")
    meter = Meter(Path(tool_log) if tool_log else None)
    one_time = Meter()
    one_time.run("prepare model", resolve_model, args.model)
    wav = Path(args.wav)
    engine = "faster-whisper"

    probed = meter.run("probe", probe, args.source)
    meter.run("audio extraction", extract_audio, args.source, wav)
    before_load = _rusage()["maxrss_self_mib"]
    meter.run("model load", get_engine, engine, args.model, "cpu")
    transcript = meter.run("transcription", transcribe, wav, engine=engine, model=args.model)
    shots = meter.run("scene detection", detect_scenes, args.source, probe=probed)
    features = meter.run("audio features", audio_features, wav)

    import faster_whisper

    video, audio = probed.video, probed.audio
    return {
        "imports_s": round(imports, 3),
        "one_time": one_time.steps,
        "steps": meter.steps,
        "maxrss_self_before_model_mib": round(before_load, 1),
        "probe": {
            "container": probed.container,
            "duration": probed.duration,
            "size": probed.size,
            "video": f"{video.codec} {video.width}x{video.height} {video.fps:g} fps",
            "audio": f"{audio.codec} {audio.sample_rate} Hz {audio.channels} ch" if audio else None,
        },
        "transcript": transcript.to_dict() | {"duration": transcript.duration},
        "shots": [[shot.start, shot.end] for shot in shots],
        "fps": video.fps,
        "features": {
            "windows": len(features.loudness),
            "window_s": features.window,
            "silences": len(features.silences),
            "silent_s": round(sum(end - start for start, end in features.silences), 2),
            "integrated_lufs": features.integrated_lufs,
            "peak_dbfs": features.peak_dbfs,
            "duration": features.duration,
        },
        "versions": {"faster-whisper": faster_whisper.__version__, **_ct2_info()},
    }


def _ct2_info() -> dict:
    import ctranslate2

    return {"ctranslate2": ctranslate2.__version__}


def worker_openai(args: argparse.Namespace) -> dict:
    """openai-whisper on the WAV the analysis extracted, same weights, fresh process."""
    started = time.perf_counter()
    import torch
    import whisper

    from clips.pipeline.transcribe import get_engine, prepare_openai_checkpoint, transcribe

    imports = time.perf_counter() - started
    engine = "openai-whisper"
    one_time = Meter()
    one_time.run("prepare model", prepare_openai_checkpoint, args.model)
    meter = Meter()
    before_load = _rusage()["maxrss_self_mib"]
    meter.run("model load", get_engine, engine, args.model, "cpu")
    transcript = meter.run("transcription", transcribe, args.wav, engine=engine, model=args.model)
    return {
        "imports_s": round(imports, 3),
        "one_time": one_time.steps,
        "steps": meter.steps,
        "maxrss_self_before_model_mib": round(before_load, 1),
        "transcript": transcript.to_dict() | {"duration": transcript.duration},
        "versions": {
            "openai-whisper": getattr(whisper, "__version__", "?"),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }


def _spawn(kind: str, args: argparse.Namespace, source: Path, wav: Path, out: Path) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--source",
        str(source),
        "--wav",
        str(wav),
        "--result",
        str(out),
        "--model",
        args.model,
    ]
    env = dict(os.environ)
    if kind == "analysis" and not args.no_tool_rss:
        wrappers = _tool_wrappers(out.parent / "bin")
        if wrappers:
            env["PATH"] = f"{wrappers[0]}{os.pathsep}{env.get('PATH', '')}"
            env["CLYPAI_BENCH_TOOL_LOG"] = str(wrappers[1])
            # clypai.lib.ffmpeg prefers these settings to PATH: point them at the wrappers.
            env["CLYPAI_FFMPEG"] = str(wrappers[0] / "ffmpeg")
            env["CLYPAI_FFPROBE"] = str(wrappers[0] / "ffprobe")
    busy_before, ours_before = _busy_cpu_seconds(), _rusage()["cpu_children"]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, check=False, env=env)
    wall = time.perf_counter() - started
    busy_after, ours_after = _busy_cpu_seconds(), _rusage()["cpu_children"]
    if completed.returncode != 0:
        raise SystemExit(f"the {kind} worker failed with exit status {completed.returncode}")
    result = json.loads(out.read_text())
    other = None
    if busy_before is not None and busy_after is not None:
        other_cpu = max(0.0, (busy_after - busy_before) - (ours_after - ours_before))
        other = {
            "wall_s": round(wall, 2),
            "other_cpu_s": round(other_cpu, 1),
            "other_cores": round(other_cpu / wall, 2),
        }
    result["other_load"] = other
    return result


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (not idle, not iowait), /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    # guest time is already counted in user time
    busy = sum(ticks[:8]) - idle
    return busy / os.sysconf("SC_CLK_TCK")


# --- the report -----------------------------------------------------------------------


def _ffmpeg_version() -> str:
    try:
        first = subprocess.run(
            ["ffmpeg", "-version"], capture_output=True, text=True, check=True
        ).stdout.split("\n", 1)[0]
    except (OSError, subprocess.CalledProcessError):
        return "?"
    parts = first.split()
    return parts[2] if len(parts) > 2 else first


def _cuts_found(shots: list[list[float]], cuts: list[float], fps: float) -> tuple[int, int]:
    """(known cuts found within CUT_TOLERANCE_FRAMES, detected cuts that match none)."""
    detected = [start for start, _end in shots[1:]]
    tolerance = CUT_TOLERANCE_FRAMES / (fps or 25.0) + 1e-6
    found = sum(1 for cut in cuts if any(abs(cut - d) <= tolerance for d in detected))
    extra = sum(1 for d in detected if not any(abs(cut - d) <= tolerance for cut in cuts))
    return found, extra


def summarise(args, built: dict, analysis: dict, openai: dict | None) -> dict:
    duration = analysis["probe"]["duration"]
    steps = analysis["steps"]
    stages = {}
    for name in STAGES:
        step = dict(steps[name])
        if name == "transcription":  # the model load is part of the stage's first run
            load = steps["model load"]
            for key in ("wall_s", "cpu_self_s", "cpu_children_s"):
                step[key] = round(step[key] + load[key], 3)
            step["model_load_s"] = load["wall_s"]
        step["rtf"] = round(step["wall_s"] / duration, 4)
        stages[name] = step
    total = sum(stage["wall_s"] for stage in stages.values())
    load_s = steps["model load"]["wall_s"]
    last = steps["audio features"]
    reference = normalise(built.get("reference") or "") if built.get("reference") else None

    def engine_row(result: dict, name: str) -> dict:
        transcript = result["transcript"]
        words = normalise(transcript["text"])
        row = {
            "engine": name,
            "model_load_s": result["steps"]["model load"]["wall_s"],
            "transcribe_s": result["steps"]["transcription"]["wall_s"],
            "cpu_s": round(
                result["steps"]["transcription"]["cpu_self_s"]
                + result["steps"]["transcription"]["cpu_children_s"],
                2,
            ),
            "rtf": round(result["steps"]["transcription"]["wall_s"] / duration, 4),
            "maxrss_mib": result["steps"]["transcription"]["maxrss_self_mib"],
            "maxrss_before_model_mib": result["maxrss_self_before_model_mib"],
            "words": len(words),
            "segments": len(transcript["segments"]),
            "language": transcript["language"],
        }
        if reference:
            row["vs_reference"] = align(reference, words)
        return row

    engines = {"faster-whisper": engine_row(analysis, "faster-whisper")}
    comparison = None
    if openai is not None:
        engines["openai-whisper"] = engine_row(openai, "openai-whisper")
        fw, ow = engines["faster-whisper"], engines["openai-whisper"]
        comparison = {
            "transcribe_ratio_openai_over_faster": round(
                ow["transcribe_s"] / fw["transcribe_s"], 3
            ),
            "load_ratio_openai_over_faster": round(ow["model_load_s"] / fw["model_load_s"], 3),
            "openai_vs_faster": align(
                normalise(analysis["transcript"]["text"]), normalise(openai["transcript"]["text"])
            ),
        }
    found, extra = _cuts_found(analysis["shots"], built.get("cuts") or [], analysis["fps"])
    return {
        "machine": {
            "cpus": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": platform.python_version(),
            "ffmpeg": _ffmpeg_version(),
            **analysis["versions"],
            **(openai["versions"] if openai else {}),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": args.model,
        "source": {
            **{k: v for k, v in built.items() if k not in ("reference", "cuts", "pieces")},
            "pieces": len(built.get("pieces") or []),
            "reference_words": len(reference) if reference else None,
            "known_cuts": len(built.get("cuts") or []),
            **analysis["probe"],
        },
        "stages": stages,
        "total_wall_s": round(total, 2),
        "rtf": round(total / duration, 4),
        "rtf_without_model_load": round((total - load_s) / duration, 4),
        "peak_memory": {
            "python_maxrss_mib": last["maxrss_self_mib"],
            "children_maxrss_mib": last["maxrss_children_mib"],
            "ffmpeg_own_peak_mib": max(
                (st.get("tool_peak_mib", 0.0) for st in stages.values()), default=0.0
            )
            if "tool_peak_mib" in last
            else None,
        },
        "other_load": {
            kind: result["other_load"]
            for kind, result in (("analysis", analysis), ("openai", openai))
            if result and result["other_load"]
        },
        "results": {
            "words": len(normalise(analysis["transcript"]["text"])),
            "language": analysis["transcript"]["language"],
            "shots": len(analysis["shots"]),
            "known_cuts_found": found,
            "extra_cuts": extra,
            **analysis["features"],
        },
        "one_time": {"faster-whisper " + k: v["wall_s"] for k, v in analysis["one_time"].items()}
        | (
            {"openai-whisper " + k: v["wall_s"] for k, v in openai["one_time"].items()}
            if openai
            else {}
        ),
        "imports_s": {
            "analysis": analysis["imports_s"],
            **({"openai": openai["imports_s"]} if openai else {}),
        },
        "engines": engines,
        "comparison": comparison,
    }


def print_report(s: dict) -> None:
    m, src = s["machine"], s["source"]
    versions = ", ".join(
        f"{k} {v}" for k, v in m.items() if k not in ("cpus", "torch_threads") and v is not None
    )
    if "torch_threads" in m:
        versions += f" ({m['torch_threads']} torch threads)"
    print(f"ClypAI analysis benchmark: {m['cpus']} CPUs; {versions}")
    print(f"command: {s['command']}")
    mb = src["size"] / 1e6
    built = (
        f"built in {src['build_seconds']:.1f} s (not counted)"
        if src.get("build_seconds") is not None
        else "given"
    )
    print(
        f"source ({built}): {src['duration']:.1f} s, {src['video']}, {src['audio']}, "
        f"{mb:.1f} MB, container {src['container']}"
    )
    if src.get("pieces"):
        print(
            f"  sound: {src['pieces']} real speech pieces, {src['speech_seconds']:.0f} s of them "
            f"({100 * src['speech_seconds'] / src['duration']:.0f}%), {src['reference_words']} "
            f"reference words; picture: GRID looped, {src['known_cuts']} known hard cuts"
        )
    print()
    print(
        f"{'stage':<20}{'wall s':>9}{'RTF':>9}{'CPU py s':>10}{'CPU ff s':>10}"
        f"{'SELF MiB':>10}{'CHILDREN MiB':>14}{'ffmpeg MiB':>12}"
    )
    for name, st in s["stages"].items():
        tool = st.get("tool_peak_mib")
        tool_text = f"{tool:.1f} ({st['tool_runs']})" if tool is not None else "-"
        print(
            f"{name:<20}{st['wall_s']:>9.2f}{st['rtf']:>9.4f}{st['cpu_self_s']:>10.2f}"
            f"{st['cpu_children_s']:>10.2f}{st['maxrss_self_mib']:>10.1f}"
            f"{st['maxrss_children_mib']:>14.1f}{tool_text:>12}"
        )
        if name == "transcription":
            print(f"{'  of which load':<20}{st['model_load_s']:>9.2f}")
    print(
        f"{'whole analysis':<20}{s['total_wall_s']:>9.2f}{s['rtf']:>9.4f}"
        f"   (RTF {s['rtf_without_model_load']:.4f} with the model already loaded)"
    )
    pm = s["peak_memory"]
    print(
        f"peak memory: Python process {pm['python_maxrss_mib']:.1f} MiB (RUSAGE_SELF ru_maxrss); "
        f"RUSAGE_CHILDREN ru_maxrss {pm['children_maxrss_mib']:.1f} MiB"
        + (
            f"; ffmpeg/ffprobe themselves at most {pm['ffmpeg_own_peak_mib']:.1f} MiB (GNU time)"
            if pm["ffmpeg_own_peak_mib"] is not None
            else ""
        )
    )
    print(
        "  SELF/CHILDREN: getrusage high-water marks read after each stage. CHILDREN is not\n"
        "  ffmpeg's size: Linux charges a child the RSS of the Python process it was forked\n"
        "  from. ffmpeg MiB: the largest ffmpeg/ffprobe run of the stage, measured by GNU time\n"
        "  (number of runs). CPU py/ff: CPU seconds of the Python process / of its children."
    )
    for kind, other in s["other_load"].items():
        print(
            f"other processes on this machine during the {kind} run: "
            f"{other['other_cpu_s']:.0f} CPU s in {other['wall_s']:.0f} s "
            f"({other['other_cores']:.2f} of {m['cpus']} cores busy with other work"
            + ("; timings inflated)" if other["other_cores"] > 0.25 else ")")
        )
    r = s["results"]
    print(
        f"found: {r['words']} words ({r['language']}); {r['shots']} shots, "
        f"{r['known_cuts_found']}/{src['known_cuts']} known cuts within "
        f"{CUT_TOLERANCE_FRAMES} frames, {r['extra_cuts']} extra; "
        f"{r['windows']} loudness windows of {r['window_s']} s, {r['silences']} silences "
        f"({r['silent_s']} s), {r['integrated_lufs']} LUFS"
    )
    one_time = ", ".join(f"{k} {v:.2f} s" for k, v in s["one_time"].items())
    imports = ", ".join(f"{k} {v:.2f} s" for k, v in s["imports_s"].items())
    print(f"not counted: one-time {one_time}; imports {imports}")

    print()
    engines = s["engines"]
    print(
        f"transcription side by side: same {src['duration']:.0f} s WAV, same {s['model']} weights "
        "(faster-whisper: CTranslate2 int8; openai-whisper: PyTorch fp32 from the converted "
        "float16 weights; both beam 5, Silero VAD, word timestamps)"
    )
    names = list(engines)
    print(
        f"{'':<24}"
        + "".join(f"{n:>17}" for n in names)
        + (f"{'openai/faster':>16}" if len(names) == 2 else "")
    )

    def row(label: str, key, fmt: str, ratio: bool = False) -> None:
        values = [key(engines[n]) for n in names]
        line = f"{label:<24}" + "".join(
            f"{format(v, fmt) if v is not None else '-':>17}" for v in values
        )
        if ratio and len(values) == 2 and values[0]:
            line += f"{values[1] / values[0]:>15.2f}x"
        print(line)

    row("model load s", lambda e: e["model_load_s"], ".2f", True)
    row("transcribe s", lambda e: e["transcribe_s"], ".2f", True)
    row("RTF", lambda e: e["rtf"], ".4f", True)
    row("CPU s", lambda e: e["cpu_s"], ".1f", True)
    row("peak RSS MiB", lambda e: e["maxrss_mib"], ".1f", True)
    row("  before model MiB", lambda e: e["maxrss_before_model_mib"], ".1f")
    row("words", lambda e: e["words"], "d")
    row("segments", lambda e: e["segments"], "d")
    if all("vs_reference" in e for e in engines.values()):
        row("WER vs known text", lambda e: e["vs_reference"]["wer"], ".4f")
        row(
            "  sub/del/ins",
            lambda e: "{substitutions}/{deletions}/{insertions}".format(**e["vs_reference"]),
            "s",
        )
    c = s["comparison"]
    if c:
        a = c["openai_vs_faster"]
        print(
            f"between the two: WER of openai-whisper against faster-whisper {a['wer']:.4f} "
            f"({a['substitutions']} sub, {a['deletions']} del, {a['insertions']} ins over "
            f"{a['reference_words']} words); word agreement {a['agreement']:.4f} "
            f"({a['hits']} words the same)"
        )
        print(
            f"openai-whisper took {c['transcribe_ratio_openai_over_faster']:.2f}x "
            f"faster-whisper's transcription time"
        )


# --- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="source length (default 10)")
    parser.add_argument("--model", default="tiny.en", help="tiny.en (default) or base")
    parser.add_argument("--skip-openai", action="store_true", help="no openai-whisper run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--height", type=int, default=720, help="picture height of the built source (0: GRID's 288)"
    )
    parser.add_argument("--source", help="benchmark this file instead of building one")
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR and keep the source, WAV and transcripts"
    )
    parser.add_argument(
        "--no-tool-rss",
        action="store_true",
        help="do not run ffmpeg/ffprobe under GNU time (their real peak memory)",
    )
    parser.add_argument("--worker", choices=("analysis", "openai"), help=argparse.SUPPRESS)
    parser.add_argument("--wav", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        work = worker_analysis if args.worker == "analysis" else worker_openai
        Path(args.result).write_text(json.dumps(work(args)))
        return 0

    say = (
        (lambda *a: print(*a, file=sys.stderr, flush=True))
        if args.json
        else (lambda *a: print(*a, flush=True))
    )
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        workspace = contextlib.nullcontext(str(Path(args.keep).resolve()))
    else:
        workspace = tempfile.TemporaryDirectory(prefix="clypai-bench-analysis-")
    with workspace as tmp:
        tmp_dir = Path(tmp)
        if args.source:
            source = Path(args.source).resolve()
            built = {"path": str(source), "build_seconds": None}
        else:
            from bench._media import build_talking_head

            seconds = round(args.minutes * 60, 3)
            say(f"building a {seconds:g} s source in {tmp_dir} ...")
            result = build_talking_head(tmp_dir / "source.mp4", seconds, height=args.height)
            source = result.path
            built = {
                "path": str(source),
                "build_seconds": result.build_seconds,
                "speech_seconds": result.speech_seconds,
                "reference": result.reference,
                "pieces": result.pieces,
                "cuts": result.cuts,
            }
        wav = tmp_dir / "audio.wav"
        say("analysing (probe, audio, transcription, scenes, audio features) ...")
        analysis = _spawn("analysis", args, source, wav, tmp_dir / "analysis.json")
        openai = None
        if not args.skip_openai:
            say("transcribing the same audio with openai-whisper ...")
            openai = _spawn("openai", args, source, wav, tmp_dir / "openai.json")
        summary = summarise(args, built, analysis, openai)
        if args.keep:  # the transcripts are in analysis.json and openai.json
            (tmp_dir / "built.json").write_text(json.dumps(built, indent=1))
            (tmp_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print()
        print_report(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
