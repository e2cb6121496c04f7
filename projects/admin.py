from django.contrib import admin, messages

from .models import ApiKey, Membership, MonthlyUsage, Plan, Project, Team
from .selectors import usage_get
from .services import api_key_revoke


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "id",
        "monthly_clip_generations",
        "monthly_render_minutes",
        "requests_per_minute",
        "max_clip_seconds",
    ]
    search_fields = ["name", "id"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "plan", "clips_this_month", "render_minutes_this_month"]
    list_filter = ["plan"]
    search_fields = ["name", "id"]
    readonly_fields = [
        "id",
        "created_at",
        "updated_at",
        "clips_this_month",
        "render_minutes_this_month",
    ]
    fieldsets = [
        (None, {"fields": ["id", "name", "preferred_language", "created_at", "updated_at"]}),
        (
            "This month",
            {"fields": ["clips_this_month", "render_minutes_this_month"]},
        ),
        (
            "Plan and limits",
            {
                "description": "A team's own limits override its plan's; empty: the plan's "
                "(no plan: no limit).",
                "fields": [
                    "plan",
                    "monthly_clip_quota",
                    "monthly_render_minutes",
                    "requests_per_minute",
                ],
            },
        ),
    ]
    inlines = [MembershipInline]

    @admin.display(description="clips this month (used / limit)")
    def clips_this_month(self, obj):
        if obj.pk is None:
            return "—"
        return _used_of(usage_get(team=obj).clip_generations)

    @admin.display(description="render minutes this month (used / limit)")
    def render_minutes_this_month(self, obj):
        if obj.pk is None:
            return "—"
        return _used_of(usage_get(team=obj).render_minutes)


def _used_of(allowance) -> str:
    used = f"{allowance.used:g}"
    if allowance.limit is None:
        return f"{used} / no limit"
    share = round(100 * allowance.used / allowance.limit) if allowance.limit else 100
    return f"{used} / {allowance.limit:g} ({share}%)"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "team__name"]
    autocomplete_fields = ["user", "team"]
    readonly_fields = ["created_at"]


@admin.action(description="Revoke selected API keys")
def revoke_keys(modeladmin, request, queryset):
    count = 0
    for api_key in queryset.filter(revoked_at__isnull=True):
        api_key_revoke(api_key=api_key)
        count += 1
    messages.success(request, f"Revoked {count} API key(s).")


class ActiveFilter(admin.SimpleListFilter):
    title = "active"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "Active"), ("no", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "team", "created_at", "last_used_at", "revoked_at"]
    list_filter = [ActiveFilter, "team"]
    search_fields = ["prefix", "name", "team__name", "id"]
    readonly_fields = [
        "id",
        "prefix",
        "hashed_key",
        "created_at",
        "last_used_at",
        "revoked_at",
        "created_by",
    ]
    fields = [
        "id",
        "team",
        "name",
        "prefix",
        "hashed_key",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = [revoke_keys]

    def has_add_permission(self, request):
        # A key made here could never be shown: use `manage.py createapikey` or the API.
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "team", "is_default", "created_at"]
    list_filter = ["is_default", "team"]
    search_fields = ["name", "id", "team__name"]
    readonly_fields = ["id", "created_at", "updated_at"]


@admin.register(MonthlyUsage)
class MonthlyUsageAdmin(admin.ModelAdmin):
    list_display = ["team", "month", "clips_created", "render_seconds"]
    list_filter = ["month"]
    search_fields = ["team__name"]
    readonly_fields = ["updated_at"]
