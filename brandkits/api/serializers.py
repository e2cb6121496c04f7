from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clips.models import Upload
from clips.pipeline.captions import CAPTION_FONTS
from clypai.api.fields import (
    ChoiceField,
    StrictBooleanField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from clypai.api.responses import iso
from clypai.api.serializers import file_url

from ..models import DEFAULT_CAPTION_STYLE, DEFAULT_WATERMARK

_COLOR = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")
POSITIONS = ("top", "middle", "bottom")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


class ColorField(serializers.CharField):
    default_error_messages = {"color": "Must be a colour as #RRGGBB or #RRGGBBAA."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not _COLOR.match(value):
            self.fail("color")
        return value.upper()


class CaptionStyleIn(StrictSerializer):
    fontFamily = serializers.CharField(
        required=False,
        max_length=100,
        trim_whitespace=False,
        help_text=(
            f"A caption font: one of {', '.join(CAPTION_FONTS)}, or the family of the font "
            "file uploaded to this brand kit (PUT /v1/brand-kits/{brand_kit_id}/font). "
            "Anything else is refused (400 invalid_request on captionStyle.fontFamily)."
        ),
    )
    fontSize = StrictIntegerField(required=False, min_value=12, max_value=200)
    textColor = ColorField(required=False)
    highlightColor = ColorField(required=False, allow_null=True)
    outlineColor = ColorField(required=False)
    outlineWidth = StrictIntegerField(required=False, min_value=0, max_value=20)
    box = StrictBooleanField(required=False)
    boxColor = ColorField(required=False)
    position = ChoiceField(POSITIONS, required=False)
    uppercase = StrictBooleanField(required=False)
    maxWordsPerChunk = StrictIntegerField(required=False, min_value=1, max_value=8)


class WatermarkIn(StrictSerializer):
    position = ChoiceField(CORNERS, required=False)
    scale = StrictFloatField(required=False, min_value=0.03, max_value=0.5)
    opacity = StrictFloatField(required=False, min_value=0.0, max_value=1.0)


class BrandKitIn(StrictSerializer):
    name = serializers.CharField(max_length=200)
    primaryColor = ColorField(required=False)
    accentColor = ColorField(required=False)
    captionStyle = CaptionStyleIn(required=False)
    watermark = WatermarkIn(required=False)
    introUploadId = serializers.CharField(required=False, allow_null=True, max_length=40)
    outroUploadId = serializers.CharField(required=False, allow_null=True, max_length=40)

    def _upload(self, value):
        if value is None:
            return None
        upload = Upload.objects.filter(team=self.context["team"], pk=value).first()
        if upload is None:
            raise serializers.ValidationError("Unknown upload")
        return upload

    def validate_introUploadId(self, value):
        return self._upload(value)

    def validate_outroUploadId(self, value):
        return self._upload(value)

    def validate(self, attrs):
        for key in ("introUploadId", "outroUploadId"):
            if key in attrs:
                attrs[key.replace("UploadId", "Upload")] = attrs.pop(key)
        return attrs


class CaptionStyleOut(serializers.Serializer):
    fontFamily = serializers.CharField()
    fontSize = serializers.IntegerField()
    textColor = serializers.CharField()
    highlightColor = serializers.CharField(allow_null=True)
    outlineColor = serializers.CharField()
    outlineWidth = serializers.IntegerField()
    box = serializers.BooleanField()
    boxColor = serializers.CharField()
    position = serializers.ChoiceField(POSITIONS)
    uppercase = serializers.BooleanField()
    maxWordsPerChunk = serializers.IntegerField()


class WatermarkOut(serializers.Serializer):
    position = serializers.ChoiceField(CORNERS)
    scale = serializers.FloatField()
    opacity = serializers.FloatField()


class FontOut(serializers.Serializer):
    family = serializers.CharField(help_text="The font's family: its captionStyle.fontFamily.")
    url = serializers.CharField(help_text="A signed link to the font file.")


class BrandKitOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    primaryColor = serializers.CharField(source="primary_color")
    accentColor = serializers.CharField(source="accent_color")
    logoUrl = serializers.SerializerMethodField()
    font = serializers.SerializerMethodField(
        help_text="The brand kit's own caption font, uploaded with PUT .../font; null: none."
    )
    captionStyle = serializers.SerializerMethodField()
    watermark = serializers.SerializerMethodField()
    introUploadId = serializers.CharField(source="intro_upload_id", allow_null=True)
    outroUploadId = serializers.CharField(source="outro_upload_id", allow_null=True)
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()

    def get_logoUrl(self, obj) -> str | None:
        return file_url(obj.logo, self.context.get("request"))

    @extend_schema_field(FontOut(allow_null=True))
    def get_font(self, obj) -> dict | None:
        if not obj.font_file or not obj.font_family:
            return None
        return {
            "family": obj.font_family,
            "url": file_url(obj.font_file, self.context.get("request")),
        }

    def get_captionStyle(self, obj) -> CaptionStyleOut:
        return {**DEFAULT_CAPTION_STYLE, **(obj.caption_style or {})}

    def get_watermark(self, obj) -> WatermarkOut:
        return {**DEFAULT_WATERMARK, **(obj.watermark or {})}

    def get_createdAt(self, obj) -> str:
        return iso(obj.created_at)

    def get_updatedAt(self, obj) -> str:
        return iso(obj.updated_at)


class LogoIn(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG or WebP (multipart/form-data).")


class FontIn(serializers.Serializer):
    file = serializers.FileField(
        help_text="A TrueType (.ttf) or OpenType (.otf) font file (multipart/form-data)."
    )
