from django.contrib import admin, messages

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from .services import delivery_redeliver


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]
    fields = [
        "id",
        "event",
        "status",
        "last_response_code",
        "last_duration_ms",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
    ]
    readonly_fields = fields


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "url",
        "team",
        "enabled",
        "disabled_reason",
        "failing_since",
        "created_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["id", "url", "description", "team__name"]
    readonly_fields = [
        "id",
        "secret_hint",
        "previous_secret_expires_at",
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "created_at",
        "updated_at",
    ]
    fields = [
        "id",
        "team",
        "url",
        "description",
        "events",
        "enabled",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "secret_hint",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["team"]
    inlines = [DeliveryInline]

    @admin.display(description="secret")
    def secret_hint(self, obj):
        """Never the whole secret: its start, enough to tell two apart."""
        return f"{obj.secret[:10]}…" if obj.secret else "—"


@admin.action(description="Redeliver selected deliveries")
def redeliver(modeladmin, request, queryset):
    sent, refused = 0, []
    for delivery in queryset.select_related("endpoint"):
        try:
            delivery_redeliver(delivery=delivery)
            sent += 1
        except Exception as exc:  # a disabled endpoint, an attempt in flight
            refused.append(f"{delivery.pk}: {getattr(exc, 'message', exc)}")
    messages.success(request, f"Queued {sent} deliver{'y' if sent == 1 else 'ies'} again.")
    for line in refused:
        messages.warning(request, line)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    max_num = 0
    can_delete = False
    fields = [
        "number",
        "started_at",
        "response_code",
        "duration_ms",
        "error",
        "response_body",
    ]
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "endpoint",
        "event_type",
        "status",
        "last_response_code",
        "last_duration_ms",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["id", "event__id", "event__type", "endpoint__id", "endpoint__url"]
    list_select_related = ["endpoint", "event"]
    readonly_fields = [
        "id",
        "endpoint",
        "event",
        "status",
        "attempts",
        "round_start",
        "next_attempt_at",
        "locked_until",
        "last_response_code",
        "last_duration_ms",
        "last_error",
        "succeeded_at",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = [redeliver]

    @admin.display(description="event", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    def has_add_permission(self, request):
        return False  # deliveries come from events


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "team", "created_at"]
    list_filter = ["type"]
    search_fields = ["id", "type", "team__name"]
    readonly_fields = ["id", "team", "type", "body", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False
