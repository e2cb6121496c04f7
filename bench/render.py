"""Rendering benchmark: a 60-second 1080p clip to 1080x1920 with word-highlight captions.

Builds a 60 s 1920x1080 source at run time in a temporary folder (two-speakers-dev.mp4
from ../shared/media looped with ffmpeg's stream copy; nothing is copied into the
project), then times each step of the clip pipeline on it and prints:

- faces: `detect_faces` on the whole source (the 640x360 analysis decode);
- crop path: `crop_path` (who speaks, dead zone, cuts), from those faces and loudness;
- captions: the speakers' GRID sentences as words (see `words_for`), chunked and written
  as ASS (one event per word);
- render: `render_clip` (moviepy) to 1080x1920, x264 veryfast crf 23, AAC: wall time,
  frames per second, peak memory (this process and its largest child);
- the reference: one ffmpeg command doing the same cut, moving crop (the same crop
  expressions), scale, subtitle burn and audio fades, in the same run, and the ratio of
  the render to it (the target in issue 5 is at most 1.5; printed as it is);
- a 30 s preview (480x854, veryfast) for comparison.

Usage: .venv/bin/python bench/render.py [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEDIA = ROOT.parent / "shared" / "media" / "talking_head"
ORIGINAL = MEDIA / "two-speakers-dev.mp4"
SECONDS = 60.0


def build_source(folder: Path) -> Path:
    """60 s of two-speakers-dev.mp4 (24 s, 1080p25, H.264/AAC), looped by stream copy."""
    target = folder / "source-60s.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "2", "-i", str(ORIGINAL),
         "-t", f"{SECONDS:.0f}", "-c", "copy", str(target)],
        check=True,
    )  # fmt: skip
    return target


def words_for(source_seconds: float) -> list[tuple[str, float, float]]:
    """The GRID sentences the two speakers say (bbaf2n, brbk7n), six words a 3 s turn as
    GRID speaks them, evenly timed: about two words a second, so a word-highlight
    caption event every half second (DESIGN.md's run had 121 in 60 s). tiny.en does not
    transcribe these clips well enough to time captions by (it runs words together)."""
    sentences = ["Bin blue at F two now.", "Bin red by K seven now."]
    words = []
    turn = 0
    while (turn + 1) * 3.0 <= source_seconds:
        tokens = sentences[turn % 2].split()
        for k, token in enumerate(tokens):
            start = turn * 3.0 + 0.3 + k * 0.4
            words.append((token, round(start, 3), round(start + 0.35, 3)))
        turn += 1
    return words


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), user + system: less
    sensitive than wall time to other work on the machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, child


def reference(source: Path, out: Path, crop, ass: Path, fonts: str | None, fps: int) -> float:
    """One ffmpeg command: the same cut, crop path, upscale, captions, fades and codecs."""
    from clips.pipeline.render.reader import _axis_expression

    cw, ch = crop.crop_size
    x = _axis_expression(crop.keyframes, "x", 0.0, SECONDS)
    y = _axis_expression(crop.keyframes, "y", 0.0, SECONDS)
    ass_filter = f"ass=filename={ass}" + (f":fontsdir={fonts}" if fonts else "")
    vf = (
        f"fps={fps},crop={cw}:{ch}:'{x}':'{y}',scale=1080:1920:flags=bicubic,"
        f"{ass_filter},format=yuv420p"
    )
    af = f"afade=t=in:st=0:d=0.05,afade=t=out:st={SECONDS - 0.05:.2f}:d=0.05"
    began = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "0", "-i", str(source),
         "-t", f"{SECONDS:.0f}", "-vf", vf, "-af", af, "-c:v", "libx264", "-preset", "veryfast",
         "-crf", "23", "-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-movflags", "+faststart",
         str(out)],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="render and reference runs (median)")
    parser.add_argument("--keep", type=Path, help="keep the outputs in this folder")
    args = parser.parse_args()

    from clips.pipeline.audio import audio_features, extract_audio
    from clips.pipeline.captions import caption_chunks, fonts_dir, write_ass
    from clips.pipeline.faces import detect_faces
    from clips.pipeline.probe import probe
    from clips.pipeline.reframe import crop_path
    from clips.pipeline.render import Captions, RenderSettings, render_clip

    folder = Path(tempfile.mkdtemp(prefix="clypai-bench-render-"))
    try:
        began = time.perf_counter()
        source = build_source(folder)
        info = probe(source)
        print(f"source: {info.video.display_width}x{info.video.display_height} "
              f"{info.video.codec} {info.video.fps:g} fps, {info.duration:.1f} s "
              f"(built in {time.perf_counter() - began:.1f} s); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip

        began = time.perf_counter()
        faces = detect_faces(source, probe=info)
        took = time.perf_counter() - began
        print(f"faces: {took:.2f} s ({took / info.duration:.3f}x real time), "
              f"{len(faces.frames)} samples, {len(faces.tracks)} tracks, {faces.detector}, "
              f"analysis {faces.analysis_size[0]}x{faces.analysis_size[1]} "
              f"at {faces.motion_fps:g} fps")  # fmt: skip

        began = time.perf_counter()
        wav = extract_audio(source, folder / "audio.wav")
        loud = audio_features(wav)
        path = crop_path(
            source_width=info.video.display_width,
            source_height=info.video.display_height,
            start=0.0,
            end=SECONDS,
            aspect="9:16",
            faces=faces,
            loudness=loud.loudness,
            loudness_window=loud.window,
        )
        took = time.perf_counter() - began
        layouts = sorted({s.layout for s in path.shots})
        print(f"crop path: {took:.2f} s (audio features included), {len(path.keyframes)} "
              f"keyframes, layouts {layouts}")  # fmt: skip

        words = words_for(SECONDS)
        began = time.perf_counter()
        chunks = caption_chunks(words, start=0.0, end=SECONDS)
        ass = write_ass(folder / "captions.ass", chunks, width=1080, height=1920)
        events = sum(1 for line in ass.read_text().splitlines() if line.startswith("Dialogue:"))
        print(f"captions: {len(words)} words, {len(chunks)} chunks, "
              f"{events} ASS events, {time.perf_counter() - began:.3f} s")  # fmt: skip
        fonts = fonts_dir(None)

        renders, references, render_cpu, reference_cpu = [], [], [], []
        fps = round(info.video.fps)
        for run in range(args.runs):
            out = folder / f"render-{run}.mp4"
            cpu = cpu_seconds()
            result = render_clip(
                source, out, start=0.0, end=SECONDS,
                settings=RenderSettings(width=1080, height=1920, preset="veryfast", crf=23),
                crop_path=path, captions=Captions(ass, fonts),
            )  # fmt: skip
            render_cpu.append(cpu_seconds() - cpu)
            renders.append(result.seconds)
            own, child = peak_mb()
            print(f"render {run + 1}: {result.seconds:.2f} s ({render_cpu[-1]:.1f} s CPU), "
                  f"{SECONDS * fps / result.seconds:.1f} frames/s, {result.width}x{result.height}, "
                  f"{result.duration:.3f} s, {result.size_bytes / 1e6:.1f} MB; peak memory "
                  f"{own:.0f} MB (python), {child:.0f} MB (largest ffmpeg)")  # fmt: skip
            cpu = cpu_seconds()
            seconds = reference(source, folder / f"reference-{run}.mp4", path, ass, fonts, fps)
            reference_cpu.append(cpu_seconds() - cpu)
            references.append(seconds)
            print(f"reference {run + 1}: {seconds:.2f} s ({reference_cpu[-1]:.1f} s CPU, one "
                  f"ffmpeg command); this pair's ratio {result.seconds / seconds:.2f}")  # fmt: skip

        render_s, reference_s = statistics.median(renders), statistics.median(references)
        print(f"RATIO render / ffmpeg: {render_s / reference_s:.2f} wall "
              f"(render {render_s:.2f} s, ffmpeg {reference_s:.2f} s, medians of {args.runs}; "
              f"target <= 1.5), {statistics.median(render_cpu) / statistics.median(reference_cpu):.2f} "
              f"CPU; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip

        from clips.platforms import preview_size

        width, height = preview_size("9:16")
        preview_chunks = caption_chunks(words, start=10.0, end=40.0)
        preview_ass = write_ass(folder / "preview.ass", preview_chunks, width=width, height=height)
        preview_path = crop_path(
            source_width=info.video.display_width, source_height=info.video.display_height,
            start=10.0, end=40.0, faces=faces, loudness=loud.loudness,
            loudness_window=loud.window,
        )  # fmt: skip
        preview = render_clip(
            source, folder / "preview.mp4", start=10.0, end=40.0,
            settings=RenderSettings(width=width, height=height, preset="veryfast", crf=28,
                                    audio_bitrate="96k"),
            crop_path=preview_path, captions=Captions(preview_ass, fonts),
        )  # fmt: skip
        print(
            f"preview: 30 s clip at {width}x{height} in {preview.seconds:.2f} s "
            f"({preview.seconds / 30:.3f}x real time), {preview.size_bytes / 1e6:.2f} MB"
        )
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("render-0.mp4", "reference-0.mp4", "preview.mp4", "captions.ass"):
                shutil.copyfile(folder / name, args.keep / name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
