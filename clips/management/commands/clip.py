"""`python manage.py clip SOURCE`: the main job, from the command line, in-process.

It goes through the same services as the API (a local team "local" owns what it
makes), runs the pipeline in this process (no Redis, no worker), and prints the clips
it made, best first; with --json one JSON object per line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from clips.models import Clip, Job
from clips.platforms import ASPECT_RATIOS, PLATFORMS
from clips.services import ClipSpec, JobSpec, clip_create, job_create, upload_create
from clypai.api.errors import ApiError
from clypai.lib.languages import is_supported_language
from projects.models import Team
from projects.services import team_create

LOCAL_TEAM = "local"


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Command(BaseCommand):
    help = "Turn a video (file or URL) into clips and print where they are."

    def add_arguments(self, parser):
        parser.add_argument("source", help="a video file, or an http(s) URL")
        parser.add_argument("--criteria", default="", help='what to look for, e.g. "funny moments"')
        parser.add_argument("--count", type=int, default=3, help="how many clips (default 3)")
        parser.add_argument("--start", type=float, help="clip exactly this range: start (s)")
        parser.add_argument("--end", type=float, help="… and end (s)")
        parser.add_argument("--aspect", default="9:16", choices=ASPECT_RATIOS)
        parser.add_argument(
            "--platform",
            default="",
            choices=("",) + PLATFORMS,
            help="platform whose length limit applies (default: under 60 s)",
        )
        parser.add_argument(
            "--target-duration", type=float, help="aim for clips of about this many seconds"
        )
        parser.add_argument("--language", default="", help="ISO 639-1 code of the speech")
        parser.add_argument("--out", default="clips-out", help="folder for the clip files")
        parser.add_argument("--no-render", action="store_true", help="select clips, render nothing")
        parser.add_argument("--json", action="store_true", help="one JSON object per clip per line")
        parser.add_argument("--team", default=LOCAL_TEAM, help="team that owns the clips")

    def handle(self, *args, **opts):
        if (opts["start"] is None) != (opts["end"] is None):
            raise CommandError("--start and --end go together")
        if opts["start"] is not None and opts["end"] <= opts["start"]:
            raise CommandError("--end must be greater than --start")
        if not 1 <= opts["count"] <= 20:
            raise CommandError("--count must be between 1 and 20")
        if opts["language"] and not is_supported_language(opts["language"]):
            raise CommandError(f"--language {opts['language']!r} is not a supported ISO 639-1 code")
        # The command is the worker: run every job in this process, whatever REDIS_URL says.
        settings.CLYPAI_JOBS_INLINE = True
        settings.CLYPAI_JOBS_THREADS = 0  # synchronously: the command waits for its clips

        team = Team.objects.filter(name=opts["team"]).first() or team_create(name=opts["team"])
        source = opts["source"]
        source_url, upload = "", None
        if urlsplit(source).scheme in ("http", "https"):
            source_url = source
        else:
            path = Path(source).expanduser()
            if not path.is_file():
                raise CommandError(f"no such file: {source}")
            with open(path, "rb") as fh:
                upload = upload_create(
                    team=team,
                    file=File(fh, name=path.name),
                    filename=path.name,
                    sha256=_sha256(path),
                )
        try:
            if opts["start"] is not None:  # exactly this range: one /v1/-style clip
                clip = clip_create(
                    team=team,
                    spec=ClipSpec(
                        source_url=source_url,
                        upload=upload,
                        start_time=opts["start"],
                        end_time=opts["end"],
                        config={
                            "aspectRatio": opts["aspect"],
                            "criteria": opts["criteria"],
                            "language": opts["language"],
                            "platform": opts["platform"],
                        },
                    ),
                )
                clip.refresh_from_db()
                clips = [clip]
                error = clip.error if clip.status == Clip.Status.FAILED else ""
                details = clip.error_details
            else:  # the best `count` clips: a job, as the Choppity API makes them
                job = job_create(
                    team=team,
                    spec=JobSpec(
                        source_url=source_url,
                        upload=upload,
                        criteria=opts["criteria"],
                        target_duration=opts["target_duration"],
                        language=opts["language"],
                        count=opts["count"],
                        aspect_ratio=opts["aspect"],
                        platform=opts["platform"],
                        clip_video=Job.ClipVideo.NONE if opts["no_render"] else Job.ClipVideo.FULL,
                    ),
                )
                job.refresh_from_db()
                clips = list(job.clips.order_by("rank"))
                error = job.error if job.status == Job.Status.ERROR else ""
                details = job.error_details
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        if error:
            detail = f" {json.dumps(details)}" if details else ""
            raise CommandError(f"{error}{detail}")
        self._print(
            clips, out=Path(opts["out"]), as_json=opts["json"], render=not opts["no_render"]
        )

    def _print(self, clips: list[Clip], *, out: Path, as_json: bool, render: bool) -> None:
        for clip in sorted(clips, key=lambda c: -(c.score or 0)):
            row = {
                "id": clip.pk,
                "title": clip.name or None,
                "startTime": clip.start_time,
                "endTime": clip.end_time,
                "duration": clip.duration,
                "score": clip.score,
                "reason": (clip.metadata or {}).get("reason"),
            }
            if render and clip.video:
                out.mkdir(parents=True, exist_ok=True)
                target = out / f"{clip.pk}.mp4"
                with clip.video.open("rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                row["path"] = str(target.resolve())
            if as_json:
                self.stdout.write(json.dumps(row))
            else:
                where = row.get("path", "(not rendered)")
                self.stdout.write(
                    f"{row['score'] or 0:.2f}  {row['startTime']:.1f}–{row['endTime']:.1f} s  "
                    f"{row['title'] or ''}  {where}"
                )
