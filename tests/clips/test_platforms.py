"""clips.platforms: the one table of platforms, aspect ratios, formats and qualities, which
the API's enums, its OpenAPI documents and the `clip` command all read, and which the
media pipeline never imports."""

from __future__ import annotations

import pytest

from clips import platforms
from clips.api import serializers
from clips.management.commands.clip import Command as ClipCommand
from clips.platforms import (
    ASPECT_RATIOS,
    EXPORT_FORMATS,
    EXPORT_QUALITIES,
    PLATFORM_PRESETS,
    PLATFORMS,
    default_clip_seconds,
    export_settings,
)

ENUMS = {
    "aspectRatio": ASPECT_RATIOS,
    "platform": PLATFORMS,
    "format": EXPORT_FORMATS,
    "quality": EXPORT_QUALITIES,
}


def _choices(serializer_class, name: str) -> tuple[str, ...]:
    return tuple(serializer_class().fields[name].choices)


def test_the_api_s_choice_fields_are_the_platform_tables():
    assert _choices(serializers.ClipConfigIn, "aspectRatio") == ASPECT_RATIOS
    assert _choices(serializers.ClipConfigIn, "platform") == PLATFORMS
    assert _choices(serializers.ExportIn, "format") == EXPORT_FORMATS
    assert _choices(serializers.ExportIn, "quality") == EXPORT_QUALITIES
    assert _choices(serializers.ExportIn, "platform") == PLATFORMS
    for output in (serializers.ExportOut, serializers.ExportPendingOut):
        assert _choices(output, "format") == EXPORT_FORMATS
        assert _choices(output, "quality") == EXPORT_QUALITIES


def test_the_enums_have_one_home():
    from clips import models

    for name in ("ASPECT_RATIOS", "PLATFORMS", "EXPORT_FORMATS", "EXPORT_QUALITIES"):
        assert not hasattr(models, name)
        assert getattr(serializers, name) is getattr(platforms, name)


def _enum_values(document: dict, schema: dict) -> set:
    """The enum values a property allows, through $ref, allOf, oneOf and anyOf."""
    if "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        return _enum_values(document, document["components"]["schemas"][name])
    values = set(schema.get("enum") or ())
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, ()):
            values |= _enum_values(document, part)
    return values - {None, ""}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/v1/openapi.json", "/choppity/v1/openapi.json"])
def test_the_openapi_documents_enumerate_the_platform_tables(anon, url):
    document = anon.get(url).json()
    seen = set()
    for schema_name, schema in document["components"]["schemas"].items():
        if "Webhook" in schema_name:  # a webhook's `format` is its events' words
            continue
        for name, prop in (schema.get("properties") or {}).items():
            values = _enum_values(document, prop) if name in ENUMS else set()
            if values:
                assert values == set(ENUMS[name]), name
                seen.add(name)
    if url == "/v1/openapi.json":
        assert seen == set(ENUMS)
        enums = document["components"]["schemas"]
        assert enums["AspectRatioEnum"]["enum"] == list(ASPECT_RATIOS)  # in the table's order
        assert enums["PlatformEnum"]["enum"] == list(PLATFORMS)


def test_the_clip_command_offers_the_platform_tables():
    parser = ClipCommand().create_parser("manage.py", "clip")
    actions = {action.dest: action for action in parser._actions}

    assert tuple(actions["aspect"].choices) == ASPECT_RATIOS
    assert tuple(actions["platform"].choices) == ("",) + PLATFORMS


def test_every_platform_has_both_lengths():
    assert set(PLATFORM_PRESETS) == set(PLATFORMS)
    for name, preset in PLATFORM_PRESETS.items():
        # what selection offers by default, and the longest upload the platform takes
        assert 0 < preset.clip_seconds <= preset.max_seconds, name
        assert default_clip_seconds(name, "16:9") == preset.clip_seconds
        assert export_settings(aspect="9:16", quality="low", platform=name).max_seconds == (
            preset.max_seconds
        )
    # the two facts that used to be one name in two places
    assert PLATFORM_PRESETS["tiktok"].clip_seconds == 59.0
    assert PLATFORM_PRESETS["tiktok"].max_seconds == 600
    assert default_clip_seconds("youtube", "9:16") == 59.0  # a Short
    assert default_clip_seconds("", "9:16") == 59.0


def test_the_pipeline_imports_no_app_module():
    import ast
    from pathlib import Path

    import clips.pipeline

    root = Path(clips.pipeline.__file__).parent
    app = ("clips", "clypai", "projects", "brandkits", "webhooks", "django", "rest_framework")
    for path in root.rglob("*.py"):
        package = ["clips", *path.relative_to(root.parent).parent.parts]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                continue
            for name in names:
                if name.split(".")[0] in app:
                    assert name.startswith(("clips.pipeline", "clypai.lib")), (path, name)
