"""Writes for brand kits."""

from __future__ import annotations

from django.core.files.base import File
from django.db import transaction

from clypai.api.errors import InvalidRequest
from projects.models import Team

from .models import BrandKit

LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
MAX_LOGO_SIDE = 4096

_COLUMNS = {
    "name": "name",
    "primaryColor": "primary_color",
    "accentColor": "accent_color",
    "introUpload": "intro_upload",
    "outroUpload": "outro_upload",
}


def _apply(brand_kit: BrandKit, data: dict) -> None:
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
