"""What the dashboard's pages show, read from the team's rows: a job's progress in
words, a gallery of clips, a usage bar. Reads only; every query is scoped to the team."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from clips.models import Clip, Export, Job
from clips.states import TRANSCRIBE_QUEUED, TRANSCRIBED

READY = (Clip.Status.COMPLETED, Clip.Status.EXPORTED)

# A job's stage, as a person says it.
STAGE_WORDS = {
    "": "Waiting to start",
    "queued": "Waiting to start",
    "ingest": "Fetching the video",
    "probe": "Reading the video",
    "audio": "Extracting the sound",
    "transcribe": "Transcribing the speech",
    TRANSCRIBE_QUEUED: "Waiting to transcribe the speech",
    TRANSCRIBED: "Speech transcribed; choosing the best moments",
    "scenes": "Finding the shots",
    "select": "Choosing the best moments",
    "render": "Rendering the clips",
    "done": "Done",
}

# What to do about a failure, by its error code.
ADVICE = {
    "invalid_request": "Check the video (its URL, or the file) and start again.",
    "quota_exceeded": "Your team has used this month's allowance; ask its owner to raise it.",
    "processing_failed": "Try again; if it keeps failing, try another video or tell your "
    "administrator, with the job's address.",
}
DEFAULT_ADVICE = ADVICE["processing_failed"]


@dataclass(frozen=True)
class JobState:
    job: Job
    percent: int
    words: str
    finished: bool
    failed: bool
    advice: str
    ready: int
    total: int

    @property
    def key(self) -> str:
        """Changes whenever what the page shows changes (its poll compares it)."""
        return f"{self.job.status}-{self.job.stage}-{self.percent}-{self.ready}-{self.total}"


def job_state(job: Job) -> JobState:
    counts = job.clips.aggregate(total=Count("id"), ready=Count("id", filter=Q(status__in=READY)))
    total, ready = counts["total"], counts["ready"]
    percent = job.progress
    words = STAGE_WORDS.get(job.stage, job.stage.replace("_", " ").capitalize())
    if job.status == Job.Status.PROCESSING and job.stage == "render" and total:
        # The clips render after the analysis: the last fifth of the bar is theirs.
        percent = max(percent, 80 + (20 * ready) // total)
        words = f"Rendering the clips: {ready} of {total} ready"
    if job.status == Job.Status.QUEUED:
        percent, words = 0, STAGE_WORDS["queued"]
    failed = job.status == Job.Status.ERROR
    if job.status == Job.Status.DONE:
        percent, words = 100, "Done"
    if failed:
        words = "Failed"
    return JobState(
        job=job,
        percent=min(max(int(percent), 0), 100),
        words=words,
        finished=job.status in (Job.Status.DONE, Job.Status.ERROR),
        failed=failed,
        advice=ADVICE.get(job.error_code, DEFAULT_ADVICE) if failed else "",
        ready=ready,
        total=total,
    )


def gallery(clips) -> list[Clip]:
    """Ready clips, best first: a job's by rank, others by score."""
    rows = clips.filter(status__in=READY).select_related("job")
    return sorted(
        rows,
        key=lambda c: (c.rank if c.rank is not None else 10_000, -(c.score or 0), c.created_at),
    )


def breakdown(clip: Clip) -> list[tuple[str, int]]:
    """The clip's score breakdown as (feature in words, 0-100), largest first."""
    parts = ((clip.metadata or {}).get("scoreBreakdown") or {}).items()
    named = [(name.replace("_", " ").capitalize(), round(float(v) * 100)) for name, v in parts]
    return sorted(named, key=lambda item: -item[1])


def exports_of(clip: Clip):
    return Export.objects.filter(clip=clip).order_by("-created_at")


@dataclass(frozen=True)
class Bar:
    label: str
    used: float
    limit: float | None
    unit: str

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return min(round(100 * self.used / self.limit), 100)
