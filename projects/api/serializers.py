from __future__ import annotations

from rest_framework import serializers

from clypai.api.fields import StrictSerializer
from clypai.api.responses import iso


class ProjectIn(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ProjectOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    isDefault = serializers.BooleanField(source="is_default")
    clipCount = serializers.IntegerField(source="clip_count", default=0)
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()

    def get_createdAt(self, obj) -> str:
        return iso(obj.created_at)

    def get_updatedAt(self, obj) -> str:
        return iso(obj.updated_at)


class TokenIn(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    teamId = serializers.CharField(
        required=False, max_length=40, help_text="Which of the user's teams; required with several."
    )


class TokenOut(serializers.Serializer):
    token = serializers.CharField()
    tokenType = serializers.CharField(default="Bearer")
    expiresAt = serializers.CharField()
    teamId = serializers.CharField()


class ApiKeyIn(StrictSerializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=120)


class ApiKeyOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    active = serializers.BooleanField(source="is_active")
    createdAt = serializers.SerializerMethodField()
    lastUsedAt = serializers.SerializerMethodField()
    revokedAt = serializers.SerializerMethodField()

    def get_createdAt(self, obj) -> str:
        return iso(obj.created_at)

    def get_lastUsedAt(self, obj) -> str | None:
        return iso(obj.last_used_at)

    def get_revokedAt(self, obj) -> str | None:
        return iso(obj.revoked_at)


class ApiKeyCreatedOut(ApiKeyOut):
    key = serializers.CharField(help_text="The full key. Shown once; store it now.")


class PlanOut(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    name = serializers.CharField()


class AllowanceOut(serializers.Serializer):
    used = serializers.FloatField()
    limit = serializers.FloatField(allow_null=True, help_text="null: no limit")
    remaining = serializers.FloatField(allow_null=True)


class RateLimitOut(serializers.Serializer):
    limit = serializers.IntegerField(help_text="Requests per window, per API key")
    windowSeconds = serializers.IntegerField()


class UsageOut(serializers.Serializer):
    plan = PlanOut()
    periodStart = serializers.CharField()
    resetAt = serializers.CharField()
    clipGenerations = AllowanceOut()
    renderMinutes = AllowanceOut()
    rateLimit = RateLimitOut()


def usage_data(report) -> dict:
    def allowance(a, whole: bool):
        number = (lambda v: v if v is None else int(v)) if whole else (lambda v: v)
        return {
            "used": number(a.used),
            "limit": number(a.limit),
            "remaining": number(a.remaining),
        }

    from clypai.api.limits import RATE_LIMIT_WINDOW_SECONDS

    return {
        "plan": {
            "id": report.plan.pk if report.plan else None,
            "name": report.plan.name if report.plan else "Custom",
        },
        "periodStart": iso(report.period_start),
        "resetAt": iso(report.reset_at),
        "clipGenerations": allowance(report.clip_generations, True),
        "renderMinutes": allowance(report.render_minutes, False),
        "rateLimit": {
            "limit": report.requests_per_minute,
            "windowSeconds": RATE_LIMIT_WINDOW_SECONDS,
        },
    }
