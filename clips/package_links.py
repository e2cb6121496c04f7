"""Signed links to a timeline export's zip that links to its source: what GET
/v1/exports/{id} answers as exportUrl (`package_url`), served by clips/downloads.py.
Knows no worker module, so the API's serializers (and the webhook payloads built with
them) can make one."""

from __future__ import annotations

import time

from django.core import signing
from django.urls import reverse

from clypai.lib.storage import absolute_url

_SALT = "clypai.export-package"


def package_url(export_id: str, *, ttl_seconds: int, request=None) -> str:
    """A link to the export's zip, with a fresh source link inside, that stops working
    after `ttl_seconds`."""
    token = signing.dumps({"x": export_id, "e": int(time.time()) + ttl_seconds}, salt=_SALT)
    return absolute_url(reverse("export-package", kwargs={"token": token}), request=request)


def package_token_read(token: str) -> str | None:
    """The export id a package link signs; None when forged or expired."""
    try:
        payload = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("e", 0) < time.time():
        return None
    return payload.get("x")
