"""/v1/brand-kits and their logo."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser

from clypai.api.errors import InvalidRequest, PayloadTooLarge
from clypai.api.responses import ok
from clypai.api.schema import envelope, errors
from clypai.api.serializers import DeletedOut
from clypai.api.views import TeamViewSet
from clypai.lib.uploads import upload_too_large

from .. import services
from ..models import BrandKit
from ..selectors import BRAND_KIT_SORTS
from .serializers import BrandKitIn, BrandKitOut, FontIn, LogoIn


class BrandKitViewSet(TeamViewSet):
    queryset = BrandKit.objects.all()
    lookup_url_kwarg = "brand_kit_id"
    not_found = "Brand kit not found"
    sorts = BRAND_KIT_SORTS

    @extend_schema(
        operation_id="brand_kits_list",
        summary="List brand kits",
        responses={200: envelope(BrandKitOut, many=True, paginated=True), **errors(400, 401)},
        tags=["Brand kits"],
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        data = BrandKitOut(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        operation_id="brand_kits_create",
        summary="Create brand kit",
        request=BrandKitIn,
        responses={201: envelope(BrandKitOut), **errors(400, 401)},
        tags=["Brand kits"],
    )
    def create(self, request):
        brand_kit = services.brand_kit_create(team=self.team, data=self.validated(BrandKitIn))
        return ok(BrandKitOut(brand_kit, context={"request": request}).data, status_code=201)

    @extend_schema(
        operation_id="brand_kits_retrieve",
        summary="Get brand kit",
        responses={200: envelope(BrandKitOut), **errors(401, 404)},
        tags=["Brand kits"],
    )
    def retrieve(self, request, brand_kit_id: str):
        return ok(BrandKitOut(self.get_object(), context={"request": request}).data)

    @extend_schema(
        operation_id="brand_kits_update",
        summary="Update brand kit",
        request=BrandKitIn,
        responses={200: envelope(BrandKitOut), **errors(400, 401, 404)},
        tags=["Brand kits"],
    )
    def partial_update(self, request, brand_kit_id: str):
        brand_kit = self.get_object()
        data = self.validated(BrandKitIn, partial=True)
        brand_kit = services.brand_kit_update(brand_kit=brand_kit, data=data)
        return ok(BrandKitOut(brand_kit, context={"request": request}).data)

    @extend_schema(
        operation_id="brand_kits_destroy",
        summary="Delete brand kit",
        description="Clips that used it keep their renders and lose the reference.",
        responses={200: envelope(DeletedOut), **errors(401, 404)},
        tags=["Brand kits"],
    )
    def destroy(self, request, brand_kit_id: str):
        services.brand_kit_delete(brand_kit=self.get_object())
        return ok({"id": brand_kit_id, "deleted": True})

    @extend_schema(
        operation_id="brand_kits_logo_upload",
        summary="Upload or replace the logo",
        request={"multipart/form-data": LogoIn},
        responses={200: envelope(BrandKitOut), **errors(400, 401, 404, 413)},
        tags=["Brand kits"],
    )
    @action(detail=True, methods=["put"], parser_classes=[MultiPartParser], name="Brand Kit Logo")
    def logo(self, request, brand_kit_id: str):
        brand_kit = self.get_object()
        limit = settings.CLYPAI_MAX_LOGO_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise PayloadTooLarge("Logo is larger than the limit", details={"limit": limit})
        if (request.content_type or "").split(";")[0].strip() != "multipart/form-data":
            raise InvalidRequest("Send the logo as multipart/form-data", field="file")
        uploaded = request.FILES.get("file")
        if upload_too_large(request) or (uploaded is not None and uploaded.size > limit):
            raise PayloadTooLarge("Logo is larger than the limit", details={"limit": limit})
        if uploaded is None:
            raise InvalidRequest("This field is required", field="file")
        brand_kit = services.brand_kit_set_logo(brand_kit=brand_kit, file=uploaded)
        return ok(BrandKitOut(brand_kit, context={"request": request}).data)

    @extend_schema(
        operation_id="brand_kits_logo_delete",
        summary="Remove the logo",
        responses={200: envelope(BrandKitOut), **errors(401, 404)},
        tags=["Brand kits"],
    )
    @logo.mapping.delete
    def logo_delete(self, request, brand_kit_id: str):
        brand_kit = services.brand_kit_remove_logo(brand_kit=self.get_object())
        return ok(BrandKitOut(brand_kit, context={"request": request}).data)

    @extend_schema(
        operation_id="brand_kits_font_upload",
        summary="Upload or replace the caption font",
        description=(
            "A TrueType (.ttf) or OpenType (.otf) font file, at most CLYPAI_MAX_FONT_BYTES "
            "(10 MiB by default). It is parsed and drawn before it is kept; its family "
            "becomes the kit's captionStyle.fontFamily."
        ),
        request={"multipart/form-data": FontIn},
        responses={200: envelope(BrandKitOut), **errors(400, 401, 404, 413)},
        tags=["Brand kits"],
    )
    @action(detail=True, methods=["put"], parser_classes=[MultiPartParser], name="Brand Kit Font")
    def font(self, request, brand_kit_id: str):
        brand_kit = self.get_object()
        limit = settings.CLYPAI_MAX_FONT_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise PayloadTooLarge("Font is larger than the limit", details={"limit": limit})
        if (request.content_type or "").split(";")[0].strip() != "multipart/form-data":
            raise InvalidRequest("Send the font as multipart/form-data", field="file")
        uploaded = request.FILES.get("file")
        if upload_too_large(request) or (uploaded is not None and uploaded.size > limit):
            raise PayloadTooLarge("Font is larger than the limit", details={"limit": limit})
        if uploaded is None:
            raise InvalidRequest("This field is required", field="file")
        brand_kit = services.brand_kit_set_font(brand_kit=brand_kit, file=uploaded)
        return ok(BrandKitOut(brand_kit, context={"request": request}).data)

    @extend_schema(
        operation_id="brand_kits_font_delete",
        summary="Remove the caption font",
        description="Captions in its family go back to the default font.",
        responses={200: envelope(BrandKitOut), **errors(401, 404)},
        tags=["Brand kits"],
    )
    @font.mapping.delete
    def font_delete(self, request, brand_kit_id: str):
        brand_kit = services.brand_kit_remove_font(brand_kit=self.get_object())
        return ok(BrandKitOut(brand_kit, context={"request": request}).data)
