"""The dashboard's pages for clips: projects, New clips, a job's progress and gallery, a
clip's editor and exports. Views parse a form, call one service or selector, and render;
every row is looked up within the member's team (another team's is a 404)."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from choppity.services import storage_takes_presigned_puts, upload_presign, upload_resolve
from clips import services as clip_services
from clips.models import Clip, Export, Job, Rerender
from clips.selectors import clip_transcript_context
from clypai.api.errors import ApiError
from projects import services as project_services
from projects.models import Project

from . import selectors
from .forms import (
    LANGUAGE_NAMES,
    LAYOUT_NAMES,
    ClipEditForm,
    ClipMoveForm,
    ExportForm,
    NewClipsForm,
    ProjectForm,
    add_service_error,
)
from .team import team_view


@require_safe
@team_view
def home(request):
    return redirect("dashboard:projects")


@team_view
def projects(request):
    """The team's projects, and a form that makes one."""
    status = 200
    if request.method == "POST":
        form = ProjectForm(request.POST)
        if form.is_valid():
            project = project_services.project_create(
                team=request.team,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
            messages.success(request, f"Created the project {project.name}.")
            return redirect("dashboard:project", project_id=project.pk)
        status = 400
    else:
        form = ProjectForm()
    rows = request.team.projects.annotate(
        clip_count=Count("clips", filter=Q(clips__status__in=selectors.READY), distinct=True),
        job_count=Count("jobs", distinct=True),
    ).order_by("-is_default", "name")
    jobs = Job.objects.filter(team=request.team).select_related("project")[:10]
    return render(
        request,
        "dashboard/projects.html",
        {"projects": rows, "jobs": [selectors.job_state(j) for j in jobs], "form": form},
        status=status,
    )


def _project(request, project_id: str) -> Project:
    return get_object_or_404(Project, pk=project_id, team=request.team)


def _project_page(request, project, *, form=None, status=200):
    jobs = project.jobs.all()[:20]
    if form is None:
        form = ProjectForm(initial={"name": project.name, "description": project.description})
    return render(
        request,
        "dashboard/project.html",
        {
            "project": project,
            "form": form,
            "jobs": [selectors.job_state(j) for j in jobs],
            "clips": selectors.gallery(project.clips.all()),
        },
        status=status,
    )


@require_safe
@team_view
def project_detail(request, project_id: str):
    return _project_page(request, _project(request, project_id))


@require_POST
@team_view
def project_edit(request, project_id: str):
    """Rename a project (and change its description)."""
    project = _project(request, project_id)
    form = ProjectForm(request.POST)
    if not form.is_valid():
        return _project_page(request, project, form=form, status=400)
    project_services.project_update(
        project=project,
        name=form.cleaned_data["name"],
        description=form.cleaned_data["description"],
    )
    messages.success(request, f"Saved the project {project.name}.")
    return redirect("dashboard:project", project_id=project.pk)


@require_POST
@team_view
def project_delete(request, project_id: str):
    """Delete an empty project; the service keeps the default one and any with clips."""
    project = _project(request, project_id)
    try:
        project_services.project_delete(project=project)
    except ApiError as exc:
        messages.error(request, f"The project was not deleted: {exc.message}.")
        return redirect("dashboard:project", project_id=project.pk)
    messages.success(request, f"Deleted the project {project.name}.")
    return redirect("dashboard:projects")


@team_view
def clips_new(request):
    """The New clips form: a video (file or URL) and how to cut it; starts a job of
    several clips, as POST /choppity/v1/clips does, and leads to its page."""
    team = request.team
    if request.method == "POST":
        form = NewClipsForm(request.POST, request.FILES, team=team)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    upload = None
                    if data["video_file"]:
                        file = data["video_file"]
                        upload = clip_services.upload_create(
                            team=team,
                            file=file,
                            filename=file.name,
                            content_type=file.content_type or "",
                            sha256=file.sha256,
                        )
                    elif data["upload_id"]:
                        upload = upload_resolve(team=team, upload_id=data["upload_id"])
                    job = clip_services.job_create(
                        team=team,
                        spec=clip_services.JobSpec(
                            source_url=data["video_url"] or "",
                            upload=upload,
                            project=data["project"],
                            criteria=data["criteria"],
                            target_duration=data["target_length"],
                            language=data["language"] or team.preferred_language or "",
                            aspect_ratio=data["aspect_ratio"],
                            clip_video=Job.ClipVideo.PREVIEW,
                            enable_captions=data["captions"],
                            layout=data["layout"],
                            brand_kit=data["brand_kit"],
                        ),
                    )
            except ApiError as exc:
                add_service_error(
                    form,
                    exc,
                    {
                        "source": "video_url",
                        "source.upload_id": "video_file",
                        "file": "video_file",
                        "project": "project",
                        "brand_kit": "brand_kit",
                    },
                )
            else:
                return redirect("dashboard:job", job_id=job.pk)
        status = 400
    else:
        # "Make new clips" on a project's page starts with that project.
        chosen = team.projects.filter(pk=request.GET.get("project") or "").first()
        form = NewClipsForm(team=team, initial={"project": chosen.pk} if chosen else None)
        status = 200
    return render(
        request,
        "dashboard/clips_new.html",
        {"form": form, "presigned": storage_takes_presigned_puts()},
        status=status,
    )


@require_POST
@team_view
def upload_presigned(request):
    """A presigned PUT for the New clips form's file (S3/MinIO): JSON {upload_id, url}."""
    from django.http import JsonResponse

    try:
        size = int(request.POST.get("size") or 0) or None
        found = upload_presign(
            team=request.team, filename=request.POST.get("filename", ""), size=size
        )
    except (ValueError, ApiError) as exc:
        return JsonResponse({"error": getattr(exc, "message", str(exc))}, status=400)
    return JsonResponse({"upload_id": str(found.upload_id), "url": found.url})


def _job(request, job_id) -> Job:
    return get_object_or_404(Job.objects.select_related("project"), pk=job_id, team=request.team)


@require_safe
@team_view
def job_detail(request, job_id):
    job = _job(request, job_id)
    state = selectors.job_state(job)
    return render(
        request,
        "dashboard/job.html",
        {"state": state, "job": job, "clips": selectors.gallery(job.clips.all())},
    )


@require_safe
@team_view
def job_status(request, job_id):
    """The job page's live part, polled by htmx: its progress, and its gallery when the
    clips that are ready changed (out of band). Nothing (204) while nothing changed, so a
    preview being watched is not reloaded."""
    job = _job(request, job_id)
    state = selectors.job_state(job)
    if request.GET.get("key") == state.key:
        return HttpResponse(status=204)
    shown = request.GET.get("ready")
    return render(
        request,
        "dashboard/_job_status.html",
        {
            "state": state,
            "job": job,
            "clips": selectors.gallery(job.clips.all()),
            "gallery_changed": shown != str(state.ready),
        },
    )


def _clip(request, clip_id: str) -> Clip:
    return get_object_or_404(
        Clip.objects.select_related("project", "job", "brand_kit", "source"),
        pk=clip_id,
        team=request.team,
    )


def _clip_page(request, clip, *, edit_form=None, export_form=None, status=200):
    team = request.team
    ready = clip.status in selectors.READY
    if edit_form is None:
        edit_form = ClipEditForm(
            team=team,
            initial={
                "start": clip.start_time,
                "end": clip.end_time,
                "layout": clip.layout,
                "brand_kit": clip.brand_kit_id,
                "captions": clip.enable_captions,
            },
        )
    return render(
        request,
        "dashboard/clip.html",
        {
            "clip": clip,
            "ready": ready,
            "edit_form": edit_form,
            "export_form": export_form or ExportForm(initial={"burn_captions": True}),
            "move_form": ClipMoveForm(
                team=team, initial={"project": clip.project_id}, auto_id="move-%s"
            ),
            "transcript": clip_transcript_context(clip) if clip.source_id else [],
            "words": list(enumerate(clip.words or [])),
            "exports": selectors.exports_of(clip),
            "exports_pending": selectors.exports_of(clip)
            .filter(status__in=(Export.Status.QUEUED, Export.Status.PROCESSING))
            .exists(),
            "rerendering": _rerendering(clip),
            "breakdown": selectors.breakdown(clip),
            "source_duration": clip.source.duration if clip.source else None,
            "layout_names": LAYOUT_NAMES,
            "language_names": LANGUAGE_NAMES,
        },
        status=status,
    )


@require_safe
@team_view
def clip_detail(request, clip_id: str):
    return _clip_page(request, _clip(request, clip_id))


@require_POST
@team_view
def clip_edit(request, clip_id: str):
    """Save: cut the clip again at Start–End, with its layout, brand kit and captions,
    and render its preview again."""
    clip = _clip(request, clip_id)
    form = ClipEditForm(request.POST, team=request.team)
    if form.is_valid():
        data = form.cleaned_data
        try:
            changed = clip_services.clip_recut(
                clip=clip,
                start=data["start"],
                end=data["end"],
                layout=data["layout"],
                brand_kit=data["brand_kit"],
                enable_captions=data["captions"],
            )
        except ApiError as exc:
            add_service_error(form, exc, {"start": "start", "end": "end", "layout": "layout"})
        else:
            if changed:
                messages.success(request, "Saved. The preview is being rendered again.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("dashboard:clip", clip_id=clip.pk)
    return _clip_page(request, clip, edit_form=form, status=400)


@require_POST
@team_view
def clip_move(request, clip_id: str):
    """Move the clip to another of the team's projects; back to its page. A project that
    is not one of the team's is a 404, as any other team's row."""
    clip = _clip(request, clip_id)
    form = ClipMoveForm(request.POST, team=request.team)
    if not form.is_valid():
        raise Http404("No such project in this team")
    project = form.cleaned_data["project"]
    if clip_services.clip_move(clip=clip, project=project):
        messages.success(request, f"Moved the clip to {project.name}.")
    else:
        messages.info(request, f"The clip is already in {project.name}.")
    return redirect("dashboard:clip", clip_id=clip.pk)


@require_POST
@team_view
def clip_delete(request, clip_id: str):
    """Delete the clip, its exports and their files; back to its project."""
    clip = _clip(request, clip_id)
    project_id, name = clip.project_id, clip.name or "Untitled clip"
    clip_services.clip_delete(clip=clip)
    messages.success(request, f"Deleted the clip {name}.")
    return redirect("dashboard:project", project_id=project_id)


@require_POST
@team_view
def clip_words(request, clip_id: str):
    """Transcript corrections: the words that changed, corrected for the captions."""
    clip = _clip(request, clip_id)
    corrections = []
    for index, word in enumerate(clip.words or []):
        given = request.POST.get(f"word-{index}")
        if given is not None and given.strip() and given.strip() != word["word"].strip():
            corrections.append({"index": index, "word": given.strip()})
    if not corrections:
        messages.info(request, "No word was changed.")
        return redirect("dashboard:clip", clip_id=clip.pk)
    try:
        clip_services.clip_words_correct(clip=clip, corrections=corrections)
    except ApiError as exc:
        messages.error(request, f"The corrections were not saved: {exc.message}")
    else:
        count = len(corrections)
        messages.success(
            request,
            f"Corrected {count} word{'s' if count != 1 else ''}. "
            "The captions are updated and the preview is being rendered again.",
        )
    return redirect(reverse("dashboard:clip", kwargs={"clip_id": clip.pk}) + "#transcript")


@require_POST
@team_view
def clip_export(request, clip_id: str):
    clip = _clip(request, clip_id)
    form = ExportForm(request.POST)
    if form.is_valid():
        try:
            clip_services.export_request(
                clip=clip,
                format=form.cleaned_data["format"],
                quality=form.cleaned_data["quality"],
                platform=None,
                burn_captions=form.cleaned_data["burn_captions"],
            )
        except ApiError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Export started; its Download link appears when ready.")
            return redirect(reverse("dashboard:clip", kwargs={"clip_id": clip.pk}) + "#exports")
    return _clip_page(request, clip, export_form=form, status=400)


@require_safe
@team_view
def clip_exports(request, clip_id: str):
    """The clip's exports (polled by htmx while one is on its way)."""
    clip = _clip(request, clip_id)
    exports = selectors.exports_of(clip)
    pending = exports.filter(status__in=(Export.Status.QUEUED, Export.Status.PROCESSING)).exists()
    return render(
        request,
        "dashboard/_exports.html",
        {"clip": clip, "exports": exports, "exports_pending": pending},
    )


def _rerendering(clip: Clip) -> bool:
    """Whether the clip is being rendered again (its durable re-render is not over)."""
    return Rerender.objects.filter(
        clip=clip, status__in=(Rerender.Status.QUEUED, Rerender.Status.PROCESSING)
    ).exists()


@require_safe
@team_view
def clip_player(request, clip_id: str):
    """The clip's player (polled by htmx while its preview renders again)."""
    clip = _clip(request, clip_id)
    rerendering = _rerendering(clip)
    return render(request, "dashboard/_player.html", {"clip": clip, "rerendering": rerendering})
