"""Strict request fields: JSON types as JSON has them, and unknown fields named."""

from __future__ import annotations

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """A request serializer that names unknown fields instead of silently dropping them."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {serializers.api_settings.NON_FIELD_ERRORS_KEY: ["Expected a JSON object"]}
            )
        unknown = [key for key in data if key not in self.fields or self.fields[key].read_only]
        if unknown:
            raise serializers.ValidationError({unknown[0]: [f"Unknown field {unknown[0]!r}"]})
        request = self.context.get("request")
        if request is None or _is_json(request):
            for key, value in data.items():
                if not _a_string_where_one_belongs(self.fields[key], value):
                    raise serializers.ValidationError({key: ["Must be a string."]})
        return super().to_internal_value(data)


def _a_string_where_one_belongs(field: serializers.Field, value) -> bool:
    """False for a JSON number, boolean, object or array given to a text field (or among a
    list of them): DRF's CharField would turn 3 into "3" and carry on."""
    if value is None:
        return True
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return all(_a_string_where_one_belongs(field.child, item) for item in value)
    return not isinstance(field, serializers.CharField) or isinstance(value, str)


class StrictBooleanField(serializers.BooleanField):
    """JSON true/false only; DRF's own also takes "yes", 1, "on"…"""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        # Multipart forms carry only strings: accept their spelling of booleans there.
        request = self.context.get("request")
        if request is not None and not _is_json(request) and data in ("true", "false"):
            return data == "true"
        self.fail("invalid")


class StrictFloatField(serializers.FloatField):
    """A JSON number (not a string, not a boolean, not NaN or infinity)."""

    default_error_messages = {"invalid": "Must be a number."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str):
            request = self.context.get("request")
            if request is None or _is_json(request):
                self.fail("invalid")
        value = super().to_internal_value(data)
        if value != value or value in (float("inf"), float("-inf")):
            self.fail("invalid")
        return value


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return super().to_internal_value(data)


def _is_json(request) -> bool:
    return (request.content_type or "").split(";")[0].strip() in ("application/json", "")


class ChoiceField(serializers.ChoiceField):
    """A choice whose error lists the allowed values."""

    def __init__(self, choices, **kwargs):
        super().__init__(choices, **kwargs)
        allowed = ", ".join(str(c) for c in self.choices)
        self.error_messages["invalid_choice"] = f'"{{input}}" is not one of: {allowed}.'

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)
