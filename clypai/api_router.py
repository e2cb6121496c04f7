"""Every /v1/ route, in one place."""

from django.urls import path

from brandkits.api import views as brandkit_views
from clips.api import views as clip_views
from projects.api import views as project_views
from webhooks.api import views as webhook_views

urlpatterns = [
    path("auth/token", project_views.TokenView.as_view(), name="auth-token"),
    path("api-keys", project_views.ApiKeyListCreateView.as_view(), name="api-key-list"),
    path("api-keys/<str:key_id>", project_views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("usage", project_views.UsageView.as_view(), name="usage"),
    path("clips", clip_views.ClipListCreateView.as_view(), name="clip-list"),
    path("clips/<str:clip_id>", clip_views.ClipDetailView.as_view(), name="clip-detail"),
    path(
        "clips/<str:clip_id>/transcript",
        clip_views.ClipTranscriptView.as_view(),
        name="clip-transcript",
    ),
    path("clips/<str:clip_id>/export", clip_views.ClipExportView.as_view(), name="clip-export"),
    path("exports/<str:export_id>", clip_views.ExportDetailView.as_view(), name="export-detail"),
    path("uploads", clip_views.UploadCreateView.as_view(), name="upload-list"),
    path("uploads/<str:upload_id>", clip_views.UploadDetailView.as_view(), name="upload-detail"),
    path("projects", project_views.ProjectListCreateView.as_view(), name="project-list"),
    path(
        "projects/<str:project_id>",
        project_views.ProjectDetailView.as_view(),
        name="project-detail",
    ),
    path("brand-kits", brandkit_views.BrandKitListCreateView.as_view(), name="brand-kit-list"),
    path(
        "brand-kits/<str:brand_kit_id>",
        brandkit_views.BrandKitDetailView.as_view(),
        name="brand-kit-detail",
    ),
    path(
        "brand-kits/<str:brand_kit_id>/logo",
        brandkit_views.BrandKitLogoView.as_view(),
        name="brand-kit-logo",
    ),
    path("webhooks", webhook_views.WebhookListCreateView.as_view(), name="webhook-list"),
    path(
        "webhooks/<str:webhook_id>",
        webhook_views.WebhookDetailView.as_view(),
        name="webhook-detail",
    ),
    path(
        "webhooks/<str:webhook_id>/rotate-secret",
        webhook_views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<str:webhook_id>/test",
        webhook_views.WebhookTestView.as_view(),
        name="webhook-test",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries",
        webhook_views.DeliveryListView.as_view(),
        name="webhook-delivery-list",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>",
        webhook_views.DeliveryDetailView.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver",
        webhook_views.DeliveryRedeliverView.as_view(),
        name="webhook-delivery-redeliver",
    ),
]
