"""Writes for brand kits."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile, File
from django.db import transaction

from clips.pipeline.captions import CAPTION_FONTS, SAFE_FONT_FAMILY
from clypai.api.errors import InvalidRequest
from projects.models import Team

from .models import DEFAULT_CAPTION_STYLE, BrandKit

LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
MAX_LOGO_SIDE = 4096

_COLUMNS = {
    "name": "name",
    "primaryColor": "primary_color",
    "accentColor": "accent_color",
    "introUpload": "intro_upload",
    "outroUpload": "outro_upload",
}


def caption_font_families(brand_kit: BrandKit | None = None) -> list[str]:
    """The families a kit's captionStyle.fontFamily may name: the known caption fonts
    and, when it has one, the family of the kit's own uploaded font."""
    families = list(CAPTION_FONTS)
    if brand_kit is not None and brand_kit.font_file and brand_kit.font_family:
        if brand_kit.font_family not in families:
            families.append(brand_kit.font_family)
    return families


def _check_font_family(brand_kit: BrandKit, family) -> None:
    allowed = caption_font_families(brand_kit)
    if family not in allowed:
        # The value is not echoed: it may hold a newline or name a server path.
        raise InvalidRequest(
            f"Unknown caption font: one of {', '.join(allowed)}, or the family of a font "
            "file uploaded to this brand kit (PUT /v1/brand-kits/{id}/font)",
            field="captionStyle.fontFamily",
        )


def _apply(brand_kit: BrandKit, data: dict) -> None:
    style = data.get("captionStyle") or {}
    if "fontFamily" in style:
        _check_font_family(brand_kit, style["fontFamily"])
    for key, column in _COLUMNS.items():
        if key in data:
            setattr(brand_kit, column, data[key])
    if "captionStyle" in data:
        brand_kit.caption_style = {
            **(brand_kit.caption_style or {}),
            **(data["captionStyle"] or {}),
        }
    if "watermark" in data:
        brand_kit.watermark = {**(brand_kit.watermark or {}), **(data["watermark"] or {})}


def brand_kit_create(*, team: Team, data: dict) -> BrandKit:
    brand_kit = BrandKit(team=team)
    _apply(brand_kit, data)
    brand_kit.save()
    return brand_kit


def brand_kit_update(*, brand_kit: BrandKit, data: dict) -> BrandKit:
    _apply(brand_kit, data)
    brand_kit.save()
    return brand_kit


def brand_kit_delete(*, brand_kit: BrandKit) -> None:
    files = [brand_kit.logo, brand_kit.font_file]
    with transaction.atomic():
        brand_kit.delete()
    for stored in files:
        if stored:
            stored.storage.delete(stored.name)


def brand_kit_set_logo(*, brand_kit: BrandKit, file: File) -> BrandKit:
    """Replace the kit's logo with an image that really is a PNG, JPEG or WebP."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image_format = image.format
            width, height = image.size
            image.verify()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:  # a header claiming a huge image
        raise InvalidRequest("Logo must be a PNG, JPEG or WebP image", field="file") from exc
    if image_format not in LOGO_FORMATS:
        raise InvalidRequest(
            f"Logo must be a PNG, JPEG or WebP image, not {image_format}", field="file"
        )
    if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE:
        raise InvalidRequest(
            f"Logo is {width}×{height}; at most {MAX_LOGO_SIDE} pixels a side", field="file"
        )
    file.seek(0)
    old = brand_kit.logo.name if brand_kit.logo else None
    brand_kit.logo.save(f"logo.{LOGO_FORMATS[image_format]}", file, save=True)
    if old and old != brand_kit.logo.name:
        brand_kit.logo.storage.delete(old)
    return brand_kit


def brand_kit_remove_logo(*, brand_kit: BrandKit) -> BrandKit:
    if brand_kit.logo:
        brand_kit.logo.delete(save=False)
    brand_kit.logo = ""
    brand_kit.save()
    return brand_kit


def brand_kit_set_default(*, brand_kit: BrandKit, default: bool = True) -> BrandKit:
    """Make `brand_kit` its team's default kit (the one new clips start with), or not."""
    with transaction.atomic():
        if default:
            BrandKit.objects.filter(team_id=brand_kit.team_id, is_default=True).exclude(
                pk=brand_kit.pk
            ).update(is_default=False)
        BrandKit.objects.filter(pk=brand_kit.pk).update(is_default=default)
    brand_kit.is_default = default
    return brand_kit


# sfnt versions of a single TrueType or OpenType font ("true": Apple's TrueType).
_FONT_KINDS = {b"\x00\x01\x00\x00": "ttf", b"true": "ttf", b"OTTO": "otf"}
_FONT_ERROR = "Font must be a TrueType (.ttf) or OpenType (.otf) font file"


def brand_kit_set_font(*, brand_kit: BrandKit, file: File) -> BrandKit:
    """Replace the kit's caption font with a file that really is one TrueType or OpenType
    font (every table parsed by fontTools, loaded and drawn by FreeType as libass will),
    whose family name can go into an ASS script; its family becomes the kit's
    captionStyle.fontFamily. The view has checked the size (CLYPAI_MAX_FONT_BYTES)."""
    data = file.read()
    family, kind = _font_check(data)
    old = brand_kit.font_file.name if brand_kit.font_file else None
    brand_kit.font_file.save(f"font.{kind}", ContentFile(data), save=False)
    brand_kit.font_family = family
    brand_kit.caption_style = {**(brand_kit.caption_style or {}), "fontFamily": family}
    brand_kit.save()
    if old and old != brand_kit.font_file.name:
        brand_kit.font_file.storage.delete(old)
    return brand_kit


def _font_check(data: bytes) -> tuple[str, str]:
    """(family, "ttf" or "otf") of a font file; InvalidRequest naming `file` otherwise."""
    from fontTools.ttLib import TTFont, TTLibError
    from PIL import ImageFont

    kind = _FONT_KINDS.get(data[:4])
    if kind is None:  # a collection (ttcf), WOFF, or not a font at all
        raise InvalidRequest(_FONT_ERROR, field="file")
    try:
        font = TTFont(io.BytesIO(data), lazy=False)
        if font.flavor is not None or not {"name", "cmap", "head"} <= set(font.keys()):
            raise InvalidRequest(_FONT_ERROR, field="file")
        if not {"glyf", "CFF ", "CFF2"} & set(font.keys()):
            raise InvalidRequest(_FONT_ERROR + " with glyphs", field="file")
        for tag in font.keys():
            font[tag]  # decompile every table: a corrupt one fails here, not in libass
        face = ImageFont.truetype(io.BytesIO(data), 48)
        family = (face.getname()[0] or "").strip()
        face.getbbox("Ag")  # FreeType draws with it
    except InvalidRequest:
        raise
    except (TTLibError, Exception) as exc:  # fontTools raises many kinds on a hostile file
        raise InvalidRequest(_FONT_ERROR, field="file") from exc
    if not SAFE_FONT_FAMILY.fullmatch(family):
        raise InvalidRequest(
            "The font's family name must be 1 to 100 letters, digits, spaces or . _ ' & + -",
            field="file",
        )
    return family, kind


def brand_kit_remove_font(*, brand_kit: BrandKit) -> BrandKit:
    """Remove the kit's uploaded font; captions in its family go back to the default."""
    if brand_kit.font_file:
        brand_kit.font_file.delete(save=False)
    style = brand_kit.caption_style or {}
    if brand_kit.font_family and style.get("fontFamily") == brand_kit.font_family:
        brand_kit.caption_style = {
            **style,
            "fontFamily": DEFAULT_CAPTION_STYLE["fontFamily"],
        }
    brand_kit.font_file = ""
    brand_kit.font_family = ""
    brand_kit.save()
    return brand_kit
