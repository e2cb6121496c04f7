"""Brand kits: logo watermark, colours, caption font and style, intro and outro."""

from __future__ import annotations

from django.db import models

from clypai.ids import new_brand_kit_id

# What a brand kit's caption style and watermark hold when a field was never set.
DEFAULT_CAPTION_STYLE = {
    "fontFamily": "DejaVu Sans",
    "fontSize": 64,  # pixels at 1080 px frame width; scaled with the frame
    "textColor": "#FFFFFF",
    "highlightColor": None,  # None: the kit's accent colour
    "outlineColor": "#000000",
    "outlineWidth": 4,
    "box": False,
    "boxColor": "#000000B3",
    "position": "bottom",  # top | middle | bottom, inside the platform's safe zone
    "uppercase": False,
    "maxWordsPerChunk": 4,
}
DEFAULT_WATERMARK = {"position": "top-right", "scale": 0.15, "opacity": 0.8}


def _logo_path(instance: BrandKit, filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return f"brandkits/{instance.team_id}/{instance.pk}/logo.{suffix}"


def _font_path(instance: BrandKit, filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "ttf"
    return f"brandkits/{instance.team_id}/{instance.pk}/font.{suffix}"


class BrandKit(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_brand_kit_id, editable=False)
    team = models.ForeignKey("projects.Team", on_delete=models.CASCADE, related_name="brand_kits")
    name = models.CharField(max_length=200)
    primary_color = models.CharField(max_length=9, default="#FFFFFF")
    accent_color = models.CharField(max_length=9, default="#FFD60A")
    caption_style = models.JSONField(default=dict, blank=True)
    watermark = models.JSONField(default=dict, blank=True)
    logo = models.FileField(upload_to=_logo_path, blank=True, max_length=500)
    font_file = models.FileField(upload_to=_font_path, blank=True, max_length=500)
    # The uploaded font's family, as its file names it: what captionStyle.fontFamily
    # says to use it.
    font_family = models.CharField(max_length=100, blank=True, default="")
    intro_upload = models.ForeignKey(
        "clips.Upload", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outro_upload = models.ForeignKey(
        "clips.Upload", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The team's default kit: the dashboard's New clips form starts with it.
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["team", "created_at", "id"])]
        constraints = [
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(is_default=True),
                name="brand_kit_one_default_per_team",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_caption_style(self) -> dict:
        return {**DEFAULT_CAPTION_STYLE, **(self.caption_style or {})}

    @property
    def effective_watermark(self) -> dict:
        return {**DEFAULT_WATERMARK, **(self.watermark or {})}
