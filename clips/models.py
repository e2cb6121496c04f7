"""Sources, uploads, clips, their full renders and exports.

A clip is the unit of the /v1/ API and also a job: its status, progress and error
live here, in PostgreSQL, which is the truth the workers and the sweep go by.
"""

from __future__ import annotations

import uuid

from django.db import models

from clypai.ids import new_clip_id, new_export_id, new_source_id, new_upload_id

from .pipeline.timeline import TIMELINE_FORMATS


def upload_path(instance: Upload, filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower()[:8] if "." in filename else "bin"
    return f"uploads/{instance.team_id}/{instance.pk}.{suffix}"


_upload_path = upload_path  # as migration 0001 names it


# The one folder clients may write to (presigned PUTs of the Choppity API): each upload
# under `incoming/<team>/<upload uuid>/`. Nothing is read from there but to copy it out,
# and what is never taken out is purged by the sweep.
INCOMING_UPLOADS = "incoming"


def incoming_upload_dir(team_id: str, upload_uuid) -> str:
    return f"{INCOMING_UPLOADS}/{team_id}/{upload_uuid}/"


def client_writable(name: str) -> bool:
    """Whether a client may write stored file `name` (a presigned PUT's key, or one of
    the form it had before `incoming/`: `uploads/<team>/pending/...`)."""
    parts = name.split("/")
    return parts[0] == INCOMING_UPLOADS or (parts[0] == "uploads" and parts[2:3] == ["pending"])


def source_path(*, team_id: str, sha256: str, suffix: str) -> str:
    return f"sources/{team_id}/{sha256[:2]}/{sha256}{suffix}"


def clip_video_path(instance: Clip, filename: str) -> str:
    return f"clips/{instance.team_id}/{instance.pk}.mp4"


def clip_preview_path(instance: Clip, filename: str) -> str:
    return f"previews/{instance.team_id}/{instance.pk}.mp4"


def clip_thumbnail_path(instance: Clip, filename: str) -> str:
    return f"thumbnails/{instance.team_id}/{instance.pk}.jpg"


def clip_captions_path(instance: Clip, filename: str) -> str:
    return f"captions/{instance.team_id}/{instance.pk}.srt"


def export_path(instance: Export, filename: str) -> str:
    # A timeline export is a zip (the timeline, its SRT, the source or a link to it).
    suffix = "zip" if instance.format in TIMELINE_FORMATS else instance.format
    return f"exports/{instance.clip.team_id}/{instance.clip_id}/{instance.pk}.{suffix}"


class Source(models.Model):
    """A team's source video's bytes, known by their SHA-256: analysed once, shared by the
    team's clips and jobs.

    Sources (and so their analyses) are per team: were they shared across teams by the
    hash, how fast a clip finishes would tell one team whether another had already
    processed the same video. `file` is a key no client can write (a copy the server
    made), hashed and sized there, so the bytes behind a Source never change.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_source_id, editable=False)
    # Null only for sources recorded before sources were per team.
    team = models.ForeignKey(
        "projects.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="sources"
    )
    sha256 = models.CharField(max_length=64, db_index=True)
    file = models.FileField(max_length=500)
    size_bytes = models.BigIntegerField()
    probe = models.JSONField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "sha256"], name="source_unique_team_sha256")
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.sha256[:12]})"


class Analysis(models.Model):
    """One analysis stage's output for a source, keyed by what produced it.

    (source, kind, key) is unique: a transcript by faster-whisper/base in English is
    computed once, however many of a team's clips and jobs use that source, and a rerun
    after a crash finds it and moves on.
    """

    class Kind(models.TextChoices):
        TRANSCRIPT = "transcript"
        SCENES = "scenes"
        AUDIO = "audio"
        FACES = "faces"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="analyses")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text="What produced it: engine, model, options.")
    result = models.JSONField()
    seconds = models.FloatField(default=0.0, help_text="Wall time it took.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "kind"]
        verbose_name_plural = "analyses"
        constraints = [
            models.UniqueConstraint(fields=["source", "kind", "key"], name="analysis_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} of {self.source_id}"


class Upload(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_upload_id, editable=False)
    team = models.ForeignKey("projects.Team", on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(upload_to=upload_path, max_length=500)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120, blank=True, default="")
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    # The Choppity API names uploads by UUID.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.filename}"


class Job(models.Model):
    """A request for several clips of one source: the Choppity API's job, the CLI's --count.

    It goes queued → processing → done (every clip has its preview, or its full video
    when `clip_video` asks for it) or error. Its clips are ordinary `Clip` rows (`job`, `rank`),
    so they show in /v1/ as well.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        ERROR = "error"

    class ClipVideo(models.TextChoices):
        """What each clip of the job gets rendered."""

        NONE = "none"  # select only (the CLI's --no-render)
        PREVIEW = "preview"  # small fast previews (the Choppity API)
        FULL = "full"  # full-size renders (the CLI)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("projects.Team", on_delete=models.CASCADE, related_name="jobs")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="jobs")
    source_url = models.CharField(max_length=2048, blank=True, default="")
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    criteria = models.TextField(blank=True, default="")
    target_duration = models.FloatField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True, default="")
    count = models.PositiveSmallIntegerField(default=5)
    aspect_ratio = models.CharField(max_length=8, default="9:16")
    platform = models.CharField(max_length=16, blank=True, default="")
    clip_video = models.CharField(
        max_length=8, choices=ClipVideo.choices, default=ClipVideo.PREVIEW
    )
    # What each of its clips is made with (the dashboard's New clips form): captions burned
    # in or not, the layout, the brand kit.
    enable_captions = models.BooleanField(default=True)
    layout = models.CharField(max_length=8, default="auto")  # auto | fill | fit | split
    brand_kit = models.ForeignKey(
        "brandkits.BrandKit", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=32, blank=True, default="")
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=40, blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set once its generation was given back (it failed); never counted twice.
    usage_refunded = models.BooleanField(default=False)
    # Set once it got past its ingest and probe: from then on it used compute, and a
    # failure no longer gives its generation back.
    work_started = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "created_at"]),
            models.Index(fields=["status", "updated_at"]),
        ]

    def __str__(self) -> str:
        return f"job {self.id}"


class Clip(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"
        EXPORTED = "exported"

    id = models.CharField(primary_key=True, max_length=40, default=new_clip_id, editable=False)
    team = models.ForeignKey("projects.Team", on_delete=models.CASCADE, related_name="clips")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="clips")
    name = models.CharField(max_length=300, blank=True, default="")
    # Validated by the API (http/https, no credentials); a CharField so forms add no scheme.
    source_url = models.CharField(max_length=2048, blank=True, default="")
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="clips"
    )
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="clips"
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    stage = models.CharField(max_length=32, blank=True, default="")
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=40, blank=True, default="")
    error_field = models.CharField(max_length=80, blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    # Liveness of the worker that holds a processing clip; the sweep goes by it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set once its generation was given back (it failed); never counted twice.
    usage_refunded = models.BooleanField(default=False)
    # The render minutes of the full video its processing renders (a /v1 clip's, the
    # CLI's): reserved under the usage row's lock before any work (`render_reserved_*`,
    # counted in the month of `render_reserved_at`), settled to the clip's real length
    # once it completes or fails (`render_charged`: settled, never again).
    render_reserved_seconds = models.FloatField(default=0.0)
    render_reserved_at = models.DateTimeField(null=True, blank=True)
    render_charged = models.BooleanField(default=False)
    # Set once it got past its ingest and probe (compute used: a failure no longer gives
    # its generation back), and once its render began (its render minutes are kept).
    work_started = models.BooleanField(default=False)
    render_started = models.BooleanField(default=False)

    start_time = models.FloatField(null=True, blank=True)
    end_time = models.FloatField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)

    # config
    aspect_ratio = models.CharField(max_length=8, default="9:16")
    platform = models.CharField(max_length=16, blank=True, default="")
    enable_captions = models.BooleanField(default=True)
    reframing = models.BooleanField(default=True)
    layout = models.CharField(max_length=8, default="auto")  # auto | fill | fit | split
    hook_detection = models.BooleanField(default=True)
    brand_kit = models.ForeignKey(
        "brandkits.BrandKit", null=True, blank=True, on_delete=models.SET_NULL, related_name="clips"
    )
    max_duration = models.FloatField(null=True, blank=True)
    criteria = models.TextField(blank=True, default="")
    language = models.CharField(max_length=8, blank=True, default="")

    # outputs
    video = models.FileField(upload_to=clip_video_path, blank=True, max_length=500)
    thumbnail = models.FileField(upload_to=clip_thumbnail_path, blank=True, max_length=500)
    captions = models.FileField(upload_to=clip_captions_path, blank=True, max_length=500)

    metadata = models.JSONField(null=True, blank=True)
    # The clip's own words (times relative to the source), correctable before burn-in, and
    # the crop path the renderer followed: both reusable by an editor.
    words = models.JSONField(null=True, blank=True)
    crop_path = models.JSONField(null=True, blank=True)

    # A clip of a multi-clip job: its place (1 = best) and its small preview render.
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="clips"
    )
    rank = models.PositiveSmallIntegerField(null=True, blank=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    preview = models.FileField(upload_to=clip_preview_path, blank=True, max_length=500)
    # Full render on request (the Choppity API's renders): "", queued, processing, done, error.
    full_render_status = models.CharField(max_length=16, blank=True, default="")
    full_render_error = models.TextField(blank=True, default="")
    full_render_requested_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["team", "created_at", "id"]),
            models.Index(fields=["team", "updated_at", "id"]),
            models.Index(fields=["team", "status"]),
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["project", "created_at", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.name}".strip()


class Export(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_export_id, editable=False)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=8)
    quality = models.CharField(max_length=8)
    platform = models.CharField(max_length=16, blank=True, default="")
    burn_captions = models.BooleanField(default=True)
    # A timeline export's zip links to the source (too large to pack) instead of holding
    # it: its link is made fresh at each download (clips/downloads.py).
    source_linked = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to=export_path, blank=True, max_length=500)
    file_size = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # What a failed export's stage reported for programs (limits, what was found).
    error_details = models.JSONField(null=True, blank=True)
    # Liveness of the worker that holds a processing export, and how many workers it
    # lost (since it was last asked for); the sweep goes by them.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The render minutes it counts (the clip's length, reserved when it is queued) and
    # when; given back (0) only when it fails before encoding began.
    charged_seconds = models.FloatField(default=0.0)
    charged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "format", "quality", "platform", "burn_captions"],
                name="export_unique_settings",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.format}/{self.quality}"

    @property
    def is_timeline(self) -> bool:
        """A timeline for an editor (otio, fcpxml, edl), packed in a zip."""
        return self.format in TIMELINE_FORMATS


class FullRender(models.Model):
    """A clip's current full render (the Choppity API's renders, made on request): what
    it needs beyond the clip's own `full_render_status`, namely the liveness of the worker
    that holds it and how many workers it has lost, which the sweep goes by, and what
    it charged.
    """

    clip = models.OneToOneField(
        Clip, primary_key=True, on_delete=models.CASCADE, related_name="full_render"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # What this render counted against the team's render minutes, and when; a failed
    # render gives it back once (charged_seconds goes to 0).
    charged_seconds = models.FloatField(default=0.0)
    charged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Made by clypai's migrations before the model moved here; the table keeps its name.
        db_table = "clypai_renderrun"

    def __str__(self) -> str:
        return f"render of {self.clip_id}"


class Rerender(models.Model):
    """A clip's re-render after an edit (a transcript correction, a crop override, a
    re-cut): its full video and its preview, whichever it has, made again: queued →
    processing → done | error, durable like a clip's processing, so the sweep recovers
    one whose worker or queue entry was lost. An edit while one runs asks for a new one
    (`requested_at`), and the run that rendered the older clip stops."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        ERROR = "error"

    clip = models.OneToOneField(
        Clip, primary_key=True, on_delete=models.CASCADE, related_name="rerender"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, default="")
    requested_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # What this request counts against the team's render minutes, and when: reserved when
    # it is queued (its full video's length), settled to what its run rendered when it is
    # done, given back when it fails or a newer request replaces it (0 then).
    charged_seconds = models.FloatField(default=0.0)
    charged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"re-render of {self.clip_id}"
