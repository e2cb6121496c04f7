"""The Choppity-compatible API, served unchanged at /choppity/v1/.

`../shared/seeds/choppity-clips-api.txt` is the contract: field names, status words,
units (Unix milliseconds, seconds with two decimals, scores 0–1) and its one error
shape, `{"error": {"code": "BAD_REQUEST", "message": "…"}}`. It runs over the same
models and pipeline as /v1/: a Choppity job is a `clips.Job`, its clips are `Clip` rows.
"""
