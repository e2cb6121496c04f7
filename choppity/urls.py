"""Every /choppity/ route; anything else under /choppity/ answers NOT_FOUND in the
document's shape. Mounted at /choppity/ by clypai/urls.py."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.permissions import AllowAny

from . import views
from .errors import unknown_path
from .schema import ChoppitySchemaGenerator

urlpatterns = [
    path("v1/clips", views.ClipsView.as_view(), name="choppity-clips"),
    path("v1/clips/<str:jobId>", views.JobView.as_view(), name="choppity-job"),
    path(
        "v1/clips/<str:clipId>/renders",
        views.ClipRendersView.as_view(),
        name="choppity-clip-renders",
    ),
    path("v1/renders/<str:renderId>", views.RenderView.as_view(), name="choppity-render"),
    path("v1/uploads", views.UploadsView.as_view(), name="choppity-uploads"),
    path(
        "v1/openapi.json",
        SpectacularJSONAPIView.as_view(
            generator_class=ChoppitySchemaGenerator,
            permission_classes=[AllowAny],
            authentication_classes=[],
        ),
        name="choppity-openapi-schema",
    ),
    re_path(r"^.*$", unknown_path),
]
