"""A brand kit's caption font: a family from the known list or the kit's own uploaded
font file, nothing else; never a server path, never a line of the ASS script.

Fonts are made at test time from DejaVu Sans (shipped in matplotlib's wheel), renamed
with fontTools; hostile ones are made from it too.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from fontTools.ttLib import TTFont

from brandkits.models import BrandKit
from clips.pipeline.captions import (
    CAPTION_FONTS,
    caption_chunks,
    default_font_file,
    font_family,
    fonts_dir,
    to_ass,
)
from clips.rendering import _brand_caption_style
from tests.factories import BrandKitFactory, ClipFactory

pytestmark = pytest.mark.django_db

INJECTION = "DejaVu Sans\nDialogue: 0,0:00:00.00,9:00:00.00,Caption,,0,0,0,,{\\fs400}PWNED"


def _font(family: str, *, regular_name: str | None = None) -> bytes:
    """DejaVu Sans Bold with its family name records set to `family`."""
    font = TTFont(str(default_font_file()))
    for record in font["name"].names:
        if record.nameID in (1, 16):
            record.string = family
        elif record.nameID in (4,):
            record.string = regular_name or f"{family} Bold"
        elif record.nameID == 6:
            record.string = (regular_name or family).replace(" ", "") + "-Bold"
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def brand_font() -> bytes:
    return _font("Acme Brand Sans")


def put_font(api, kit_id, content: bytes, name="brand.ttf", content_type="font/ttf"):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    return api.put(f"/v1/brand-kits/{kit_id}/font", {"file": upload}, format="multipart")


def data_of(response, status_code: int = 200):
    assert response.status_code == status_code, response.content
    return response.json()["data"]


def error_of(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content
    return response.json()["error"]


def _style_line(ass: str) -> str:
    return next(line for line in ass.splitlines() if line.startswith("Style:"))


# Known families -------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(CAPTION_FONTS))
def test_each_known_family_is_accepted_and_ships_on_this_machine(api, family):
    kit = data_of(
        api.post(
            "/v1/brand-kits", {"name": "k", "captionStyle": {"fontFamily": family}}, format="json"
        ),
        201,
    )
    assert kit["captionStyle"]["fontFamily"] == family
    style, _ = _brand_caption_style(ClipFactory(team=kit_team(kit), brand_kit_id=kit["id"]))
    assert Path(style["font"]).is_file()
    assert font_family(style) == family


def kit_team(kit: dict):
    return BrandKit.objects.get(pk=kit["id"]).team


@pytest.mark.parametrize(
    "family",
    [
        "/etc/passwd",  # exists on this machine
        "/no/such/font.ttf",  # does not
        "../../media/brandkits/x/font.ttf",
        INJECTION,
        "DejaVu Sans\n",
        "DejaVu Sans,Bold",
        "Comic Sans MS",
    ],
)
def test_any_other_family_is_refused_alike_naming_the_field(api, team, family):
    body = {"name": "k", "captionStyle": {"fontFamily": family}}
    error = error_of(api.post("/v1/brand-kits", body, format="json"), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == "captionStyle.fontFamily"
    # one message whatever the value: no file-existence oracle, nothing echoed
    assert error["message"].startswith("Unknown caption font: one of DejaVu Sans, DejaVu Serif")
    assert "passwd" not in error["message"] and "PWNED" not in error["message"]
    kit = BrandKitFactory(team=team)
    patched = api.patch(f"/v1/brand-kits/{kit.pk}", body, format="json")
    assert error_of(patched, 400)["field"] == "captionStyle.fontFamily"
    kit.refresh_from_db()
    assert (kit.caption_style or {}).get("fontFamily") in (None, "DejaVu Sans")


# A stored kit (from before the check, or written around it) -----------------------------


@pytest.mark.parametrize("family", [INJECTION, "/etc/passwd", "Nope\r\n[Events]"])
def test_a_stored_kit_can_never_inject_ass_lines_or_name_a_server_path(team, family):
    kit = BrandKitFactory(team=team, caption_style={"fontFamily": family})
    clip = ClipFactory(team=team, brand_kit=kit)

    style, _ = _brand_caption_style(clip)

    assert style["font"] is None or Path(style["font"]).name in CAPTION_FONTS.values()
    assert "passwd" not in str(style["font"])
    chunks = caption_chunks([("hello", 0.0, 0.5), ("world", 0.5, 1.0)])
    ass = to_ass(chunks, width=1080, height=1920, style=style)
    lines = ass.splitlines()
    assert sum(line.startswith("Dialogue:") for line in lines) == 2  # one per word, no more
    assert "PWNED" not in ass and "\r" not in ass
    assert _style_line(ass).split(",")[1] == "DejaVu Sans"
    assert len(_style_line(ass).split(",")) == 23  # the Format line's fields, no more


def test_the_ass_writer_refuses_a_family_that_would_break_its_style_line():
    chunks = caption_chunks([("hello", 0.0, 0.5)])
    for family in (INJECTION, "A,B", "A{\\b1}"):
        with pytest.raises(ValueError, match="cannot go into an ASS script"):
            to_ass(chunks, width=1080, height=1920, style={"font": family})


def test_the_migration_resets_unknown_families():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("brandkits.migrations.0004_font_family")
    bad = BrandKitFactory(caption_style={"fontFamily": INJECTION, "fontSize": 50})
    good = BrandKitFactory(caption_style={"fontFamily": "DejaVu Serif"})
    migration.forget_unknown_families(apps, None)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.caption_style == {"fontFamily": "DejaVu Sans", "fontSize": 50}
    assert good.caption_style == {"fontFamily": "DejaVu Serif"}


# The kit's own font -----------------------------------------------------------------------


def test_an_uploaded_font_becomes_the_kits_caption_font(api, team, brand_font, media_root):
    kit = BrandKitFactory(team=team)
    data = data_of(put_font(api, kit.pk, brand_font))
    assert data["font"]["family"] == "Acme Brand Sans"
    assert data["captionStyle"]["fontFamily"] == "Acme Brand Sans"
    kit.refresh_from_db()
    assert kit.font_file.name == f"brandkits/{team.pk}/{kit.pk}/font.ttf"
    assert (media_root / kit.font_file.name).read_bytes() == brand_font
    # The renderer gets the file in a folder of its own, and libass its family.
    style, _ = _brand_caption_style(ClipFactory(team=team, brand_kit=kit))
    folder = Path(fonts_dir(style))
    assert [p.name for p in folder.iterdir()] == ["font.ttf"]
    assert (folder / "font.ttf").read_bytes() == brand_font
    ass = to_ass(caption_chunks([("hi", 0.0, 0.5)]), width=1080, height=1920, style=style)
    assert _style_line(ass).split(",")[1] == "Acme Brand Sans"
    # It may be switched away from and back to; another kit cannot name it.
    for family in ("DejaVu Serif", "Acme Brand Sans"):
        body = {"captionStyle": {"fontFamily": family}}
        patched = data_of(api.patch(f"/v1/brand-kits/{kit.pk}", body, format="json"))
        assert patched["captionStyle"]["fontFamily"] == family
    other = BrandKitFactory(team=team)
    body = {"captionStyle": {"fontFamily": "Acme Brand Sans"}}
    assert error_of(api.patch(f"/v1/brand-kits/{other.pk}", body, format="json"), 400)["field"] == (
        "captionStyle.fontFamily"
    )


def test_removing_the_font_brings_back_the_default(api, team, brand_font, media_root):
    kit = BrandKitFactory(team=team)
    data_of(put_font(api, kit.pk, brand_font))
    stored = media_root / BrandKit.objects.get(pk=kit.pk).font_file.name
    data = data_of(api.delete(f"/v1/brand-kits/{kit.pk}/font"))
    assert data["font"] is None
    assert data["captionStyle"]["fontFamily"] == "DejaVu Sans"
    assert not stored.exists()
    body = {"captionStyle": {"fontFamily": "Acme Brand Sans"}}
    assert error_of(api.patch(f"/v1/brand-kits/{kit.pk}", body, format="json"), 400)


def _truncated(font: bytes) -> bytes:
    return font[: len(font) // 2]


def _collection(font: bytes) -> bytes:
    from fontTools.ttLib import TTCollection

    collection = TTCollection()
    collection.fonts = [TTFont(io.BytesIO(font)), TTFont(io.BytesIO(font))]
    out = io.BytesIO()
    collection.save(out)
    return out.getvalue()


def _woff(font: bytes) -> bytes:
    parsed = TTFont(io.BytesIO(font))
    parsed.flavor = "woff"
    out = io.BytesIO()
    parsed.save(out)
    return out.getvalue()


def _corrupt_table(font: bytes) -> bytes:
    """The 'name' table's bytes overwritten: the header is fine, a table is not."""
    parsed = TTFont(io.BytesIO(font))
    offset = parsed.reader.tables["name"].offset
    return font[:offset] + b"\xff" * 64 + font[offset + 64 :]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda font: b"not a font at all, just text named .ttf\n" * 10, "text"),
        (lambda font: b"", "empty"),
        (_truncated, "truncated"),
        (_collection, "a collection"),
        (_woff, "woff"),
        (_corrupt_table, "a corrupt table"),
        (
            lambda font: _font("Evil\nDialogue: 0,0:00:00.00,9:00:00.00,Caption,,0,0,0,,X"),
            "newline",
        ),
        (lambda font: _font("Evil,Family"), "comma"),
    ],
)
def test_it_refuses_what_is_not_one_safe_font(api, team, brand_font, media_root, make, why):
    kit = BrandKitFactory(team=team)
    error = error_of(put_font(api, kit.pk, make(brand_font)), 400)
    assert error["code"] == "invalid_request" and error["field"] == "file", why
    kit.refresh_from_db()
    assert not kit.font_file and kit.font_family == ""
    assert not (media_root / "brandkits").exists() or not any(
        (media_root / "brandkits").rglob("font.*")
    )


def test_a_font_over_the_limit_is_413(api, team, settings, brand_font):
    settings.CLYPAI_MAX_FONT_BYTES = len(brand_font) - 1
    kit = BrandKitFactory(team=team)
    error = error_of(put_font(api, kit.pk, brand_font), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"limit": len(brand_font) - 1}


def test_a_font_must_come_as_multipart(api, team, brand_font):
    kit = BrandKitFactory(team=team)
    response = api.put(
        f"/v1/brand-kits/{kit.pk}/font", brand_font, content_type="application/octet-stream"
    )
    assert error_of(response, 400)["field"] == "file"
    nothing = api.put(f"/v1/brand-kits/{kit.pk}/font", {}, format="multipart")
    assert error_of(nothing, 400)["field"] == "file"


def test_another_teams_kit_font_is_not_found(api, other_caller, brand_font):
    kit = BrandKitFactory(team=other_caller.team)
    assert put_font(api, kit.pk, brand_font).status_code == 404
    assert api.delete(f"/v1/brand-kits/{kit.pk}/font").status_code == 404


# The dashboard's brand kit form ------------------------------------------------------------


def _form(**extra) -> dict:
    return {
        "name": "Acme",
        "primary_color": "#FFFFFF",
        "accent_color": "#FFD60A",
        "font_family": "DejaVu Sans",
        "font_size": 64,
        "text_color": "#FFFFFF",
        "highlight_color": "#FFD60A",
        "outline_color": "#000000",
        "position": "bottom",
        **extra,
    }


@pytest.fixture
def member_client(client):
    from projects.services import member_create

    user, team, _ = member_create(
        email="ann@example.com", password="a-long-pass-phrase-7", team_name="Acme"
    )
    client.force_login(user)
    client.team = team
    return client


def test_the_dashboard_form_uploads_a_font_that_becomes_the_caption_font(member_client, brand_font):
    font = SimpleUploadedFile("brand.ttf", brand_font, content_type="font/ttf")
    response = member_client.post("/brand-kits/new/", _form(font=font))
    assert response.status_code == 302, response.content.decode()[-2000:]
    kit = BrandKit.objects.get(team=member_client.team)
    assert kit.font_family == "Acme Brand Sans" and kit.font_file
    assert kit.caption_style["fontFamily"] == "Acme Brand Sans"
    # the form then offers it beside the known fonts, and may switch away from it
    page = member_client.get(f"/brand-kits/{kit.pk}/").content.decode()
    assert 'value="Acme Brand Sans" selected' in page
    assert "Acme Brand Sans (uploaded)" in page
    response = member_client.post(f"/brand-kits/{kit.pk}/", _form(font_family="DejaVu Serif"))
    assert response.status_code == 302
    kit.refresh_from_db()
    assert kit.caption_style["fontFamily"] == "DejaVu Serif" and kit.font_file


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"font_family": "/etc/passwd"}, "font_family"),
        ({"font_family": INJECTION}, "font_family"),
        ({"font": "not-a-font"}, "font"),
    ],
)
def test_the_dashboard_form_refuses_a_bad_font_on_its_field(member_client, extra, field):
    if field == "font":
        extra = {"font": SimpleUploadedFile("x.ttf", b"plain text\n" * 20, "font/ttf")}
    response = member_client.post("/brand-kits/new/", _form(**extra))
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not BrandKit.objects.filter(team=member_client.team).exists()
    assert "<h1>New brand kit</h1>" in response.content.decode()


# libass draws with the kit's file ---------------------------------------------------------


def _serif_renamed(family: str) -> bytes:
    from clips.pipeline.captions import caption_font_file

    font = TTFont(str(caption_font_file("DejaVu Serif")))
    for record in font["name"].names:
        if record.nameID in (1, 16):
            record.string = family
        elif record.nameID == 4:
            record.string = f"{family} Bold"
        elif record.nameID == 6:
            record.string = family.replace(" ", "") + "-Bold"
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@pytest.mark.slow
def test_the_render_draws_the_captions_with_the_kits_uploaded_font(
    api, team, tmp_path, settings, media_root
):
    import subprocess

    import numpy as np

    from clips.pipeline.captions import write_ass
    from clips.pipeline.render import Captions, RenderSettings, render_clip

    settings.CLYPAI_WORK_DIR = tmp_path / "work"
    source = tmp_path / "black.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=360x640:r=10:d=2",
         "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "2", "-c:v", "libx264",
         "-preset", "ultrafast", "-c:a", "aac", str(source)],
        check=True,
    )  # fmt: skip
    kit = BrandKitFactory(team=team)
    data_of(put_font(api, kit.pk, _serif_renamed("Acme Brand Serif")))
    kit.refresh_from_db()
    chunks = caption_chunks([("Hamburgefonstiv", 0.0, 1.5)], max_chars=30)

    def render(style: dict, name: str) -> np.ndarray:
        ass = write_ass(tmp_path / f"{name}.ass", chunks, width=360, height=640, style=style)
        out = render_clip(
            source, tmp_path / f"{name}.mp4", start=0.0, end=1.0,
            settings=RenderSettings(width=360, height=640),
            captions=Captions(ass, fonts_dir(style)),
        )  # fmt: skip
        frame = subprocess.run(
            ["ffmpeg", "-v", "error", "-ss", "0.5", "-i", str(out.path), "-frames:v", "1",
             "-f", "rawvideo", "-pix_fmt", "gray", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        return np.frombuffer(frame, np.uint8).reshape(640, 360).astype(np.int16)

    own, _ = _brand_caption_style(ClipFactory(team=team, brand_kit=kit))
    with_kit = render({**own, "size": 40}, "kit")
    serif = render({"font": "DejaVu Serif", "size": 40}, "serif")
    sans = render({"font": None, "size": 40}, "sans")

    letters = (np.abs(sans - 128) > 60).mean()  # the caption's pixels on the gray frame
    assert letters > 0.001
    # Drawn with the uploaded file (a serif renamed): not the default sans...
    assert (np.abs(with_kit - sans) > 60).mean() > 0.3 * letters
    # ...but exactly the glyphs of the font it was made from.
    assert (np.abs(with_kit - serif) > 60).mean() < 0.02 * letters
