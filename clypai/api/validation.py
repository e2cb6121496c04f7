"""What both APIs' exception handlers share: DRF's nested validation error detail
reduced to the one field and message an error object reports.

/v1/ and /choppity/v1/ wrap the pair in their own shapes (`clypai.api.errors`,
`choppity.errors`); the field path and the wording are the same on both.
"""

from __future__ import annotations

from typing import Any

# Keys DRF and Django use for errors of the whole object rather than of one field.
_WHOLE_OBJECT_KEYS = ("non_field_errors", "__all__")


def first_validation_error(detail: Any) -> tuple[str | None, str]:
    """The first error of DRF's nested detail: its dotted field path (None for errors of
    the whole object) and a message that names the field when it does not already."""
    field, message = _first(detail, ())
    if field and field.split(".")[-1] not in message:
        message = f"{field}: {message}"
    return field, message


def _first(detail: Any, path: tuple[str, ...]) -> tuple[str | None, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            key_path = path if key in _WHOLE_OBJECT_KEYS else path + (str(key),)
            return _first(value, key_path)
    if isinstance(detail, list) and detail:
        first = detail[0]
        if isinstance(first, (dict, list)):
            # A list of nested objects: name the index, as JSON paths do.
            for index, item in enumerate(detail):
                if item:
                    return _first(item, path + (str(index),))
        return _first(first, path)
    field = ".".join(path) if path else None
    return field, str(detail)
