from django.contrib import admin

from .models import BrandKit


@admin.register(BrandKit)
class BrandKitAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "team", "primary_color", "accent_color", "created_at"]
    list_filter = ["team"]
    search_fields = ["name", "id", "team__name"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["intro_upload", "outro_upload"]
