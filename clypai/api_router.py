"""Every /v1/ route, in one place: the resources' viewsets on a router, and the two
endpoints that are no resource."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from brandkits.api.views import BrandKitViewSet
from clips.api.views import ClipViewSet, ExportViewSet, UploadViewSet
from projects.api.views import ApiKeyViewSet, ProjectViewSet, TokenView, UsageView
from webhooks.api.views import DeliveryViewSet, WebhookViewSet

# No trailing slash, and `path()` converters (<str:clip_id>) as the document's paths have.
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("clips", ClipViewSet, basename="clip")
router.register("exports", ExportViewSet, basename="export")
router.register("uploads", UploadViewSet, basename="upload")
router.register("projects", ProjectViewSet, basename="project")
router.register("brand-kits", BrandKitViewSet, basename="brand-kit")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register(
    "webhooks/<str:webhook_id>/deliveries", DeliveryViewSet, basename="webhook-delivery"
)

urlpatterns = [
    path("auth/token", TokenView.as_view(), name="auth-token"),
    path("usage", UsageView.as_view(), name="usage"),
    *router.urls,
]
