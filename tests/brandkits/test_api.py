"""/v1/brand-kits and /v1/brand-kits/{id}/logo: colours, caption style, watermark, logo."""

from __future__ import annotations

import io
import re
import struct
import zlib
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from brandkits.models import BrandKit
from clips.models import Clip
from tests.factories import BrandKitFactory, UploadFactory

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
KIT_FIELDS = {
    "id",
    "name",
    "primaryColor",
    "accentColor",
    "logoUrl",
    "font",
    "captionStyle",
    "watermark",
    "introUploadId",
    "outroUploadId",
    "createdAt",
    "updatedAt",
}
DEFAULT_CAPTION_STYLE = {
    "fontFamily": "DejaVu Sans",
    "fontSize": 64,
    "textColor": "#FFFFFF",
    "highlightColor": None,
    "outlineColor": "#000000",
    "outlineWidth": 4,
    "box": False,
    "boxColor": "#000000B3",
    "position": "bottom",
    "uppercase": False,
    "maxWordsPerChunk": 4,
}
DEFAULT_WATERMARK = {"position": "top-right", "scale": 0.15, "opacity": 0.8}


def error_of(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is False, body
    return body["error"]


def data_of(response, status_code: int = 200):
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["success"] is True, body
    return body["data"]


def create(api, body):
    return api.post("/v1/brand-kits", body, format="json")


def patch(api, kit_id, body):
    return api.patch(f"/v1/brand-kits/{kit_id}", body, format="json")


def image_bytes(fmt: str, size=(48, 32), color=(200, 30, 60)) -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if fmt == "PNG" else "RGB"
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    import os

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb's first bytes)."""
    png = image_bytes("PNG", size=(1, 1))
    ihdr_at = png.index(b"IHDR")
    body = struct.pack(">II", width, height) + png[ihdr_at + 12 : ihdr_at + 17]
    chunk = b"IHDR" + body
    return png[:ihdr_at] + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[ihdr_at + 21 :]


def put_logo(api, kit_id, content: bytes, name="logo.png", content_type="image/png"):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    return api.put(f"/v1/brand-kits/{kit_id}/logo", {"file": upload}, format="multipart")


def download(client, url: str) -> tuple[int, bytes, str]:
    response = client.get(urlsplit(url).path)
    content = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return response.status_code, content, response.get("Content-Type", "")


# Create and read -------------------------------------------------------------------


def test_it_creates_a_brand_kit_with_defaults_filled_in(api, team):
    data = data_of(create(api, {"name": "Acme"}), 201)
    assert set(data) == KIT_FIELDS
    assert re.fullmatch(r"brand_[A-Za-z0-9]{16}", data["id"])
    assert data["name"] == "Acme"
    assert data["primaryColor"] == "#FFFFFF"
    assert data["accentColor"] == "#FFD60A"
    assert data["logoUrl"] is None
    assert data["captionStyle"] == DEFAULT_CAPTION_STYLE
    assert data["watermark"] == DEFAULT_WATERMARK
    assert data["introUploadId"] is None and data["outroUploadId"] is None
    assert ISO_Z.match(data["createdAt"]) and ISO_Z.match(data["updatedAt"])
    assert BrandKit.objects.get(pk=data["id"]).team == team


def test_it_keeps_the_colours_and_styles_given(api, team):
    body = {
        "name": "Loud",
        "primaryColor": "#112233",
        "accentColor": "#ff00aa80",
        "captionStyle": {
            "fontSize": 80,
            "textColor": "#fafafa",
            "box": True,
            "position": "top",
            "uppercase": True,
            "maxWordsPerChunk": 2,
        },
        "watermark": {"position": "bottom-left", "opacity": 0.5},
    }
    data = data_of(create(api, body), 201)
    # Colours come back in one spelling: upper case.
    assert data["primaryColor"] == "#112233"
    assert data["accentColor"] == "#FF00AA80"
    assert data["captionStyle"] == {
        **DEFAULT_CAPTION_STYLE,
        "fontSize": 80,
        "textColor": "#FAFAFA",
        "box": True,
        "position": "top",
        "uppercase": True,
        "maxWordsPerChunk": 2,
    }
    assert data["watermark"] == {"position": "bottom-left", "scale": 0.15, "opacity": 0.5}
    kit = BrandKit.objects.get(pk=data["id"])
    assert kit.effective_caption_style["fontSize"] == 80
    assert kit.effective_watermark["opacity"] == 0.5
    assert data_of(api.get(f"/v1/brand-kits/{data['id']}")) == data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "k", "primaryColor": "#FFF"}, "primaryColor"),
        ({"name": "k", "primaryColor": "FFFFFF"}, "primaryColor"),
        ({"name": "k", "primaryColor": "#GGGGGG"}, "primaryColor"),
        ({"name": "k", "primaryColor": "#FFFFFFF"}, "primaryColor"),
        ({"name": "k", "primaryColor": "red"}, "primaryColor"),
        ({"name": "k", "primaryColor": None}, "primaryColor"),
        ({"name": "k", "accentColor": "#12345"}, "accentColor"),
        ({"name": "k", "captionStyle": {"textColor": "white"}}, "captionStyle.textColor"),
        ({"name": "k", "captionStyle": {"boxColor": "#0000"}}, "captionStyle.boxColor"),
        (
            {"name": "k", "captionStyle": {"highlightColor": "#1234567"}},
            "captionStyle.highlightColor",
        ),
        ({"name": "k", "captionStyle": {"fontSize": 11}}, "captionStyle.fontSize"),
        ({"name": "k", "captionStyle": {"fontSize": 201}}, "captionStyle.fontSize"),
        ({"name": "k", "captionStyle": {"fontSize": 40.5}}, "captionStyle.fontSize"),
        ({"name": "k", "captionStyle": {"outlineWidth": 21}}, "captionStyle.outlineWidth"),
        ({"name": "k", "captionStyle": {"maxWordsPerChunk": 0}}, "captionStyle.maxWordsPerChunk"),
        ({"name": "k", "captionStyle": {"position": "left"}}, "captionStyle.position"),
        ({"name": "k", "captionStyle": {"box": "yes"}}, "captionStyle.box"),
        ({"name": "k", "captionStyle": {"font": "Arial"}}, "captionStyle.font"),
        ({"name": "k", "captionStyle": {"fontFamily": "Comic Sans"}}, "captionStyle.fontFamily"),
        ({"name": "k", "captionStyle": {"fontFamily": "/etc/passwd"}}, "captionStyle.fontFamily"),
        ({"name": "k", "captionStyle": {"fontFamily": "DejaVu Sans\n"}}, "captionStyle.fontFamily"),
        ({"name": "k", "captionStyle": "big"}, "captionStyle"),
        ({"name": "k", "watermark": {"scale": 0.02}}, "watermark.scale"),
        ({"name": "k", "watermark": {"scale": 0.51}}, "watermark.scale"),
        ({"name": "k", "watermark": {"opacity": -0.1}}, "watermark.opacity"),
        ({"name": "k", "watermark": {"opacity": 1.01}}, "watermark.opacity"),
        ({"name": "k", "watermark": {"opacity": "0.5"}}, "watermark.opacity"),
        ({"name": "k", "watermark": {"position": "center"}}, "watermark.position"),
        ({"name": "k", "watermark": {"size": 1}}, "watermark.size"),
        ({"name": "k", "introUploadId": "upl_doesnotexist00"}, "introUploadId"),
        ({"name": "k", "outroUploadId": "upl_doesnotexist00"}, "outroUploadId"),
        ({"name": "k", "logoUrl": "https://example.com/logo.png"}, "logoUrl"),
        ({"name": "k", "font": "Comic Sans"}, "font"),
    ],
)
def test_it_rejects_a_bad_brand_kit_naming_the_field(api, team, body, field):
    error = error_of(create(api, body), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert error["message"]
    assert not BrandKit.objects.exists()


@pytest.mark.parametrize(
    "watermark",
    [
        {"scale": 0.03},
        {"scale": 0.5},
        {"opacity": 0},
        {"opacity": 1},
        {"position": "bottom-right"},
        {"position": "top-left"},
    ],
)
def test_it_accepts_watermarks_at_the_edges_of_their_ranges(api, watermark):
    data = data_of(create(api, {"name": "k", "watermark": watermark}), 201)
    assert data["watermark"] == {**DEFAULT_WATERMARK, **watermark}


def test_the_message_of_a_bad_colour_says_the_format(api):
    error = error_of(create(api, {"name": "k", "captionStyle": {"textColor": "white"}}), 400)
    assert "#RRGGBB" in error["message"]


# Intro and outro -------------------------------------------------------------------


def test_it_references_its_own_uploads_as_intro_and_outro(api, team):
    intro, outro = UploadFactory(team=team), UploadFactory(team=team)
    data = data_of(
        create(api, {"name": "k", "introUploadId": intro.pk, "outroUploadId": outro.pk}), 201
    )
    assert (data["introUploadId"], data["outroUploadId"]) == (intro.pk, outro.pk)
    kit = BrandKit.objects.get(pk=data["id"])
    assert (kit.intro_upload, kit.outro_upload) == (intro, outro)

    data = data_of(patch(api, kit.pk, {"introUploadId": None}))
    assert (data["introUploadId"], data["outroUploadId"]) == (None, outro.pk)


def test_it_refuses_another_teams_upload(api, team, other_caller):
    theirs = UploadFactory(team=other_caller.team)
    for key in ("introUploadId", "outroUploadId"):
        error = error_of(create(api, {"name": "k", key: theirs.pk}), 400)
        assert error["field"] == key
    kit = BrandKitFactory(team=team)
    error = error_of(patch(api, kit.pk, {"introUploadId": theirs.pk}), 400)
    assert error["field"] == "introUploadId"
    kit.refresh_from_db()
    assert kit.intro_upload is None


# Update ----------------------------------------------------------------------------


def test_a_partial_update_merges_caption_style_and_watermark(api, team):
    kit = data_of(
        create(
            api,
            {
                "name": "k",
                "captionStyle": {"textColor": "#00FF00", "fontSize": 50},
                "watermark": {"opacity": 0.3},
            },
        ),
        201,
    )
    data = data_of(patch(api, kit["id"], {"captionStyle": {"fontSize": 90, "box": True}}))
    assert data["captionStyle"] == {
        **DEFAULT_CAPTION_STYLE,
        "textColor": "#00FF00",
        "fontSize": 90,
        "box": True,
    }
    assert data["watermark"] == {**DEFAULT_WATERMARK, "opacity": 0.3}

    data = data_of(patch(api, kit["id"], {"watermark": {"position": "bottom-left"}}))
    assert data["watermark"] == {"position": "bottom-left", "scale": 0.15, "opacity": 0.3}
    assert data["captionStyle"]["fontSize"] == 90
    assert data["captionStyle"]["textColor"] == "#00FF00"

    stored = BrandKit.objects.get(pk=kit["id"])
    assert stored.caption_style == {"textColor": "#00FF00", "fontSize": 90, "box": True}
    assert stored.watermark == {"opacity": 0.3, "position": "bottom-left"}


def test_a_partial_update_leaves_the_other_fields_alone(api, team):
    kit = data_of(
        create(api, {"name": "Before", "primaryColor": "#101010", "accentColor": "#202020"}), 201
    )
    data = data_of(patch(api, kit["id"], {"accentColor": "#abcdef"}))
    assert data["name"] == "Before"
    assert data["primaryColor"] == "#101010"
    assert data["accentColor"] == "#ABCDEF"
    data = data_of(patch(api, kit["id"], {"name": "After"}))
    assert (data["name"], data["primaryColor"], data["accentColor"]) == (
        "After",
        "#101010",
        "#ABCDEF",
    )


def test_a_highlight_colour_can_be_set_and_cleared(api):
    kit = data_of(create(api, {"name": "k", "captionStyle": {"highlightColor": "#ff0000"}}), 201)
    assert kit["captionStyle"]["highlightColor"] == "#FF0000"
    data = data_of(patch(api, kit["id"], {"captionStyle": {"highlightColor": None}}))
    assert data["captionStyle"]["highlightColor"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"primaryColor": "#12"}, "primaryColor"),
        ({"captionStyle": {"outlineColor": "black"}}, "captionStyle.outlineColor"),
        ({"watermark": {"scale": 2}}, "watermark.scale"),
        ({"id": "brand_other"}, "id"),
    ],
)
def test_a_bad_update_changes_nothing(api, team, body, field):
    kit = BrandKitFactory(
        team=team,
        name="Same",
        primary_color="#010101",
        caption_style={"outlineColor": "#222222"},
        watermark={"scale": 0.2},
    )
    error = error_of(patch(api, kit.pk, body), 400)
    assert error["field"] == field
    kit.refresh_from_db()
    assert kit.name == "Same" and kit.primary_color == "#010101"
    assert kit.caption_style == {"outlineColor": "#222222"}
    assert kit.watermark == {"scale": 0.2}


# List and delete -------------------------------------------------------------------


def test_it_lists_the_teams_brand_kits_page_by_page(api, team, other_caller):
    mine = [data_of(create(api, {"name": f"Kit {n}"}), 201)["id"] for n in range(5)]
    BrandKitFactory(team=other_caller.team)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "sortBy": "name", "sortOrder": "asc"}
        if cursor:
            params["cursor"] = cursor
        body = api.get("/v1/brand-kits", params).json()
        assert body["success"] is True and len(body["data"]) <= 2
        assert all(set(kit) == KIT_FIELDS for kit in body["data"])
        seen += [kit["id"] for kit in body["data"]]
        if not body["pagination"]["hasMore"]:
            break
        cursor = body["pagination"]["nextCursor"]
    assert seen == mine


def test_it_deletes_a_brand_kit_and_clips_keep_going_without_it(api, team, media_root):
    kit = data_of(create(api, {"name": "Going"}), 201)
    logo = data_of(put_logo(api, kit["id"], image_bytes("PNG")))
    stored = media_root / BrandKit.objects.get(pk=kit["id"]).logo.name
    assert stored.exists() and logo["logoUrl"]
    clip = data_of(
        api.post(
            "/v1/clips",
            {"sourceVideoUrl": "https://example.com/a.mp4", "config": {"brandKitId": kit["id"]}},
            format="json",
        ),
        201,
    )
    response = api.delete(f"/v1/brand-kits/{kit['id']}")
    assert response.json() == {"success": True, "data": {"id": kit["id"], "deleted": True}}
    assert not BrandKit.objects.filter(pk=kit["id"]).exists()
    assert not stored.exists()
    assert error_of(api.get(f"/v1/brand-kits/{kit['id']}"), 404)["code"] == "not_found"
    assert data_of(api.get(f"/v1/clips/{clip['id']}"))["config"]["brandKitId"] is None


def test_an_unknown_brand_kit_is_not_found(api):
    error = error_of(api.get("/v1/brand-kits/brand_doesnotexist0"), 404)
    assert error == {"code": "not_found", "message": "Brand kit not found"}
    assert error_of(api.get("/v1/brand-kits/brand_%00"), 404)["code"] == "not_found"


# Logo ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix", "content_type"),
    [("PNG", "png", "image/png"), ("JPEG", "jpg", "image/jpeg"), ("WEBP", "webp", "image/webp")],
)
def test_it_stores_a_logo_and_its_signed_link_serves_the_same_bytes(
    api, anon, team, media_root, fmt, suffix, content_type
):
    kit = BrandKitFactory(team=team)
    content = image_bytes(fmt)
    data = data_of(
        put_logo(api, kit.pk, content, name=f"brand.{suffix}", content_type=content_type)
    )
    assert data["id"] == kit.pk
    url = data["logoUrl"]
    assert re.fullmatch(r"http://testserver/files/[^/]+", url), url
    kit.refresh_from_db()
    assert kit.logo.name == f"brandkits/{team.pk}/{kit.pk}/logo.{suffix}"
    assert (media_root / kit.logo.name).read_bytes() == content
    # The link needs no API key: the signature is the permission.
    status, served, served_type = download(anon, url)
    assert status == 200
    assert served == content
    assert served_type == content_type
    assert data_of(api.get(f"/v1/brand-kits/{kit.pk}"))["logoUrl"].startswith(
        "http://testserver/files/"
    )


def test_a_logo_is_stored_by_what_it_is_not_by_its_name(api, team, media_root):
    kit = BrandKitFactory(team=team)
    content = image_bytes("JPEG")
    data_of(put_logo(api, kit.pk, content, name="logo.png", content_type="image/png"))
    kit.refresh_from_db()
    assert kit.logo.name.endswith("/logo.jpg")
    assert (media_root / kit.logo.name).read_bytes() == content


def test_a_forged_or_altered_logo_link_is_refused(api, anon, team):
    kit = BrandKitFactory(team=team)
    url = data_of(put_logo(api, kit.pk, image_bytes("PNG")))["logoUrl"]
    token = urlsplit(url).path.rsplit("/", 1)[-1]
    assert anon.get(f"/files/{token[:-2]}xx").status_code == 404
    assert anon.get("/files/not-a-token").status_code == 404


def test_a_new_logo_replaces_the_old_one(api, anon, team, media_root):
    kit = BrandKitFactory(team=team)
    first = image_bytes("PNG", color=(1, 2, 3))
    second = image_bytes("PNG", color=(250, 251, 252))
    assert first != second
    data_of(put_logo(api, kit.pk, first))
    kit.refresh_from_db()
    url = data_of(put_logo(api, kit.pk, second))["logoUrl"]
    kit.refresh_from_db()
    assert (media_root / kit.logo.name).read_bytes() == second
    assert download(anon, url)[1] == second
    files = list((media_root / "brandkits" / team.pk / kit.pk).iterdir())
    # Only the new logo is left on disk, whatever name the old one had.
    assert [f.read_bytes() for f in files] == [second]


@pytest.mark.parametrize(
    ("content", "name", "content_type"),
    [
        (b"this is not an image at all", "logo.png", "image/png"),
        (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "logo.pdf", "application/pdf"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.svg", "image/svg+xml"),
        (image_bytes("GIF"), "logo.gif", "image/gif"),
        (image_bytes("GIF"), "logo.png", "image/png"),
        (image_bytes("BMP"), "logo.bmp", "image/bmp"),
        (image_bytes("PNG")[:60], "logo.png", "image/png"),
        (image_bytes("PNG", size=(4097, 8)), "logo.png", "image/png"),
        (png_claiming_size(30000, 30000), "logo.png", "image/png"),
    ],
    ids=["text", "pdf", "svg", "gif", "gif-named-png", "bmp", "truncated", "too-wide", "bomb"],
)
def test_it_refuses_a_logo_that_is_not_a_png_jpeg_or_webp(
    api, team, media_root, content, name, content_type
):
    kit = BrandKitFactory(team=team)
    error = error_of(put_logo(api, kit.pk, content, name=name, content_type=content_type), 400)
    assert error["code"] == "invalid_request"
    assert error["field"] == "file"
    kit.refresh_from_db()
    assert not kit.logo
    assert not (media_root / "brandkits").exists()


def test_a_gif_is_named_in_the_refusal(api, team):
    kit = BrandKitFactory(team=team)
    error = error_of(
        put_logo(api, kit.pk, image_bytes("GIF"), name="a.gif", content_type="image/gif"), 400
    )
    assert "GIF" in error["message"]


def test_a_refused_logo_keeps_the_previous_one(api, anon, team):
    kit = BrandKitFactory(team=team)
    good = image_bytes("PNG")
    data_of(put_logo(api, kit.pk, good))
    error_of(put_logo(api, kit.pk, b"nope", name="x.png"), 400)
    url = data_of(api.get(f"/v1/brand-kits/{kit.pk}"))["logoUrl"]
    assert download(anon, url)[1] == good


def test_it_wants_the_logo_as_a_multipart_file(api, team):
    kit = BrandKitFactory(team=team)
    response = api.put(f"/v1/brand-kits/{kit.pk}/logo", {"file": "iVBORw0KGgo="}, format="json")
    assert error_of(response, 400)["field"] == "file"
    response = api.put(f"/v1/brand-kits/{kit.pk}/logo", {"image": "x"}, format="multipart")
    assert error_of(response, 400)["field"] == "file"


def test_it_refuses_a_logo_over_the_limit(api, team, settings, media_root):
    settings.CLYPAI_MAX_LOGO_BYTES = 1000
    kit = BrandKitFactory(team=team)
    content = noise_png(40)
    assert 1000 < len(content) < 1000 + 64 * 1024
    error = error_of(put_logo(api, kit.pk, content), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"limit": 1000}
    kit.refresh_from_db()
    assert not kit.logo
    assert not (media_root / "brandkits").exists()


def test_it_refuses_a_logo_whose_request_declares_too_many_bytes(api, team, settings, media_root):
    settings.CLYPAI_MAX_LOGO_BYTES = 1000
    kit = BrandKitFactory(team=team)
    content = noise_png(200)
    assert len(content) > 1000 + 64 * 1024
    error = error_of(put_logo(api, kit.pk, content), 413)
    assert error["code"] == "payload_too_large"
    kit.refresh_from_db()
    assert not kit.logo


def test_a_logo_at_the_limit_is_accepted(api, team, settings):
    content = image_bytes("PNG")
    settings.CLYPAI_MAX_LOGO_BYTES = len(content)
    kit = BrandKitFactory(team=team)
    assert data_of(put_logo(api, kit.pk, content))["logoUrl"]


def test_it_removes_the_logo(api, anon, team, media_root):
    kit = BrandKitFactory(team=team)
    url = data_of(put_logo(api, kit.pk, image_bytes("PNG")))["logoUrl"]
    kit.refresh_from_db()
    stored = media_root / kit.logo.name
    assert stored.exists()
    response = api.delete(f"/v1/brand-kits/{kit.pk}/logo")
    data = data_of(response)
    assert data["logoUrl"] is None
    assert data["id"] == kit.pk
    kit.refresh_from_db()
    assert not kit.logo
    assert not stored.exists()
    assert download(anon, url)[0] == 404
    # Removing a logo that is not there is harmless.
    assert data_of(api.delete(f"/v1/brand-kits/{kit.pk}/logo"))["logoUrl"] is None


# Another team ----------------------------------------------------------------------


def test_another_teams_brand_kit_is_not_found_everywhere(api, other_caller, media_root):
    kit = BrandKitFactory(team=other_caller.team, name="Theirs")
    url = f"/v1/brand-kits/{kit.pk}"
    for response in (
        api.get(url),
        patch(api, kit.pk, {"name": "Mine now"}),
        api.delete(url),
        put_logo(api, kit.pk, image_bytes("PNG")),
        api.delete(f"{url}/logo"),
    ):
        assert error_of(response, 404) == {"code": "not_found", "message": "Brand kit not found"}
    kit.refresh_from_db()
    assert kit.name == "Theirs" and not kit.logo
    ids = [k["id"] for k in api.get("/v1/brand-kits").json()["data"]]
    assert kit.pk not in ids


# Used by clips ---------------------------------------------------------------------


def test_a_clip_uses_the_brand_kit(api, team):
    kit = data_of(create(api, {"name": "For clips", "accentColor": "#00AAFF"}), 201)
    response = api.post(
        "/v1/clips",
        {
            "sourceVideoUrl": "https://example.com/a.mp4",
            "config": {"brandKitId": kit["id"], "aspectRatio": "1:1"},
        },
        format="json",
    )
    clip = data_of(response, 201)
    assert clip["config"]["brandKitId"] == kit["id"]
    assert clip["config"]["aspectRatio"] == "1:1"
    row = Clip.objects.get(pk=clip["id"])
    assert row.brand_kit_id == kit["id"]
    assert row.brand_kit.effective_caption_style == DEFAULT_CAPTION_STYLE
    assert data_of(api.get(f"/v1/clips/{clip['id']}"))["config"]["brandKitId"] == kit["id"]


def test_a_clip_cannot_use_another_teams_brand_kit(api, other_caller):
    theirs = BrandKitFactory(team=other_caller.team)
    response = api.post(
        "/v1/clips",
        {"sourceVideoUrl": "https://example.com/a.mp4", "config": {"brandKitId": theirs.pk}},
        format="json",
    )
    assert error_of(response, 400)["field"] == "config.brandKitId"
    assert not Clip.objects.exists()


def test_brand_kits_need_authentication(anon, team):
    kit = BrandKitFactory(team=team)
    for response in (
        anon.get("/v1/brand-kits"),
        anon.get(f"/v1/brand-kits/{kit.pk}"),
        put_logo(anon, kit.pk, image_bytes("PNG")),
    ):
        assert error_of(response, 401)["code"] == "unauthorized"


def test_a_form_body_is_refused_not_half_read(api):
    # As a form, captionStyle would arrive as a string that the serializer drops: the kit
    # would be made with the default style and no word said.
    response = api.post(
        "/v1/brand-kits",
        {"name": "Launch", "captionStyle": '{"uppercase": true}'},
        format="multipart",
    )

    assert response.status_code == 415, response.content
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]
    assert not BrandKit.objects.filter(name="Launch").exists()
