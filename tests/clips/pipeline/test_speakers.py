"""clips.pipeline.speakers and voices: voices tied to faces on made-up turns and lips, the
crop path that holds the tied face, the fall-backs (one face, no speech), and on real
media a composite (bench/_speakers.py) whose listener mouths in step with the speaker in
half the turns: the voice tied over the whole source keeps the speaker in the window
where reading mouths against the loudness window by window loses them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench._speakers import composite, speaker_share
from clips.pipeline import StageError
from clips.pipeline.faces import FaceTrack, TrackPoint
from clips.pipeline.reframe import TIED_SHARE, crop_path
from clips.pipeline.speakers import mouth_activity, needs_voices, tie_voices
from clips.pipeline.voices import (
    VoiceAnalysis,
    VoiceTurn,
    cluster_voices,
    merge_turns,
    read_wav,
    speech_spans,
)

FPS = 12.5
# Turns of 3 s: voice 0 (the left face) and voice 1 (the right face).
TURNS = [(0.3, 2.7, 0), (3.3, 5.7, 1), (6.3, 8.7, 0), (9.3, 11.7, 1), (12.3, 14.7, 0)]


def _lips(moving, *, length=15.0, seed=0):
    """A lip gap per frame: chattering (4 Hz) inside the spans of `moving`, still and
    closed elsewhere, with a little measurement noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(int(length * FPS)):
        t = round(i / FPS, 3)
        value = 0.01 + rng.normal(0, 0.001)
        if any(a <= t < b for a, b in moving):
            value += 0.04 * (1 + math.sin(2 * math.pi * 4 * t + seed))
        out.append([t, round(value, 4)])
    return out


def _track(track_id, x, lips, *, mouth=1.0, length=15.0):
    points = [
        TrackPoint(round(i * 0.2, 3), x - 100, 400, 200, 200, 0.9, mouth, 0.5)
        for i in range(int(length / 0.2))
    ]
    return FaceTrack(id=track_id, points=points, lips=lips)


def _spans(voice):
    return [(a, b) for a, b, v in TURNS if v == voice]


# --- the tie, on made-up turns and lips ------------------------------------------------------


def test_each_voice_is_tied_to_the_face_that_moves_in_its_turns():
    left = _track(0, 500, _lips(_spans(0)))
    right = _track(1, 1400, _lips(_spans(1), seed=1))

    tie = tie_voices(TURNS, [left, right])

    assert tie.face_for(0, [0, 1]) == 0
    assert tie.face_for(1, [0, 1]) == 1
    assert tie.ties() == {0: 0, 1: 1}
    assert tie.evidence[(0, 0)] > 0.5 > tie.evidence[(0, 1)]


def test_a_listener_mouthing_along_in_one_turn_does_not_take_the_voice():
    # The right face mouths in step through voice 0's second turn as well as its own.
    left = _track(0, 500, _lips(_spans(0)))
    right = _track(1, 1400, _lips([*_spans(1), (6.3, 8.7)], seed=0))

    tie = tie_voices(TURNS, [left, right])

    assert tie.face_for(0, [0, 1]) == 0
    assert tie.face_for(1, [0, 1]) == 1


def test_even_evidence_ties_no_face():
    both = [(a, b) for a, b, _v in TURNS]  # both faces move whenever anybody speaks
    left = _track(0, 500, _lips(both))
    right = _track(1, 1400, _lips(both, seed=2))

    tie = tie_voices(TURNS, [left, right])

    assert tie.face_for(0, [0, 1]) is None
    assert tie.face_for(1, [0, 1]) is None


def test_silence_and_unknown_voices_have_no_face():
    tie = tie_voices(TURNS, [_track(0, 500, _lips(_spans(0))), _track(1, 1400, _lips(_spans(1)))])

    assert tie.voice_at(2.8, 3.2) is None  # the pause between two turns
    assert tie.voice_at(1.0, 1.5) == 0
    assert tie.face_for(None, [0, 1]) is None
    assert tie.face_for(7, [0, 1]) is None  # a voice never heard with these faces


def test_mouth_activity_skips_frames_without_a_mesh():
    lips = [[0.0, 0.01], [0.08, 0.05], [0.16, None], [0.24, 0.02], [0.32, 0.03]]

    activity = mouth_activity(lips, smooth=0.01)

    assert [t for t, _a in activity] == [0.08, 0.32]
    assert activity[0][1] == pytest.approx(0.04)
    assert activity[1][1] == pytest.approx(0.01)


def test_it_needs_voices_only_with_two_measured_faces_in_view_together():
    left = _track(0, 500, _lips(_spans(0)))
    right = _track(1, 1400, _lips(_spans(1)))
    later = _track(2, 1400, [[20.0, 0.01], [25.0, 0.01]])

    assert needs_voices({"tracks": [left.to_dict(), right.to_dict()]})
    assert not needs_voices({"tracks": [left.to_dict()]})
    assert not needs_voices({"tracks": [left.to_dict(), later.to_dict()]})
    assert not needs_voices({"tracks": [_track(0, 500, []).to_dict(), right.to_dict()]})


# --- the crop path -----------------------------------------------------------------------------


def _path(tracks, voices):
    return crop_path(
        source_width=1920, source_height=1080, start=0, end=15, faces=tracks, voices=voices
    )


def _held(path, side_x):
    x, _y, w, _h = path.at(side_x[0])
    return x <= side_x[1] <= x + w


def test_the_window_holds_the_face_of_the_voice_that_speaks():
    # Movement alone points the wrong way: the right face's mouth region changes more all
    # the time (the old signal); the lips and the voices say who speaks.
    left = _track(0, 500, _lips(_spans(0)), mouth=0.5)
    right = _track(1, 1400, _lips(_spans(1)), mouth=3.0)
    voices = VoiceAnalysis(duration=15.0, turns=[VoiceTurn(a, b, v) for a, b, v in TURNS], voices=2)

    old = _path([left, right], None)
    new = _path([left, right], voices.to_dict())

    assert not _held(old, (1.5, 500))  # the old reading follows the busier mouth
    for t, x in ((1.5, 500), (4.5, 1400), (7.5, 500), (10.5, 1400), (13.5, 500)):
        assert _held(new, (t, x)), t
    assert new.shots[0].layout == "fill"
    assert "voice tied to a face" in new.shots[0].reason
    assert 0.5 < TIED_SHARE < 1


def test_the_cut_between_two_voices_falls_in_the_middle_of_the_pause():
    turns = [(1.0, 2.0, 0), (4.0, 5.5, 1), (8.0, 9.5, 0), (12.0, 14.0, 1)]
    left = _track(0, 500, _lips([(a, b) for a, b, v in turns if v == 0]), mouth=1.0)
    right = _track(1, 1400, _lips([(a, b) for a, b, v in turns if v == 1]), mouth=1.0)
    voices = [VoiceTurn(*t) for t in turns]

    path = _path([left, right], voices)

    assert _held(path, (0.2, 500))  # before the first voice: its face
    assert _held(path, (2.8, 500)) and _held(path, (3.2, 1400))  # the pause 2-4 s
    assert _held(path, (6.4, 1400)) and _held(path, (7.0, 500))  # the pause 5.5-8 s
    assert _held(path, (14.9, 1400))  # after the last voice: its face holds


def test_without_speech_or_with_one_face_the_old_reading_stands():
    left = _track(0, 500, _lips(_spans(0)), mouth=0.5)
    right = _track(1, 1400, _lips(_spans(1)), mouth=3.0)
    silent = VoiceAnalysis(duration=15.0, turns=[], voices=0)

    assert _path([left, right], silent).to_dict() == _path([left, right], None).to_dict()
    with_voices = VoiceAnalysis(duration=15.0, turns=[VoiceTurn(*t) for t in TURNS], voices=2)
    assert _path([left], with_voices).to_dict() == _path([left], None).to_dict()
    # faces without measured lips (an analysis from before the lips pass): the old reading
    bare = [_track(0, 500, [], mouth=0.5), _track(1, 1400, [], mouth=3.0)]
    assert _path(bare, with_voices).to_dict() == _path(bare, None).to_dict()


# --- the voices' own steps ---------------------------------------------------------------------


def test_speech_spans_join_short_pauses_and_drop_blips():
    frame = 0.032
    activity = [0.0] * 10 + [0.9] * 20 + [0.1] * 3 + [0.8] * 20 + [0.0] * 30 + [0.9] * 2

    spans = speech_spans(activity, frame, speech=0.5, min_pause=0.25, min_speech=0.25)

    assert spans == [(0.32, 1.696)]


def test_voices_are_clustered_by_distance_without_a_count():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=256), rng.normal(size=256)
    pieces = [a + rng.normal(0, 0.3, 256) for _ in range(4)] + [
        b + rng.normal(0, 0.3, 256) for _ in range(3)
    ]
    embeddings = np.array([p / np.linalg.norm(p) for p in pieces[:2] + pieces[4:] + pieces[2:4]])

    assert cluster_voices(embeddings) == [0, 0, 1, 1, 1, 0, 0]
    assert cluster_voices(embeddings[:1]) == [0]


def test_turns_of_one_voice_close_together_are_merged():
    turns = [VoiceTurn(0.0, 2.0, 0), VoiceTurn(2.2, 3.0, 0), VoiceTurn(3.1, 4.0, 1)]

    assert [t.to_list() for t in merge_turns(turns)] == [[0.0, 3.0, 0], [3.1, 4.0, 1]]
    analysis = VoiceAnalysis(duration=4.0, speech=[(0.0, 4.0)], turns=turns, voices=2)
    assert VoiceAnalysis.from_dict(analysis.to_dict()).to_dict() == analysis.to_dict()
    assert analysis.voice_at(3.5) == 1 and analysis.voice_at(5.0) is None


def test_a_wav_that_is_not_mono_16k_is_refused(tmp_path):
    import wave

    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0" * 6400)

    with pytest.raises(StageError, match="mono"):
        read_wav(path)


# --- on real media -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_voice_tied_over_the_source_keeps_the_speaker_where_mouths_fool_the_old_reading(
    tmp_path,
):
    from clips.pipeline.audio import audio_features, extract_audio
    from clips.pipeline.faces import detect_faces
    from clips.pipeline.voices import detect_voices

    speakers = composite("in-step-at-times", tmp_path)
    faces = detect_faces(speakers.path, people=False, content=False)
    wav = extract_audio(speakers.path, tmp_path / "a.wav")
    sound = audio_features(wav)
    voices = detect_voices(wav)

    def path(voices):
        return crop_path(
            source_width=1920,
            source_height=1080,
            start=0,
            end=speakers.length,
            faces=faces,
            loudness=sound.loudness,
            loudness_window=sound.window,
            voices=voices,
        )

    old, new = path(None), path(voices)

    # Two people, two voices; each voice tied to its own face.
    assert voices.voices == 2
    tie = tie_voices(voices.turns, faces.tracks)
    sides = {t.id: "L" if t.points[0].center[0] < 960 else "R" for t in faces.tracks}
    assert sorted(sides[f] for f in tie.ties().values()) == ["L", "R"]
    # In the turns where the listener mouths in step, the old reading loses the speaker
    # for a good part; the voices keep them.
    mouthing = [(m["from"], m["to"]) for m in speakers.truth["mouthing"]]

    def share_in(path, spans):
        held = []
        for a, b in spans:
            for t in np.arange(a, b, 0.1):
                centre = speakers.truth["faces"][speakers.speaker_at(float(t))]["center_x"]
                x, _y, w, _h = path.at(float(t))
                held.append(x <= centre <= x + w)
        return sum(held) / len(held)

    assert share_in(new, mouthing) >= 0.85
    assert share_in(new, mouthing) >= share_in(old, mouthing) + 0.15
    assert speaker_share(new, speakers) >= 0.9
    assert speaker_share(new, speakers) > speaker_share(old, speakers)


@pytest.mark.slow
def test_the_telephone_call_is_read_a_chunk_at_a_time_and_has_its_two_voices(monkeypatch):
    from bench._speakers import MEDIA
    from clips.pipeline import voices

    wav = MEDIA / "speech/pyannote_sample/sample.wav"
    whole = voices.detect_voices(wav)
    monkeypatch.setattr(voices, "CHUNK_SECONDS", 1.0)
    chunked = voices.detect_voices(wav)

    assert chunked.to_dict() == whole.to_dict()
    # sample.rttm: two people, speech from 6.69 s to the end (30 s).
    assert whole.speech[0][0] == pytest.approx(6.69, abs=0.2)
    assert whole.speech[-1][1] == pytest.approx(30.0, abs=0.1)
    talk = {}
    for turn in whole.turns:
        talk[turn.voice] = talk.get(turn.voice, 0.0) + turn.end - turn.start
    main = sorted(talk.values(), reverse=True)
    assert len(main) >= 2 and main[1] >= 5.0  # two voices that each speak for seconds
