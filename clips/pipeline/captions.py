"""Captions of a clip: word-timed chunks, SRT, WebVTT and an ASS script for burn-in.

`caption_chunks(words, start=, end=)` groups the transcript's words inside the clip into
caption chunks, times relative to the clip's start:

- a few words each (`max_words`), on at most `max_lines` lines of `max_chars` characters;
- never across a sentence end, nor across a pause (`pause` seconds without a word);
- a chunk is shown until the next begins, or, when a pause follows, until its last word
  ends (plus `linger`, never into the next chunk).

`to_srt(chunks)` and `to_vtt(chunks)` write the subtitle files. `to_ass(chunks, width=,
height=, style=)` writes an ASS script for libass (ffmpeg's `ass=` filter draws it: DESIGN.md
measured that ffmpeg's filters do the pixels faster than Python): one event per word, the
whole chunk shown with that word in the highlight colour, so libass renders each chunk's
lines once per word rather than per frame. The caption style is the brand kit's:

    {"font": "DejaVu Sans" or "/path/to/font.ttf", "size": 64 (pixels on a 1080-wide frame),
     "color": "#FFFFFF", "highlightColor": "#FFD400", "outlineColor": "#000000",
     "box": False (an opaque box behind the text instead of an outline),
     "boxColor": "#000000", "outline": 4 (pixels on a 1080-wide frame),
     "position": "bottom" | "middle" | "top", "uppercase": False, "bold": True}

The text stays inside the platform's safe zone (`SAFE_ZONES`: what TikTok, Reels and
Shorts cover with their own buttons and captions). Fonts are never downloaded: a family
name goes to fontconfig, a file to libass through `fonts_dir(style)`, and the default is
DejaVu Sans Bold, which ships inside matplotlib's wheel (as do the other `CAPTION_FONTS`,
the only families a brand kit may name besides its own uploaded font). A family name
that could break out of the ASS style line (`SAFE_FONT_FAMILY`) is never written. No side effects but `write_ass`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Where a platform's own interface covers a vertical video, as shares of the frame.
SAFE_ZONES: dict[str, dict[str, float]] = {
    "default": {"top": 0.12, "bottom": 0.22, "left": 0.08, "right": 0.08},
    "tiktok": {"top": 0.13, "bottom": 0.24, "left": 0.06, "right": 0.14},
    "instagram": {"top": 0.12, "bottom": 0.22, "left": 0.06, "right": 0.12},
    "youtube": {"top": 0.10, "bottom": 0.20, "left": 0.06, "right": 0.12},
    "twitter": {"top": 0.08, "bottom": 0.12, "left": 0.06, "right": 0.06},
    "linkedin": {"top": 0.08, "bottom": 0.12, "left": 0.06, "right": 0.06},
}

DEFAULT_STYLE: dict[str, Any] = {
    "font": None,  # DejaVu Sans Bold
    "size": 64,
    "color": "#FFFFFF",
    "highlightColor": "#FFD400",
    "outlineColor": "#000000",
    "box": False,
    "boxColor": "#000000",
    "outline": 4,
    "position": "bottom",
    "uppercase": False,
    "bold": True,
}

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "e.g.", "i.e."}


@dataclass
class CaptionWord:
    text: str
    start: float  # seconds from the clip's start
    end: float


@dataclass
class CaptionChunk:
    start: float  # seconds from the clip's start
    end: float
    words: list[CaptionWord]
    lines: list[int] = field(default_factory=list)  # how many words each line holds

    @property
    def text(self) -> str:
        return "\n".join(" ".join(w.text for w in line) for line in self.line_words())

    def line_words(self) -> list[list[CaptionWord]]:
        counts = self.lines or [len(self.words)]
        out, index = [], 0
        for count in counts:
            out.append(self.words[index : index + count])
            index += count
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "lines": self.lines,
            "words": [{"text": w.text, "start": w.start, "end": w.end} for w in self.words],
        }


def caption_chunks(
    words: Iterable[Any],
    *,
    start: float = 0.0,
    end: float | None = None,
    max_words: int = 5,
    max_chars: int = 18,
    max_lines: int = 2,
    max_duration: float = 3.0,
    pause: float = 0.6,
    linger: float = 0.3,
) -> list[CaptionChunk]:
    """Caption chunks of the words inside the clip [`start`, `end`] (source seconds).

    `words`: `transcribe.Word`s, dicts with word/text, start, end, or (text, start, end)
    tuples, in source seconds. A word belongs to the clip when its middle does; its times
    are clipped to the clip. Returned times are relative to `start`.
    """
    clip_words = _clip_words(words, start, end)
    clip_length = (end - start) if end is not None else None
    groups: list[list[CaptionWord]] = []
    current: list[CaptionWord] = []
    for index, word in enumerate(clip_words):
        if current and _breaks_before(
            current, word, max_words, max_chars, max_lines, max_duration, pause
        ):
            groups.append(current)
            current = []
        current.append(word)
        if index == len(clip_words) - 1:
            groups.append(current)

    chunks = []
    for index, group in enumerate(groups):
        chunk_start = group[0].start
        last_end = group[-1].end
        if index + 1 < len(groups):
            following = groups[index + 1][0].start
            chunk_end = (
                following if following - last_end <= pause else min(following, last_end + linger)
            )
        else:
            chunk_end = last_end + linger
            if clip_length is not None:
                chunk_end = min(chunk_end, clip_length)
        lines = _layout(group, max_chars) or [len(group)]
        chunks.append(
            CaptionChunk(
                start=round(chunk_start, 3),
                end=round(max(chunk_end, chunk_start + 0.05), 3),
                words=group,
                lines=lines,
            )
        )
    return chunks


def _breaks_before(
    current: list[CaptionWord],
    word: CaptionWord,
    max_words: int,
    max_chars: int,
    max_lines: int,
    max_duration: float,
    pause: float,
) -> bool:
    """Whether `word` starts a new chunk after the words of `current`."""
    if _is_sentence_end(current[-1].text) or word.start - current[-1].end > pause:
        return True
    if word.end - current[0].start > max_duration:
        return True
    lines = _layout(current + [word], max_chars)
    if lines is None or len(lines) > max_lines:
        return True
    if len(current) < max_words:
        return False
    # One word over: a sentence's last word joins its chunk rather than stand alone.
    return not (len(current) == max_words and _is_sentence_end(word.text))


def _clip_words(words: Iterable[Any], start: float, end: float | None) -> list[CaptionWord]:
    out = []
    for word in words:
        if isinstance(word, (tuple, list)):
            text, w_start, w_end = word[0], word[1], word[2]
        elif isinstance(word, dict):
            text = word.get("word", word.get("text", ""))
            w_start, w_end = word.get("start"), word.get("end")
        else:
            text, w_start, w_end = word.word, word.start, word.end
        text = " ".join(str(text).split())
        if not text or w_start is None or w_end is None:
            continue
        w_start, w_end = float(w_start), max(float(w_start), float(w_end))
        middle = (w_start + w_end) / 2
        if middle < start or (end is not None and middle >= end):
            continue
        clipped_end = w_end if end is None else min(w_end, end)
        out.append(
            CaptionWord(text, round(max(w_start, start) - start, 3), round(clipped_end - start, 3))
        )
    out.sort(key=lambda w: w.start)
    return out


def _is_sentence_end(text: str) -> bool:
    return bool(_SENTENCE_END.search(text)) and text.lower() not in _ABBREVIATIONS


def _layout(words: Sequence[CaptionWord], max_chars: int) -> list[int] | None:
    """Words per line: one line when it fits, else the most even split into two or more
    lines of at most `max_chars`; None when one word alone is too long to share a line
    (it then stands in a chunk of its own)."""
    lengths = [len(w.text) for w in words]
    if sum(lengths) + len(lengths) - 1 <= max_chars:
        return [len(words)]
    if len(words) > 1 and max(lengths) > max_chars:
        return None
    best: list[int] | None = None
    best_width = None
    for cut in range(1, len(words)):
        first = sum(lengths[:cut]) + cut - 1
        second = sum(lengths[cut:]) + len(lengths) - cut - 1
        if first <= max_chars and second <= max_chars:
            width = max(first, second)
            if best_width is None or width < best_width:
                best, best_width = [cut, len(words) - cut], width
    if best is None:  # more than two lines' worth: greedy, the caller splits the chunk
        best, line = [], 0
        for length in lengths:
            if line and line + 1 + length > max_chars:
                best.append(0)
                line = 0
            if not best:
                best.append(0)
            best[-1] += 1
            line = length if line == 0 else line + 1 + length
    return best


# --- SRT and WebVTT ---------------------------------------------------------------------


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(chunks: Sequence[CaptionChunk]) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line after each."""
    blocks = []
    for number, chunk in enumerate(chunks, start=1):
        blocks.append(
            f"{number}\n{_timestamp(chunk.start, ',')} --> {_timestamp(chunk.end, ',')}\n"
            f"{chunk.text}\n"
        )
    return "\n".join(blocks)


def to_vtt(chunks: Sequence[CaptionChunk]) -> str:
    """WebVTT: the `WEBVTT` header, then cues with `HH:MM:SS.mmm` times."""
    blocks = ["WEBVTT\n"]
    for chunk in chunks:
        text = chunk.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_timestamp(chunk.start, '.')} --> {_timestamp(chunk.end, '.')}\n{text}\n")
    return "\n".join(blocks)


# --- ASS for burn-in --------------------------------------------------------------------


def caption_style(style: dict[str, Any] | None = None) -> dict[str, Any]:
    """The brand kit's style over the defaults; unknown keys are kept, None values ignored."""
    merged = dict(DEFAULT_STYLE)
    for key, value in (style or {}).items():
        if value is not None:
            merged[key] = value
    if merged["position"] not in ("top", "middle", "bottom"):
        raise ValueError(f"unknown caption position {merged['position']!r}: top, middle or bottom")
    return merged


# The caption fonts every install has (they ship inside matplotlib's wheel): the family
# a brand kit names, and its bold face's file. Nothing else is a caption font, but a
# brand kit's own uploaded file.
CAPTION_FONTS: dict[str, str] = {
    "DejaVu Sans": "DejaVuSans-Bold.ttf",
    "DejaVu Serif": "DejaVuSerif-Bold.ttf",
    "DejaVu Sans Mono": "DejaVuSansMono-Bold.ttf",
}
DEFAULT_FONT_FAMILY = "DejaVu Sans"
# What a family name may hold to be written into an ASS style line, whose fields are
# separated by commas and whose lines end at a newline.
SAFE_FONT_FAMILY = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._'&+-]{0,99}")


def caption_font_file(family: str) -> Path | None:
    """The file of a known caption font (`CAPTION_FONTS`), None for any other name."""
    name = CAPTION_FONTS.get(family) if isinstance(family, str) else None
    return _shipped_font(name) if name else None


@lru_cache(maxsize=8)
def _shipped_font(name: str) -> Path | None:
    """A font file from matplotlib's wheel, else the system's DejaVu folder."""
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
        if path.is_file():
            return path
    except ImportError:
        pass
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu"):
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


def default_font_file() -> Path | None:
    """DejaVu Sans Bold: from matplotlib's wheel, else the system's."""
    return caption_font_file(DEFAULT_FONT_FAMILY)


def font_file(style: dict[str, Any] | None) -> Path | None:
    """The font file the style names, or the default font when it names a family that is
    not a file (fontconfig then finds the family, or libass its fallback)."""
    font = caption_style(style).get("font")
    if font and os.path.sep in str(font):
        path = Path(font)
        if not path.is_file():
            raise ValueError(f"caption font file not found: {font}")
        return path
    if font:
        return None
    return default_font_file()


def fonts_dir(style: dict[str, Any] | None) -> str | None:
    """The folder for the `ass` filter's `fontsdir` option (None: fontconfig's fonts)."""
    path = font_file(style)
    return str(path.parent) if path else None


def font_family(style: dict[str, Any] | None) -> str:
    """The family name libass should ask for. ValueError when it could break out of the
    ASS style line it goes into (a comma, a newline, a brace): never written."""
    font = caption_style(style).get("font")
    path = font_file(style)
    if path is not None:
        from PIL import ImageFont

        family = ImageFont.truetype(str(path), 12).getname()[0] or ""
    else:
        family = str(font)
    if not SAFE_FONT_FAMILY.fullmatch(family):
        raise ValueError(f"caption font family {family!r} cannot go into an ASS script")
    return family


def ass_color(value: str, alpha: int = 0) -> str:
    """`#RRGGBB` (or `#RGB`) as ASS's `&HAABBGGRR`; alpha 0 is opaque."""
    text = value.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", text):
        raise ValueError(f"not a colour: {value!r} (#RRGGBB)")
    red, green, blue = text[0:2], text[2:4], text[4:6]
    return f"&H{alpha:02X}{blue}{green}{red}".upper()


def _ass_time(seconds: float) -> str:
    centis = max(0, round(seconds * 100))
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6000)
    secs, centis = divmod(centis, 100)
    return f"{hours}:{minutes:02d}:{secs:02d}.{centis:02d}"


def _ass_text(text: str) -> str:
    # ASS has no escape for braces (override blocks) and reads backslashes as commands.
    return text.replace("\\", "/").replace("{", "(").replace("}", ")")


def to_ass(
    chunks: Sequence[CaptionChunk],
    *,
    width: int,
    height: int,
    style: dict[str, Any] | None = None,
    platform: str = "default",
    highlight: bool = True,
) -> str:
    """An ASS script sized `width` x `height` (the rendered frame): one event per word,
    the chunk's lines with that word in `highlightColor` (or one event per chunk when
    `highlight` is false)."""
    s = caption_style(style)
    zone = SAFE_ZONES.get(platform, SAFE_ZONES["default"])
    scale = width / 1080
    size = max(8, round(float(s["size"]) * scale))
    outline = max(0.0, float(s.get("outline", 4)) * scale)
    box = bool(s.get("box"))
    alignment = {"bottom": 2, "middle": 5, "top": 8}[s["position"]]
    margin_v = {
        "bottom": round(zone["bottom"] * height),
        "middle": 0,
        "top": round(zone["top"] * height),
    }[s["position"]]
    margin_l, margin_r = round(zone["left"] * width), round(zone["right"] * width)
    primary = ass_color(s["color"])
    highlight_color = ass_color(s["highlightColor"])
    # BorderStyle 3 draws an opaque box in the outline colour; 1 an outline and a shadow.
    border_style = 3 if box else 1
    outline_colour = ass_color(s["boxColor"] if box else s["outlineColor"])
    back = ass_color(s["boxColor"] if box else s["outlineColor"], alpha=0x80)
    bold = -1 if s.get("bold", True) else 0
    shadow = 0 if box else round(1.5 * scale, 2)
    padding = round(size * 0.18, 1) if box else outline
    header = (
        "[Script Info]\n"
        "; Written by ClypAI (clips/pipeline/captions.py)\n"
        "ScriptType: v4.00+\n"
        f"PlayResX: {width}\n"
        f"PlayResY: {height}\n"
        "WrapStyle: 2\n"
        "ScaledBorderAndShadow: yes\n"
        "YCbCr Matrix: TV.709\n"
        "\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Caption,{font_family(style)},{size},{primary},{highlight_color},"
        f"{outline_colour},{back},{bold},0,0,0,100,100,0,0,{border_style},{padding},{shadow},"
        f"{alignment},{margin_l},{margin_r},{margin_v},1\n"
        "\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    events = []
    upper = bool(s.get("uppercase"))

    def word_text(word: CaptionWord) -> str:
        return _ass_text(word.text.upper() if upper else word.text)

    for chunk in chunks:
        lines = chunk.line_words()
        if not highlight:
            text = r"\N".join(" ".join(word_text(w) for w in line) for line in lines)
            events.append(_event(chunk.start, chunk.end, text))
            continue
        for index, current in enumerate(chunk.words):
            begin = chunk.start if index == 0 else current.start
            finish = chunk.words[index + 1].start if index + 1 < len(chunk.words) else chunk.end
            if finish - begin < 0.01:
                continue
            parts = []
            for line in lines:
                shown = []
                for word in line:
                    if word is current:
                        shown.append(f"{{\\1c{highlight_color}}}{word_text(word)}{{\\1c{primary}}}")
                    else:
                        shown.append(word_text(word))
                parts.append(" ".join(shown))
            events.append(_event(begin, finish, r"\N".join(parts)))
    return header + "".join(events)


def _event(start: float, end: float, text: str) -> str:
    return f"Dialogue: 0,{_ass_time(start)},{_ass_time(end)},Caption,,0,0,0,,{text}\n"


def write_ass(
    path: str | os.PathLike[str],
    chunks: Sequence[CaptionChunk],
    *,
    width: int,
    height: int,
    style: dict[str, Any] | None = None,
    platform: str = "default",
    highlight: bool = True,
) -> Path:
    """`to_ass(...)` written to `path` (UTF-8); returns the path."""
    target = Path(path)
    target.write_text(
        to_ass(
            chunks, width=width, height=height, style=style, platform=platform, highlight=highlight
        ),
        encoding="utf-8",
    )
    return target
