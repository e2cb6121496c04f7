"""Clip selection on hand-made transcripts: sentences, snapping, each feature, scoring, titles
and the optional language model (against a real HTTP server on loopback)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from clips.pipeline import StageError
from clips.pipeline.llm import OpenAICompatibleLLM, llm_from_env
from clips.pipeline.select import (
    MiniLMEmbedder,
    SelectedClip,
    WindowScore,
    clean_title,
    hook_strength,
    opening_penalty,
    score_windows,
    select_clips,
    split_sentences,
    strong_boundaries,
    topic_depths,
    transcript_words,
)

# -- transcripts read aloud at a steady pace ------------------------------------------------


def spoken(sentences, *, start=0.0, word_s=0.35, gap_s=0.05, pause_s=0.8, speed=1.0):
    """A faster-whisper-shaped transcript of `sentences` (str, or (str, pause_after)), one
    segment per sentence, words with leading spaces. Returns (transcript, spans) where spans
    are each sentence's (first word start, last word end)."""
    segments, spans = [], []
    t = start
    for item in sentences:
        text, pause = (item, pause_s) if isinstance(item, str) else item
        words = []
        for token in text.split():
            w_end = t + word_s / speed
            words.append(
                {
                    "word": " " + token,
                    "start": round(t, 3),
                    "end": round(w_end, 3),
                    "probability": 0.9,
                }
            )
            t = w_end + gap_s / speed
        segments.append(
            {
                "start": words[0]["start"],
                "end": words[-1]["end"],
                "text": " " + text,
                "words": words,
            }
        )
        spans.append((words[0]["start"], words[-1]["end"]))
        t = words[-1]["end"] + pause
    transcript = {
        "language": "en",
        "text": " ".join(s["text"] for s in segments),
        "segments": segments,
    }
    return transcript, spans


PASTA = [
    "Fresh pasta needs only flour, eggs and a pinch of salt.",
    "Knead the dough for ten minutes until it feels smooth and elastic.",
    "Let the pasta dough rest under a bowl for half an hour.",
    "Roll the dough thin enough to see your hand through the sheet.",
    "Cut the sheets into ribbons and dust them with semolina flour.",
    "Boil the noodles in salted water for about two minutes.",
    "Save a cup of the starchy cooking water for the sauce.",
    "Toss the drained pasta with butter, parmesan and the saved water.",
]
TELESCOPES = [
    "The James Webb telescope orbits the sun far beyond the moon.",
    "Its golden mirror collects infrared light from the first galaxies.",
    "A huge sunshield keeps the instruments colder than deep space.",
    "Astronomers use the telescope to study the atmospheres of distant planets.",
    "Hubble still watches the sky in visible and ultraviolet light.",
    "Together the two observatories have mapped thousands of faraway galaxies.",
    "Radio telescopes on the ground listen to signals from black holes.",
    "The next great space telescope will hunt for Earth-like worlds.",
]
NEUTRAL = [
    "The committee reviewed the quarterly schedule for the office.",
    "The report lists the rooms booked for the autumn meetings.",
    "The office manager updated the calendar on the server.",
    "The printer on the second floor was moved near the stairs.",
    "The schedule for the kitchen cleaning rota stays the same.",
    "The visitors sign the book at the front desk on arrival.",
]


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def sentence_edges(spans):
    return {s for s, _ in spans}, {e for _, e in spans}


def overlaps(a: SelectedClip, b: SelectedClip) -> bool:
    return a.start < b.end and b.start < a.end


# -- sentences -------------------------------------------------------------------------------


def test_it_splits_sentences_on_terminal_punctuation_not_on_abbreviations():
    transcript, _ = spoken(
        ["Dr. Smith met Mr. Jones at noon.", "Did they agree?", "Nobody knows!"], pause_s=0.2
    )
    sentences = split_sentences(transcript_words(transcript))
    assert [s.text for s in sentences] == [
        "Dr. Smith met Mr. Jones at noon.",
        "Did they agree?",
        "Nobody knows!",
    ]
    assert all(s.complete for s in sentences)


def test_it_splits_unpunctuated_speech_on_pauses():
    transcript, spans = spoken(
        [
            ("so we went to the market", 0.9),
            ("they had fresh fish", 0.1),
            ("and bread", 1.0),
            ("it was fine", 0),
        ],
    )
    sentences = split_sentences(transcript_words(transcript))
    # 0.1 s is a breath, not a sentence end; 0.9 s and 1.0 s are
    assert [s.text for s in sentences] == [
        "so we went to the market",
        "they had fresh fish and bread",
        "it was fine",
    ]
    assert sentences[1].start == spans[1][0] and sentences[1].end == spans[2][1]


def test_it_splits_a_run_on_sentence_at_its_longest_pause():
    words = [f"word{k}" for k in range(40)]
    transcript, _ = spoken([(" ".join(words[:25]) + ",", 0.6), " ".join(words[25:]) + "."])
    # without the limit this is one 16-second sentence
    assert len(split_sentences(transcript_words(transcript), max_sentence_s=30)) == 1
    pieces = split_sentences(transcript_words(transcript), max_sentence_s=12)
    assert [s.word_count for s in pieces] == [25, 15]
    assert not pieces[0].complete and pieces[1].complete


def test_segments_without_word_timings_still_give_sentences():
    transcript = {
        "segments": [
            {"start": 0.0, "end": 4.0, "text": "First we heat the pan. Then we add oil."},
            {"start": 5.0, "end": 7.0, "text": "That is all."},
        ]
    }
    sentences = split_sentences(transcript_words(transcript))
    assert [s.text for s in sentences] == [
        "First we heat the pan.",
        "Then we add oil.",
        "That is all.",
    ]
    assert sentences[0].start == 0.0 and sentences[-1].end == 7.0


# -- candidates and snapping -------------------------------------------------------------------


def test_clip_edges_are_sentence_start_and_end_word_times(embedder):
    transcript, spans = spoken(PASTA + TELESCOPES)
    starts, ends = sentence_edges(spans)
    clips = select_clips(transcript, count=4, min_duration=10, max_duration=20, embedder=embedder)
    assert len(clips) == 4
    for clip in clips:
        assert clip.start in starts, clip
        assert clip.end in ends, clip
        assert 10 <= clip.duration <= 20
        assert clip.duration == pytest.approx(clip.end - clip.start, abs=1e-3)


def test_it_chooses_the_best_segment_inside_a_given_range(embedder):
    transcript, spans = spoken(PASTA + TELESCOPES)
    starts, ends = sentence_edges(spans)
    lo, hi = spans[3][0] - 0.3, spans[9][1] + 0.3
    clips = select_clips(
        transcript, count=1, start=lo, end=hi, min_duration=5, max_duration=60, embedder=embedder
    )
    assert len(clips) == 1
    assert lo <= clips[0].start and clips[0].end <= hi
    assert clips[0].start in starts and clips[0].end in ends
    # a range shorter than min_duration still gives the sentences inside it
    short = select_clips(
        transcript, count=1, start=spans[2][0], end=spans[2][1], min_duration=15, embedder=embedder
    )
    assert (short[0].start, short[0].end) == spans[2]


def test_cut_points_move_to_a_near_shot_cut_or_into_a_silence_but_never_into_a_word(embedder):
    transcript, spans = spoken(PASTA + TELESCOPES, pause_s=0.8)
    # a shot cut 0.3 s before every sentence; a silence in every pause after a sentence
    shots = [{"start": s - 0.3, "end": s + 3} for s, _ in spans[1:]]
    silences = [[e + 0.05, e + 0.75] for _, e in spans]
    audio = {"window": 0.5, "loudness": [-20.0] * 200, "silences": silences}
    clips = select_clips(
        transcript,
        shots=shots,
        audio=audio,
        count=3,
        min_duration=10,
        max_duration=20,
        embedder=embedder,
    )
    starts = {round(s - 0.3, 3) for s, _ in spans[1:]} | {spans[0][0]}
    ends = {round(e + 0.05 + 0.2, 3) for _, e in spans}  # 0.2 s into the silence, in the pause
    for clip in clips:
        assert round(clip.start, 3) in starts, clip
        assert round(clip.end, 3) in ends, clip

    # a shot cut that lies inside the previous sentence's last word is not taken
    inside_word = [{"start": e - 0.1, "end": e + 3} for _, e in spans]
    plain = select_clips(transcript, count=3, min_duration=10, max_duration=20, embedder=embedder)
    nudged = select_clips(
        transcript, shots=inside_word, count=3, min_duration=10, max_duration=20, embedder=embedder
    )
    assert [(c.start, c.end) for c in nudged] == [(c.start, c.end) for c in plain]


def test_returned_clips_do_not_overlap_and_come_best_first(embedder):
    transcript, _ = spoken(PASTA + TELESCOPES + NEUTRAL)
    clips = select_clips(transcript, count=6, min_duration=8, max_duration=16, embedder=embedder)
    assert len(clips) == 6
    for k, a in enumerate(clips):
        for b in clips[k + 1 :]:
            assert not overlaps(a, b), (a, b)
    assert [c.score for c in clips] == sorted((c.score for c in clips), reverse=True)


def test_a_repeated_passage_is_not_offered_twice(embedder):
    # the same story told twice; other material is there to choose instead
    transcript, _ = spoken(TELESCOPES[:4] + NEUTRAL + TELESCOPES[:4] + PASTA[:4])
    clips = select_clips(transcript, count=3, min_duration=10, max_duration=16, embedder=embedder)
    texts = [c.text for c in clips]
    assert len(set(texts)) == len(texts)
    telescope_clips = [c for c in clips if "telescope" in c.text]
    assert len(telescope_clips) <= 1


def test_a_clip_never_straddles_a_strong_topic_boundary(embedder):
    transcript, spans = spoken(PASTA + TELESCOPES)
    boundary = (spans[7][1] + spans[8][0]) / 2
    sentences = split_sentences(transcript_words(transcript))
    emb = embedder.encode([s.text for s in sentences])
    depth = topic_depths(emb)
    strong = strong_boundaries(depth, sentences)
    assert strong[7], depth.round(2)  # the gap between sentence 7 and 8
    assert int(np.argmax(depth)) == 7
    # long clips would fit across the boundary; none may cross it
    clips = select_clips(transcript, count=4, min_duration=10, max_duration=40, embedder=embedder)
    for clip in clips:
        assert clip.end <= boundary or clip.start >= boundary, clip


# -- features ---------------------------------------------------------------------------------


def test_hook_strength_favours_questions_numbers_direct_address_and_bold_claims():
    flat = hook_strength("The meeting was held in the small room.")[0]
    assert flat == 0.0
    score, kinds = hook_strength("Why do most people fail at this?")
    assert "question" in kinds and score > flat
    assert "number" in hook_strength("Three million people tried it last year.")[1]
    assert "direct address" in hook_strength("You have been doing this wrong.")[1]
    assert "bold claim" in hook_strength("This is the biggest mistake in cooking.")[1]
    gap_score, gap_kinds = hook_strength("Here's why nobody tells you the real reason.")
    assert "curiosity gap" in gap_kinds
    strongest = hook_strength("Why do you think 90% of startups make the worst mistake?")[0]
    assert strongest > score > flat


def test_opening_penalty_marks_lines_that_lean_on_what_came_before():
    assert opening_penalty("Coffee beans lose flavour within weeks.") == 0.0
    assert opening_penalty("There are three ways to brew it.") == 0.0
    for leaning in (
        "And so the beans go stale.",
        "That's why you grind fresh.",
        "But the water matters.",
    ):
        assert opening_penalty(leaning) >= 0.45, leaning
    assert opening_penalty("It tastes better that way.") >= 0.5
    assert opening_penalty("This is what happened next.") >= 0.5
    assert opening_penalty("And it was over.") > opening_penalty("And the crowd went home.")
    # "this morning" points at nothing before it
    assert opening_penalty("This morning I brewed a new roast.") < 0.3


def test_selection_avoids_openings_that_depend_on_earlier_sentences(embedder):
    leaning = [
        "And so it rises slowly in the warm kitchen overnight.",
        "That's why it needs a long and patient proof.",
        "But it still has to be shaped by hand.",
        "And then they bake it in a very hot oven.",
    ]
    standalone = [
        "Sourdough bread starts with a lively wild yeast starter.",
        "Bakers feed the starter with flour and water every day.",
        "A good loaf has an open crumb and a dark crust.",
        "Home bakers often use a cast iron pot for baking.",
    ]
    # alternate standalone and leaning lines, so every window has both kinds inside
    lines = [line for pair in zip(standalone, leaning, strict=True) for line in pair]
    transcript, spans = spoken(lines)
    clips = select_clips(transcript, count=3, min_duration=8, max_duration=14, embedder=embedder)
    standalone_starts = {spans[k][0] for k in range(0, len(lines), 2)}
    assert clips[0].start in standalone_starts
    assert clips[0].score_breakdown["self_contained"] >= 0.5
    assert not clips[0].text.startswith(("And", "That's", "But"))


def test_self_containedness_penalises_leaning_openings_and_thoughts_that_go_on(embedder):
    standalone = "The new telescope orbits the sun far beyond the moon."
    leaning = "And so it orbits the sun far beyond the moon."  # same length, leans back
    lines = [standalone, *TELESCOPES[1:3], *NEUTRAL[:2], leaning, *TELESCOPES[1:3]]
    lines += [
        "The crowd was waiting outside the hall.",
        "And then the lights went out.",
        "Does anyone know why the power failed?",
        "The museum reopened the next morning.",
    ]
    transcript, _ = spoken(lines)
    scores = score_windows(transcript, min_duration=1, max_duration=25, embedder=embedder)
    own, leans = window(scores, 0, 2), window(scores, 5, 7)
    assert own.raw["self_contained"] - leans.raw["self_contained"] >= 0.4
    assert own.normalised["self_contained"] > leans.normalised["self_contained"]
    # ending just before "and then ..." (the thought goes on) or on an open question costs
    plain = window(scores, 3, 3).raw["self_contained"]
    assert window(scores, 8, 8).raw["self_contained"] < plain
    assert (
        window(scores, 10, 10).raw["self_contained"] < window(scores, 11, 11).raw["self_contained"]
    )
    assert window(scores, 9, 9).raw["self_contained"] < plain  # "And then" opens it


def test_criteria_steers_the_top_clip_to_the_topic_it_names(embedder):
    transcript, spans = spoken(PASTA + TELESCOPES)
    boundary = (spans[7][1] + spans[8][0]) / 2
    kwargs = dict(count=2, min_duration=10, max_duration=20, embedder=embedder)
    space = select_clips(transcript, criteria="space telescopes and distant galaxies", **kwargs)
    assert space[0].start >= boundary
    assert space[0].score_breakdown["criteria"] == pytest.approx(1.0, abs=0.05)
    assert "match to" in space[0].reason
    cooking = select_clips(transcript, criteria="how to make homemade pasta", **kwargs)
    assert cooking[0].end <= boundary
    # without criteria there is no criteria feature
    assert "criteria" not in select_clips(transcript, **kwargs)[0].score_breakdown


def test_louder_delivery_raises_the_energy_feature(embedder):
    # the same lines twice: the second telling is louder, everything else is equal
    transcript, spans = spoken(NEUTRAL + NEUTRAL)
    half = (spans[5][1] + spans[6][0]) / 2
    window = 0.5
    loudness = [
        -38.0 if k * window < half else -14.0 for k in range(int(spans[-1][1] / window) + 2)
    ]
    clips = select_clips(
        transcript,
        audio={"window": window, "loudness": loudness, "silences": []},
        count=2,
        min_duration=8,
        max_duration=12,
        hook_detection=False,
        embedder=embedder,
    )
    loud = [c for c in clips if c.start >= half]
    quiet = [c for c in clips if c.end <= half]
    assert loud and clips[0] is loud[0]
    assert all(
        c.score_breakdown["energy"] > q.score_breakdown["energy"] for c in loud for q in quiet
    )


def window(scores, first: int, last: int) -> WindowScore:
    return next(w for w in scores if (w.first, w.last) == (first, last))


def test_faster_speech_raises_the_speech_rate_feature(embedder):
    slow, slow_spans = spoken(NEUTRAL[:3], speed=0.7)
    fast, _ = spoken(NEUTRAL[:3], speed=1.6, start=slow_spans[-1][1] + 0.8)
    transcript = {"segments": slow["segments"] + fast["segments"]}
    scores = score_windows(transcript, min_duration=3, max_duration=20, embedder=embedder)
    slow_w, fast_w = window(scores, 0, 2), window(scores, 3, 5)
    assert slow_w.text == fast_w.text
    assert fast_w.raw["speech_rate"] == pytest.approx(
        slow_w.raw["speech_rate"] * 1.6 / 0.7, rel=0.02
    )
    assert fast_w.normalised["speech_rate"] > slow_w.normalised["speech_rate"]
    assert fast_w.composite > slow_w.composite  # everything else is the same


def test_emotional_passages_score_higher_on_sentiment_and_get_a_label(embedder):
    happy = [
        "I absolutely love this amazing little cafe, it is wonderful!",
        "The staff are so kind and the cakes are fantastic.",
        "Honestly it made my whole week brilliant and happy.",
    ]
    sad = [
        "The service was terrible and the food was awful.",
        "I hated every minute and felt miserable and angry.",
        "It was the worst, most disappointing dinner ever.",
    ]
    transcript, spans = spoken(NEUTRAL[:3] + happy + NEUTRAL[3:] + sad)
    scores = score_windows(transcript, min_duration=3, max_duration=25, embedder=embedder)
    neutral_w, happy_w, sad_w = window(scores, 0, 2), window(scores, 3, 5), window(scores, 9, 11)
    assert happy_w.raw["sentiment"] > 0.5 and sad_w.raw["sentiment"] > 0.5
    assert neutral_w.raw["sentiment"] < 0.1
    assert happy_w.normalised["sentiment"] > neutral_w.normalised["sentiment"]
    assert sad_w.normalised["sentiment"] > neutral_w.normalised["sentiment"]

    labels = {}
    for first, last in ((0, 2), (3, 5), (9, 11)):
        clip = select_clips(
            transcript, start=spans[first][0], end=spans[last][1], count=1, embedder=embedder
        )[0]
        labels[first] = clip.sentiment
    assert labels == {0: "neutral", 3: "positive", 9: "negative"}


def test_keyword_dense_passages_score_higher_on_keyword_density(embedder):
    dense = [
        "Espresso extraction depends on espresso grind size and espresso dose.",
        "Espresso pressure, espresso temperature and espresso timing shape extraction.",
    ]
    loose = [
        "Well I think that you know it was kind of a thing for us.",
        "So we just sort of went along with it and that was that.",
    ]
    transcript, spans = spoken(loose + dense + loose)
    scores = score_windows(transcript, min_duration=3, max_duration=25, embedder=embedder)
    loose_w, dense_w = window(scores, 0, 1), window(scores, 2, 3)
    assert dense_w.raw["keyword_density"] > 2 * loose_w.raw["keyword_density"]
    assert dense_w.normalised["keyword_density"] > loose_w.normalised["keyword_density"]
    clip = select_clips(transcript, start=spans[2][0], end=spans[3][1], count=1, embedder=embedder)[
        0
    ]
    assert any("espresso" in topic for topic in clip.topics)


def test_coherent_windows_score_higher_on_coherence(embedder):
    mixed = [
        "Fresh pasta needs only flour, eggs and a pinch of salt.",
        "The printer on the second floor was moved near the stairs.",
        "Hubble still watches the sky in visible and ultraviolet light.",
    ]
    transcript, _ = spoken(mixed + TELESCOPES[:3])
    scores = score_windows(transcript, min_duration=3, max_duration=25, embedder=embedder)
    scattered, focused = window(scores, 0, 2), window(scores, 3, 5)
    assert focused.raw["coherence"] > scattered.raw["coherence"] + 0.1
    assert focused.normalised["coherence"] > scattered.normalised["coherence"]


def test_criteria_match_uses_the_best_and_the_mean_sentence(embedder):
    transcript, _ = spoken(NEUTRAL[:3] + [TELESCOPES[1]] + NEUTRAL[3:5] + TELESCOPES[:3])
    scores = score_windows(
        transcript,
        criteria="telescopes and galaxies",
        min_duration=8,
        max_duration=25,
        embedder=embedder,
    )
    none_w, one_w, all_w = window(scores, 0, 2), window(scores, 1, 3), window(scores, 6, 8)
    assert none_w.raw["criteria"] < one_w.raw["criteria"] < all_w.raw["criteria"]
    assert all_w.normalised["criteria"] > 0.8
    best = max(scores, key=lambda w: w.raw["criteria"])
    assert best.first >= 6  # only telescope sentences, no office talk


# -- scores, hooks, metadata ------------------------------------------------------------------


def test_scores_spread_across_the_range_within_a_video(embedder):
    transcript, _ = spoken(
        NEUTRAL + PASTA + ["Why do ninety percent of you get this wrong?"] + TELESCOPES + NEUTRAL
    )
    clips = select_clips(transcript, count=6, min_duration=8, max_duration=14, embedder=embedder)
    assert len(clips) >= 5
    scores = [c.score for c in clips]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores) >= 0.9
    assert max(scores) - min(scores) >= 0.3, scores
    for clip in clips:
        assert clip.score_breakdown and all(0.0 <= v <= 1.0 for v in clip.score_breakdown.values())
        assert clip.reason and "\n" not in clip.reason


def test_hooks_are_found_and_timed_from_the_clip_start(embedder):
    lines = NEUTRAL[:3] + ["Why do ninety percent of home cooks ruin their pasta?"] + PASTA[:3]
    transcript, spans = spoken(lines)
    clips = select_clips(transcript, count=1, min_duration=8, max_duration=14, embedder=embedder)
    clip = clips[0]
    hook_line = spans[3]
    assert clip.start <= hook_line[0] < clip.end  # the hook opens or sits in the top clip
    hook = next(h for h in clip.hooks if h["text"].startswith("Why do ninety"))
    assert hook["time"] == pytest.approx(hook_line[0] - clip.start, abs=0.01)
    assert 0.3 <= hook["confidence"] <= 1.0
    assert clip.highlights and all(0 <= t <= clip.duration for t in clip.highlights)

    off = select_clips(
        transcript,
        count=1,
        min_duration=8,
        max_duration=14,
        hook_detection=False,
        embedder=embedder,
    )
    assert off[0].hooks == [] and "hook" not in off[0].score_breakdown


def test_every_clip_carries_its_metadata(embedder):
    transcript, _ = spoken(TELESCOPES)
    clip = select_clips(transcript, count=1, min_duration=10, max_duration=20, embedder=embedder)[0]
    data = clip.as_dict()
    for key in ("start", "end", "duration", "score", "title", "score_breakdown", "reason",
                "hooks", "highlights", "sentiment", "topics", "text"):  # fmt: skip
        assert key in data
    assert clip.sentiment in ("positive", "neutral", "negative")
    assert clip.topics and all(isinstance(t, str) and t for t in clip.topics)
    assert all(t.lower() in clip.text.lower() for t in clip.topics)
    assert clip.title and len(clip.title) <= 60
    assert json.dumps(data)


def test_the_title_comes_from_the_clip_own_strongest_sentence(embedder):
    transcript, _ = spoken(
        NEUTRAL[:2] + ["Why do ninety percent of home cooks ruin their pasta?"] + NEUTRAL[2:4]
    )
    clip = select_clips(transcript, count=1, min_duration=8, max_duration=30, embedder=embedder)[0]
    assert clip.title == "Why do ninety percent of home cooks ruin their pasta?"


def test_titles_are_cleaned_and_shortened():
    assert clean_title("um, so, you know, the best way to brew coffee is, uh, a pour over.") == (
        "The best way to brew coffee is a pour over"
    )
    assert clean_title("and so that is why you should never, like, skip breakfast?") == (
        "That is why you should never skip breakfast?"
    )
    assert (
        clean_title("Listen to podcasts made for learners.")
        == "Listen to podcasts made for learners"
    )
    long = clean_title(
        "Thinking about buying an electric car, the number on the sticker is only half the story."
    )
    assert long == "Thinking about buying an electric car"
    no_comma = clean_title(
        "the quick brown fox jumps over the lazy dog and then runs away into the deep dark forest"
    )
    assert len(no_comma) <= 60 and no_comma[0] == "T" and not no_comma.endswith((" and", " the"))
    assert "forest" not in no_comma and no_comma.split()[-1] in no_comma.split()
    assert clean_title("Wow, that works!") == "Wow, that works!"
    assert clean_title("  ") == ""


# -- edges ------------------------------------------------------------------------------------


def test_a_transcript_without_speech_gives_no_clips(embedder):
    assert select_clips({"language": "en", "text": "", "segments": []}, embedder=embedder) == []
    assert select_clips({}, embedder=embedder) == []


def test_impossible_bounds_are_refused(embedder):
    transcript, _ = spoken(PASTA)
    with pytest.raises(StageError):
        select_clips(transcript, min_duration=30, max_duration=10, embedder=embedder)
    with pytest.raises(StageError):
        select_clips(transcript, start=20, end=10, embedder=embedder)


def test_all_sentences_go_to_the_embedder_in_one_batch(embedder):
    calls = []

    class Counting:
        def encode(self, texts):
            calls.append(list(texts))
            return embedder.encode(texts)

    transcript, spans = spoken(PASTA + TELESCOPES)
    select_clips(
        transcript,
        criteria="galaxies",
        count=2,
        min_duration=10,
        max_duration=20,
        embedder=Counting(),
    )
    assert len(calls) == 1
    assert len(calls[0]) == len(spans) + 1 and calls[0][-1] == "galaxies"


def test_the_default_embedder_runs_offline_and_gives_unit_vectors(embedder, monkeypatch):
    vectors = embedder.encode(
        ["Fresh pasta needs flour.", "Telescopes see galaxies.", "Fresh pasta needs flour."]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(vectors[0], vectors[2])
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"


# -- the optional language model, on a real loopback server -----------------------------------


class _FakeChat(BaseHTTPRequestHandler):
    replies: list = []
    requests: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        prompt = body["messages"][-1]["content"]
        if type(self).status != 200:
            self.send_response(type(self).status)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        if prompt.startswith("Rank"):
            count = prompt.count("\n[")
            # the model likes the last finalist best
            content = json.dumps({"order": list(range(count - 1, -1, -1))})
        else:
            count = prompt.count("\n[")
            content = (
                "```json\n"
                + json.dumps({"titles": [f"LLM title {k}" for k in range(count)]})
                + "\n```"
            )
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    _FakeChat.requests = []
    _FakeChat.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_an_llm_titles_the_clips_and_reranks_the_finalists(embedder, chat_server):
    transcript, _ = spoken(PASTA + TELESCOPES + NEUTRAL)
    kwargs = dict(count=2, min_duration=8, max_duration=14, embedder=embedder)
    plain = select_clips(transcript, **kwargs)
    llm = OpenAICompatibleLLM(chat_server, "tiny-chat", api_key="sk-test")
    ranked = select_clips(transcript, llm=llm, **kwargs)

    assert len(_FakeChat.requests) == 2
    first = _FakeChat.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    assert first["body"]["model"] == "tiny-chat"
    assert [c.title for c in ranked] == ["LLM title 0", "LLM title 1"]
    assert all("llm_rank" in c.score_breakdown for c in ranked)
    # the server ranks the finalists in reverse: the offline favourite gets the lowest rank,
    # and each score blends the offline score with the model's ranking
    offline = {(c.start, c.end): c.score for c in plain}
    for clip in ranked:
        if (clip.start, clip.end) in offline:
            expected = (
                0.6 * offline[(clip.start, clip.end)] + 0.4 * clip.score_breakdown["llm_rank"]
            )
            assert clip.score == pytest.approx(expected, abs=0.002)
    if (ranked[0].start, ranked[0].end) == (plain[0].start, plain[0].end):
        assert ranked[0].score_breakdown["llm_rank"] == 0.0
    assert ranked[0].score < plain[0].score
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_a_failing_llm_leaves_the_offline_selection(embedder, chat_server):
    _FakeChat.status = 503
    transcript, _ = spoken(PASTA + TELESCOPES)
    kwargs = dict(count=2, min_duration=8, max_duration=14, embedder=embedder)
    plain = select_clips(transcript, **kwargs)
    with_llm = select_clips(transcript, llm=OpenAICompatibleLLM(chat_server, "m"), **kwargs)
    assert len(_FakeChat.requests) == 2  # it was asked, and answered 503 both times
    assert [(c.start, c.end, c.title, c.score) for c in with_llm] == [
        (c.start, c.end, c.title, c.score) for c in plain
    ]


def test_the_llm_comes_from_the_environment_only_when_configured():
    assert llm_from_env({}) is None
    assert llm_from_env({"CLYPAI_LLM_BASE_URL": "http://x/v1"}) is None
    llm = llm_from_env(
        {"CLYPAI_LLM_BASE_URL": "http://x/v1/", "CLYPAI_LLM_MODEL": "m", "CLYPAI_LLM_API_KEY": "k"}
    )
    assert llm.base_url == "http://x/v1" and llm.model == "m" and llm.api_key == "k"
