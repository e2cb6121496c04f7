"""Public ids: a short type prefix and a random base62 body (`clip_3kTq9xY2mB7pLw4Z`)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
BODY_LENGTH = 16  # 62**16 ≈ 4.8e28: collisions are not a concern.


def random_base62(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_base62(BODY_LENGTH)}"


# Module-level callables so migrations can reference them as field defaults.
def new_team_id() -> str:
    return new_id("team")


def new_project_id() -> str:
    return new_id("proj")


def new_brand_kit_id() -> str:
    return new_id("brand")


def new_clip_id() -> str:
    return new_id("clip")


def new_upload_id() -> str:
    return new_id("upl")


def new_export_id() -> str:
    return new_id("exp")


def new_api_key_id() -> str:
    return new_id("key")


def new_webhook_id() -> str:
    return new_id("whk")


def new_source_id() -> str:
    return new_id("src")


def new_webhook_event_id() -> str:
    return new_id("evt")


def new_webhook_delivery_id() -> str:
    return new_id("whd")
