import json

from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from clypai.api.errors import ApiError

from . import services
from .models import Analysis, Clip, Export, Job, Source, Upload


def queue_link(name: str) -> str:
    """A link to django-rq's page of the RQ queue `name` (its place in RQ_QUEUES)."""
    from django_rq.settings import get_queues_list

    if settings.CLYPAI_JOBS_INLINE:
        return f"{name} (in-process: no RQ)"
    names = [queue["name"] for queue in get_queues_list()]
    if name not in names:
        return name
    url = reverse("django_rq:jobs", kwargs={"queue_index": names.index(name)})
    return format_html('<a href="{}">{} queue</a>', url, name)


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["id", "team", "sha256", "size_bytes", "duration", "created_at"]
    search_fields = ["id", "sha256"]
    readonly_fields = ["id", "sha256", "created_at", "updated_at", "analyses_list"]

    @admin.display(description="analyses")
    def analyses_list(self, obj):
        rows = obj.analyses.order_by("kind", "key")
        return (
            format_html_join(
                ", ",
                '<a href="{}">{} ({})</a>',
                (
                    (reverse("admin:clips_analysis_change", args=[a.pk]), a.kind, a.key)
                    for a in rows
                ),
            )
            or "—"
        )


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    """What a source's analysis found (transcript, shots, faces, audio), for support."""

    list_display = ["source", "kind", "key", "summary", "seconds", "created_at"]
    list_filter = ["kind"]
    search_fields = ["source__id", "source__sha256", "key"]
    readonly_fields = ["source", "kind", "key", "seconds", "created_at", "summary", "pretty"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="summary")
    def summary(self, obj):
        result = obj.result
        if obj.kind == Analysis.Kind.TRANSCRIPT and isinstance(result, dict):
            words = sum(len(s.get("words", [])) for s in result.get("segments", []))
            text = (result.get("text") or "").strip()
            return f"{result.get('language') or '?'}, {words} words: {text[:120]}"
        if obj.kind == Analysis.Kind.SCENES and isinstance(result, list):
            return f"{len(result)} shots"
        if obj.kind == Analysis.Kind.FACES and isinstance(result, dict):
            return f"{len(result.get('frames') or result.get('tracks') or [])} entries"
        return ", ".join(sorted(result)) if isinstance(result, dict) else type(result).__name__

    @admin.display(description="result")
    def pretty(self, obj):
        text = json.dumps(obj.result, indent=2, ensure_ascii=False)
        if len(text) > 200_000:
            text = text[:200_000] + "\n… (cut)"
        return format_html(
            '<pre style="white-space: pre-wrap; max-height: 40rem; overflow: auto">{}</pre>', text
        )


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


@admin.action(description="Re-run")
def rerun(modeladmin, request, queryset):
    """Queue failed clips or jobs again (a job's clip re-runs with its job), charging
    the team's month again as the API would; others are left alone."""
    done, skipped = 0, 0
    for obj in queryset:
        try:
            if isinstance(obj, Clip) and obj.job_id is not None:
                ran = services.job_rerun(job=obj.job)
            elif isinstance(obj, Clip):
                ran = services.clip_rerun(clip=obj)
            else:
                ran = services.job_rerun(job=obj)
        except ApiError as exc:
            messages.error(request, f"{obj}: {exc.message}")
            continue
        done, skipped = done + ran, skipped + (not ran)
    if done:
        messages.success(request, f"Queued {done} again.")
    if skipped:
        messages.warning(request, f"Left {skipped} alone: only failed work is re-run.")


_STATE_FIELDS = ["status", "stage", "progress", "error", "error_code", "attempts", "heartbeat_at"]


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "team",
        "status",
        "progress",
        "stage",
        "short_error",
        "duration",
        "created_at",
    ]
    list_filter = ["status", "aspect_ratio", "platform", "team"]
    search_fields = ["id", "name", "source_url", "team__name", "project__name"]
    readonly_fields = ["id", "created_at", "updated_at", "queue", "job"]
    raw_id_fields = ["project", "upload", "source", "brand_kit"]
    inlines = [ExportInline]
    actions = [rerun]

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error[:80] + "…") if len(obj.error) > 80 else obj.error

    @admin.display(description="RQ")
    def queue(self, obj):
        return queue_link("render" if obj.job_id else "analysis")


class JobClipInline(admin.TabularInline):
    model = Clip
    fk_name = "job"
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["rank"]
    fields = ["rank", "id", "name", "status", "stage", "progress", "error", "score", "duration"]
    readonly_fields = fields


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "team",
        "status",
        "progress",
        "stage",
        "short_error",
        "clip_count",
        "created_at",
    ]
    list_filter = ["status", "team"]
    search_fields = ["id", "source_url", "team__name", "project__name"]
    readonly_fields = ["id", "created_at", "updated_at", "queue", *_STATE_FIELDS]
    raw_id_fields = ["project", "upload", "source", "brand_kit"]
    inlines = [JobClipInline]
    actions = [rerun]

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error[:80] + "…") if len(obj.error) > 80 else obj.error

    @admin.display(description="clips")
    def clip_count(self, obj):
        return obj.clips.count()

    @admin.display(description="RQ")
    def queue(self, obj):
        return format_html("{} · {}", queue_link("analysis"), queue_link("render"))


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
