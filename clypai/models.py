"""Models of the project itself.

`RenderRun` keeps what a clip's on-request full render (the Choppity API's renders)
needs beyond the clip's own `render_status`: the liveness of the worker that holds it
and how many workers it has lost, which the sweep goes by.
"""

from __future__ import annotations

from django.db import models


class RenderRun(models.Model):
    """A clip's current full render: its worker's heartbeat and its attempts so far."""

    clip = models.OneToOneField(
        "clips.Clip", primary_key=True, on_delete=models.CASCADE, related_name="render_run"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"render of {self.clip_id}"
