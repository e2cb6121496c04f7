from django.contrib import admin

from .models import Clip, Export, Source, Upload


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["id", "team", "sha256", "size_bytes", "duration", "created_at"]
    search_fields = ["id", "sha256"]
    readonly_fields = ["id", "sha256", "created_at", "updated_at"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["id", "filename", "team", "size_bytes", "created_at"]
    list_filter = ["team"]
    search_fields = ["id", "filename", "sha256", "team__name"]
    readonly_fields = ["id", "sha256", "size_bytes", "created_at"]
    raw_id_fields = ["source"]


class ExportInline(admin.TabularInline):
    model = Export
    extra = 0
    readonly_fields = [
        "id",
        "format",
        "quality",
        "platform",
        "burn_captions",
        "status",
        "file_size",
        "created_at",
    ]
    fields = readonly_fields


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "team", "project", "status", "duration", "created_at"]
    list_filter = ["status", "aspect_ratio", "platform", "team"]
    search_fields = ["id", "name", "source_url", "team__name", "project__name"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["project", "upload", "source", "brand_kit"]
    inlines = [ExportInline]


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "clip",
        "format",
        "quality",
        "platform",
        "status",
        "file_size",
        "created_at",
    ]
    list_filter = ["status", "format", "quality", "platform"]
    search_fields = ["id", "clip__id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["clip"]
