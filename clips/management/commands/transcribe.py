"""`python manage.py transcribe SOURCE`: a local audio or video file's transcript.

Prints the text, or with --json the transcript as stored:
{"language", "text", "segments": [{"start", "end", "text", "words": [{"word", "start",
"end", "probability"}]}], "engine", "model"}. For operators and scripts; no database.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clips.pipeline.base import StageError
from clips.pipeline.transcribe import ENGINES, transcribe


class Command(BaseCommand):
    help = "Transcribe a local audio or video file with word timings."

    def add_arguments(self, parser):
        parser.add_argument("source", help="a local audio or video file")
        parser.add_argument(
            "--engine", default=settings.CLYPAI_WHISPER_ENGINE, choices=sorted(ENGINES)
        )
        parser.add_argument(
            "--model",
            default=settings.CLYPAI_WHISPER_MODEL,
            help="tiny.en, base, or a model directory",
        )
        parser.add_argument(
            "--device", default=settings.CLYPAI_WHISPER_DEVICE, choices=["cpu", "cuda", "auto"]
        )
        parser.add_argument(
            "--language", default=None, help="ISO 639-1 code of the speech (default: detect)"
        )
        parser.add_argument("--json", action="store_true", help="print the transcript as JSON")

    def handle(self, *args, source, engine, model, device, language, **options):
        if options["verbosity"] < 2:
            # faster-whisper logs every file's duration and VAD cut at INFO.
            logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        path = Path(source)
        if not path.is_file():
            raise CommandError(f"no such file: {source}")
        try:
            result = transcribe(path, engine=engine, model=model, device=device, language=language)
        except StageError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            self.stdout.write(result.text)
