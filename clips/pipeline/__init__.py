"""The media pipeline, one module (or package: `select`, `render`) per stage.

A stage is a plain function from typed inputs to typed outputs (dataclasses). It knows
nothing of RQ, HTTP or the ORM, imports heavy libraries inside itself, and raises
`StageError` when it cannot do its work. `clips.processing` glues stages to models.
Nothing here imports the app's modules (models, `clips.platforms`): a render is handed
its `RenderSettings`. `frames` is the raw-frame reader the decoding stages share.
"""

from .base import StageError

__all__ = ["StageError"]
