from django.contrib.auth import views as auth_views
from django.urls import path

from . import media, team_views, views
from .forms import EmailAuthenticationForm

app_name = "dashboard"

accounts = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(success_url="/accounts/password/done/"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(
            success_url="/accounts/password/reset/sent/",
            email_template_name="registration/password_reset_email.txt",
        ),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url="/accounts/reset/done/"),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    *accounts,
    path("", views.home, name="home"),
    path("team/", team_views.team_switch, name="team_switch"),
    path("projects/", views.projects, name="projects"),
    path("projects/<str:project_id>/", views.project_detail, name="project"),
    path("projects/<str:project_id>/edit", views.project_edit, name="project_edit"),
    path("projects/<str:project_id>/delete", views.project_delete, name="project_delete"),
    path("clips/new/", views.clips_new, name="clips_new"),
    path("clips/new/presign", views.upload_presigned, name="upload_presign"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job"),
    path("jobs/<uuid:job_id>/status", views.job_status, name="job_status"),
    path("clips/<str:clip_id>/", views.clip_detail, name="clip"),
    path("clips/<str:clip_id>/edit", views.clip_edit, name="clip_edit"),
    path("clips/<str:clip_id>/words", views.clip_words, name="clip_words"),
    path("clips/<str:clip_id>/move", views.clip_move, name="clip_move"),
    path("clips/<str:clip_id>/delete", views.clip_delete, name="clip_delete"),
    path("clips/<str:clip_id>/export", views.clip_export, name="clip_export"),
    path("clips/<str:clip_id>/exports", views.clip_exports, name="clip_exports"),
    path("clips/<str:clip_id>/player", views.clip_player, name="clip_player"),
    path("clips/<str:clip_id>/preview.mp4", media.clip_preview, name="clip_preview"),
    path("clips/<str:clip_id>/video.mp4", media.clip_video, name="clip_video"),
    path("clips/<str:clip_id>/thumbnail.jpg", media.clip_thumbnail, name="clip_thumbnail"),
    path("clips/<str:clip_id>/captions.<str:kind>", media.clip_captions, name="clip_captions"),
    path("exports/<str:export_id>/download", media.export_download, name="export_download"),
    path("api-keys/", team_views.api_keys, name="api_keys"),
    path("api-keys/<str:key_id>/revoke", team_views.api_key_revoke, name="api_key_revoke"),
    path("brand-kits/", team_views.brand_kits, name="brand_kits"),
    path("brand-kits/new/", team_views.brand_kit_new, name="brand_kit_new"),
    path("brand-kits/<str:kit_id>/", team_views.brand_kit_detail, name="brand_kit"),
    path("brand-kits/<str:kit_id>/default", team_views.brand_kit_default, name="brand_kit_default"),
    path("brand-kits/<str:kit_id>/logo", media.brand_kit_logo, name="brand_kit_logo"),
    path("webhooks/", team_views.webhooks, name="webhooks"),
    path("webhooks/<str:endpoint_id>/", team_views.webhook_detail, name="webhook"),
    path("webhooks/<str:endpoint_id>/test", team_views.webhook_test, name="webhook_test"),
    path("webhooks/<str:endpoint_id>/rotate", team_views.webhook_rotate, name="webhook_rotate"),
    path("webhooks/<str:endpoint_id>/delete", team_views.webhook_delete, name="webhook_delete"),
    path(
        "webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/redeliver",
        team_views.webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("usage/", team_views.usage, name="usage"),
]
