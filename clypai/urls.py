from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from clips import downloads
from clypai import health, views

handler400 = "clypai.views.handler400"
handler404 = "clypai.views.handler404"
handler500 = "clypai.views.handler500"

urlpatterns = [
    path(
        "v1/openapi.json",
        SpectacularJSONAPIView.as_view(
            permission_classes=[AllowAny], authentication_classes=[], custom_settings={}
        ),
        name="openapi-schema",
    ),
    path("v1/", include("clypai.api_router")),
    path("choppity/", include("choppity.urls")),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="openapi-schema", permission_classes=[AllowAny], authentication_classes=[]
        ),
        name="api-docs",
    ),
    path("files/<str:token>", views.signed_file, name="signed-file"),
    # Answered by clypai.health.HealthMiddleware before other middleware; named here.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
    path("packages/<str:token>", downloads.export_package, name="export-package"),
    path("admin/", admin.site.urls),
    path("admin/rq/", include("django_rq.urls")),
    path("", include("dashboard.urls")),
]
