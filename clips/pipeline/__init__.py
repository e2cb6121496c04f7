"""The media pipeline, one module per stage.

A stage is a plain function from typed inputs to typed outputs (dataclasses). It knows
nothing of RQ, HTTP or the ORM, imports heavy libraries inside itself, and raises
`StageError` when it cannot do its work. `clips.processing` glues stages to models.
"""

from .base import StageError

__all__ = ["StageError"]
