"""The clip page's transcript corrections in Chromium: a misheard word corrected, the
captions follow at once (the player's track, the SRT through /v1) and the preview is
rendered again with them, without reloading the page."""

from __future__ import annotations

import re

import pytest
from django.core.files import File
from playwright.sync_api import expect

from clips.models import Clip, Job, Source
from projects.services import api_key_create, default_project

from .conftest import axe_violations, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VIDEO = "talking_head/grid/id2_vcd_swwp2s.mpg"
# Its words and their times, from the corpus's alignment (id2_vcd_swwp2s.align, 25 000
# units a second); "soon" misheard as "sun", as a transcriber might.
WORDS = [
    (" set", 0.49, 0.77),
    (" white", 0.77, 1.09),
    (" with", 1.09, 1.22),
    (" p", 1.22, 1.44),
    (" two", 1.44, 1.73),
    (" sun", 1.73, 2.21),
]


@pytest.fixture
def misheard_clip(member, shared_media):
    """A completed clip of a real GRID video whose transcript has one word wrong, with
    captions from those words (written as the pipeline writes them)."""
    from clips.rendering import clip_caption_files

    team = member.team
    with open(shared_media / VIDEO, "rb") as fh:
        source = Source(team=team, sha256="a" * 64, size_bytes=0, duration=3.0)
        source.file.save("sources/swwp2s.mpg", File(fh), save=False)
        source.size_bytes = source.file.size
        source.save()
    project = default_project(team=team)
    job = Job.objects.create(
        team=team, project=project, source=source, status=Job.Status.DONE, stage="done"
    )
    clip = Clip.objects.create(
        team=team,
        project=project,
        job=job,
        rank=1,
        source=source,
        name="Set white with p two soon",
        status=Clip.Status.COMPLETED,
        start_time=0.3,
        end_time=2.5,
        duration=2.2,
        score=0.7,
        aspect_ratio="1:1",
        language="en",
        enable_captions=True,
        words=[{"word": w, "start": s, "end": e} for w, s, e in WORDS],
    )
    clip.preview.save("placeholder.mp4", File(open(shared_media / VIDEO, "rb")), save=True)
    clip_caption_files(clip)
    return clip


def _cues(page) -> list[str]:
    """The text of the player's caption cues, as Chromium loaded them from the track."""
    return page.locator("#player video").evaluate(
        """async v => {
             const track = v.textTracks[0];
             track.mode = "hidden";
             for (let i = 0; i < 100 && !(track.cues && track.cues.length); i++)
               await new Promise(r => setTimeout(r, 100));
             return Array.from(track.cues || [], c => c.text);
           }"""
    )


def test_a_corrected_word_reaches_the_captions_and_the_srt_through_v1(
    page, member, misheard_clip, background_jobs, shoot
):
    clip = misheard_clip
    sign_in(page, member)
    page.goto(f"/clips/{clip.pk}/")
    assert "sun" in " ".join(_cues(page))
    page.get_by_text("Correct the captions").click()
    word = page.get_by_label("Word 6 at 1.73 s")
    expect(word).to_have_value("sun")
    word.fill("soon")
    shoot(page, "clip-correction")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Save corrections").click()
    expect(page.get_by_text("Corrected 1 word.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#transcript$"))

    # The preview renders again; the page follows it without being reloaded.
    page.evaluate("() => { window.notReloaded = true; }")
    expect(page.get_by_text("Rendering the preview again")).to_be_visible()
    expect(page.get_by_text("Rendering the preview again")).to_have_count(0, timeout=180_000)
    assert page.evaluate("() => window.notReloaded === true")
    clip.refresh_from_db()
    assert clip.preview.name != "placeholder.mp4" and clip.words[5]["word"] == " soon"
    rendered = page.locator("#player video").evaluate(
        """async v => { if (v.readyState < 1) await new Promise(r =>
             v.addEventListener('loadedmetadata', r, {once: true}));
             return {d: v.duration, w: v.videoWidth, h: v.videoHeight}; }"""
    )
    assert rendered["d"] == pytest.approx(2.2, abs=0.3) and rendered["w"] == rendered["h"] > 0
    cues = " ".join(_cues(page))
    assert "soon" in cues and "sun" not in cues, cues
    # At "soon" (1.73-2.21 s of the source, so 1.43-1.91 s of the clip): the burned
    # captions of the new preview, for the eye (tests/artifacts/clip-corrected-frame.png).
    page.locator("#player video").evaluate(
        """async v => { v.currentTime = 1.7;
             await new Promise(r => v.addEventListener('seeked', r, {once: true})); }"""
    )
    page.locator("#player video").screenshot(
        path=str(shoot(page, "clip-corrected").parent / "clip-corrected-frame.png")
    )

    # The SRT, as /v1 hands it to an integrator.
    key = api_key_create(team=member.team, name="check").raw_key
    answer = page.request.get(f"/v1/clips/{clip.pk}", headers={"Authorization": f"Bearer {key}"})
    assert answer.ok
    srt = page.request.get(answer.json()["data"]["outputs"]["captionsUrl"]).text()
    assert "soon" in srt.lower() and "sun" not in srt.lower(), srt
    assert "-->" in srt
