"""clips.pipeline.captions: chunking rules on hand-made words, SRT, WebVTT and ASS."""

from __future__ import annotations

import re

import pytest

from clips.pipeline.captions import (
    SAFE_ZONES,
    ass_color,
    caption_chunks,
    default_font_file,
    font_family,
    fonts_dir,
    to_ass,
    to_srt,
    to_vtt,
)
from clips.pipeline.transcribe import Word


def _words(text: str, start: float = 0.0, step: float = 0.3, length: float = 0.25):
    out = []
    t = start
    for token in text.split():
        out.append((token, round(t, 3), round(t + length, 3)))
        t += step
    return out


def test_a_chunk_never_crosses_a_sentence_end():
    words = _words("We shipped it. Then everyone went home early.")

    chunks = caption_chunks(words)

    texts = [c.text.replace("\n", " ") for c in chunks]
    assert texts[0] == "We shipped it."
    assert all(not re.search(r"[.!?] \S", text) for text in texts)
    assert " ".join(texts) == "We shipped it. Then everyone went home early."


def test_chunks_hold_a_few_words_on_at_most_two_lines():
    words = _words(
        "the quick brown fox jumps over the lazy dog and keeps running across the wide "
        "green field without stopping once"
    )

    chunks = caption_chunks(words, max_words=5, max_chars=18)

    assert len(chunks) >= 4
    for chunk in chunks:
        assert 1 <= len(chunk.words) <= 5
        lines = chunk.text.split("\n")
        assert len(lines) <= 2
        assert all(len(line) <= 18 for line in lines)


def test_a_sentence_s_last_word_is_not_left_alone():
    words = _words("Hello world, this is a test.")

    chunks = caption_chunks(words, max_words=5, max_chars=18)

    assert [c.text.replace("\n", " ") for c in chunks] == ["Hello world, this is a test."]


def test_a_pause_ends_a_chunk_and_it_is_shown_until_the_next_one_or_the_pause():
    words = [
        ("one", 0.0, 0.3),
        ("two", 0.35, 0.6),
        ("three", 2.0, 2.3),  # a 1.4 s pause before it
        ("four", 2.35, 2.6),
    ]

    chunks = caption_chunks(words, pause=0.6, linger=0.3, max_words=5)

    assert [c.text for c in chunks] == ["one two", "three four"]
    assert chunks[0].start == 0.0
    assert chunks[0].end == pytest.approx(0.9)  # last word's end + linger, not into the pause
    assert chunks[1].start == 2.0


def test_back_to_back_chunks_touch():
    words = _words("alpha beta gamma delta epsilon zeta eta theta", step=0.3)

    chunks = caption_chunks(words, max_words=3)

    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.end == after.start


def test_only_the_clip_s_words_count_and_times_are_relative_to_the_clip():
    words = [
        ("before", 9.0, 9.4),
        ("inside", 10.2, 10.6),
        ("also", 10.7, 11.0),
        ("after", 12.1, 12.5),
    ]

    chunks = caption_chunks(words, start=10.0, end=12.0)

    assert [w.text for c in chunks for w in c.words] == ["inside", "also"]
    assert chunks[0].start == pytest.approx(0.2)
    assert chunks[-1].end <= 2.0


def test_it_takes_transcript_words_and_dicts():
    words = [Word("Hi", 0.0, 0.2, 0.9), {"word": " there.", "start": 0.25, "end": 0.5}]

    chunks = caption_chunks(words)

    assert chunks[0].text == "Hi there."


def test_srt_is_numbered_cues_with_comma_milliseconds():
    chunks = caption_chunks(_words("One two three. Four five six seven eight nine ten."))

    srt = to_srt(chunks)

    blocks = srt.strip().split("\n\n")
    assert len(blocks) == len(chunks)
    for number, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        assert lines[0] == str(number)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
        assert 1 <= len(lines[2:]) <= 2
    assert "00:00:00,000 --> 00:00:00,900" in srt


def test_vtt_has_its_header_dot_milliseconds_and_escapes():
    chunks = caption_chunks([("a<b", 3661.5, 3661.8), ("&c", 3661.85, 3662.0)])

    vtt = to_vtt(chunks)

    assert vtt.startswith("WEBVTT\n\n")
    assert "01:01:01.500 --> 01:01:02.300" in vtt
    assert "a&lt;b &amp;c" in vtt


def test_ass_has_one_event_per_word_with_the_current_word_highlighted():
    chunks = caption_chunks(_words("Keep the speaker in frame."))
    style = {"color": "#FFFFFF", "highlightColor": "#00FF00", "uppercase": True}

    ass = to_ass(chunks, width=1080, height=1920, style=style)

    events = [line for line in ass.splitlines() if line.startswith("Dialogue:")]
    assert len(events) == 5
    assert "PlayResX: 1080" in ass and "PlayResY: 1920" in ass
    green = ass_color("#00FF00")
    assert green == "&H0000FF00"
    for event, word in zip(events, ["KEEP", "THE", "SPEAKER", "IN", "FRAME."], strict=True):
        assert f"{{\\1c{green}}}{word}{{" in event
    # The first event starts with the chunk; each ends where the next word starts.
    assert events[0].split(",")[1] == "0:00:00.00"
    assert events[0].split(",")[2] == events[1].split(",")[1]


def test_ass_position_stays_inside_the_platform_safe_zone():
    chunks = caption_chunks(_words("Hello there."))

    bottom = to_ass(
        chunks, width=1080, height=1920, style={"position": "bottom"}, platform="tiktok"
    )
    top = to_ass(chunks, width=1080, height=1920, style={"position": "top", "box": True})

    style_line = next(line for line in bottom.splitlines() if line.startswith("Style:")).split(",")
    assert style_line[18] == "2"  # alignment: bottom centre
    assert int(style_line[21]) == round(SAFE_ZONES["tiktok"]["bottom"] * 1920)
    assert int(style_line[20]) == round(SAFE_ZONES["tiktok"]["right"] * 1080)
    top_line = next(line for line in top.splitlines() if line.startswith("Style:")).split(",")
    assert top_line[18] == "8" and top_line[15] == "3"  # top centre, opaque box


def test_the_default_font_ships_on_this_machine_and_a_font_file_names_its_family():
    font = default_font_file()

    assert font is not None and font.is_file()
    assert fonts_dir(None) == str(font.parent)
    assert font_family({"font": str(font)}) == "DejaVu Sans"
    assert font_family({"font": "DejaVu Serif"}) == "DejaVu Serif"
    with pytest.raises(ValueError):
        font_family({"font": "/no/such/font.ttf"})


def test_ass_text_cannot_inject_override_tags():
    chunks = caption_chunks([("{\\fs200}big", 0.0, 0.5)])

    ass = to_ass(chunks, width=480, height=854, highlight=False)

    event = next(line for line in ass.splitlines() if line.startswith("Dialogue:"))
    assert "{\\fs200}" not in event and "(/fs200)big" in event
