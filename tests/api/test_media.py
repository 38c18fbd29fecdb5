"""The media repository over real HTTP: uploads, downloads, thumbnails, async uploads, URL
previews, and the legacy /_matrix/media endpoints; real files in a temporary data directory."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from homeserver.services.media import thumbnails as thumbnails_module
from homeserver.web_app import make_web_app, modules_for

LEGACY = "/_matrix/media/v3"
AUTHED = "/_matrix/client/v1/media"


@pytest.fixture
def media_settings() -> dict:
    """Override (or parametrize) to change the `media` section of the config."""
    return {}


@pytest.fixture
def config_overrides(tmp_path, media_settings) -> dict:
    return {"data_dir": str(tmp_path), "media": media_settings}


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def animated_gif(size=(200, 200), frames=3) -> bytes:
    images = [Image.new("RGB", size, (i * 80, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


async def upload(user, data: bytes, content_type: str | None = "image/png", filename: str | None = None) -> str:
    path = f"{LEGACY}/upload" + (f"?filename={filename}" if filename is not None else "")
    headers = {"Content-Type": content_type} if content_type else {}
    status, body = await user.post(path, raw=data, headers=headers)
    assert status == 200, body
    assert body["content_uri"].startswith("mxc://test.local/")
    return body["content_uri"].removeprefix("mxc://test.local/")


async def fetch(user, path: str, *, token: bool = True):
    """GET returning (status, headers, body bytes)."""
    headers = {"Authorization": f"Bearer {user.token}"} if token and user.token else {}
    response = await user.http.get(path, headers=headers)
    return response.status, response.headers, await response.read()


def content_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


# --- upload and download ------------------------------------------------------------------

async def test_upload_then_download_on_both_endpoint_families(alice):
    data = image_bytes()
    media_id = await upload(alice, data, filename="cat.png")
    for base, cache in ((AUTHED, "private"), (LEGACY, "public")):
        status, headers, body = await fetch(alice, f"{base}/download/test.local/{media_id}")
        assert status == 200 and body == data
        assert headers["Content-Type"] == "image/png"
        assert headers["Content-Disposition"] == "inline; filename=cat.png"
        assert headers["Content-Security-Policy"] == (
            "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
            "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        assert headers["Cache-Control"] == f"{cache}, max-age=31536000, immutable"
        assert headers["Access-Control-Allow-Origin"] == "*"


async def test_r0_aliases_of_the_legacy_endpoints(alice):
    status, body = await alice.post("/_matrix/media/r0/upload?filename=old.txt", raw=b"old client",
                                    headers={"Content-Type": "text/plain"})
    assert status == 200
    media_id = body["content_uri"].removeprefix("mxc://test.local/")
    status, headers, data = await fetch(alice, f"/_matrix/media/r0/download/test.local/{media_id}")
    assert (status, data, headers["Content-Disposition"]) == (200, b"old client", "inline; filename=old.txt")
    assert await alice.get("/_matrix/media/r0/config") == (200, {"m.upload.size": 50 * 1024 * 1024})


async def test_legacy_download_needs_no_token(alice, client):
    media_id = await upload(alice, b"hello", content_type="text/plain")
    status, headers, body = await fetch(client, f"{LEGACY}/download/test.local/{media_id}", token=False)
    assert (status, body) == (200, b"hello")
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert headers["Content-Disposition"] == "inline"  # uploaded without a filename


async def test_file_name_in_the_path_overrides_and_non_ascii_names_are_encoded(alice):
    media_id = await upload(alice, b"x", content_type="text/plain", filename="notes.txt")
    status, headers, _ = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}/r%C3%A9sum%C3%A9%20v2.txt")
    assert status == 200
    assert headers["Content-Disposition"] == "inline; filename*=utf-8''r%C3%A9sum%C3%A9%20v2.txt"
    status, headers, _ = await fetch(alice, f"{LEGACY}/download/test.local/{media_id}/other.txt")
    assert headers["Content-Disposition"] == "inline; filename=other.txt"


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "application/javascript",
                                          "application/pdf"])
async def test_unsafe_types_are_served_as_attachments(alice, content_type):
    media_id = await upload(alice, b"<script>alert(1)</script>", content_type=content_type, filename="x")
    status, headers, _ = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}")
    assert status == 200
    assert headers["Content-Disposition"] == "attachment; filename=x"
    assert headers["Content-Type"].startswith(content_type)


async def test_upload_without_content_type_is_octet_stream(alice):
    media_id = await upload(alice, b"\x00\x01", content_type=None)
    status, headers, _ = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}")
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == "attachment"


async def test_media_config_on_both_families(alice, client):
    for base in (AUTHED, LEGACY):
        assert await alice.get(f"{base}/config") == (200, {"m.upload.size": 50 * 1024 * 1024})
    status, body = await client.get(f"{LEGACY}/config")
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"


async def test_authenticated_endpoints_refuse_anonymous_requests(alice, client):
    media_id = await upload(alice, image_bytes())
    for path in (f"{AUTHED}/download/test.local/{media_id}", f"{AUTHED}/download/test.local/{media_id}/a.png",
                 f"{AUTHED}/thumbnail/test.local/{media_id}?width=32&height=32", f"{AUTHED}/config",
                 f"{AUTHED}/preview_url?url=https://example.org/"):
        status, body = await client.get(path)
        assert status == 401 and body["errcode"] == "M_MISSING_TOKEN", path
    status, body = await client.post(f"{LEGACY}/upload", raw=b"x")
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"
    status, body = await client.get(f"{AUTHED}/config", token="not-a-token")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_unknown_remote_and_malformed_media_ids_are_not_found(alice):
    for path in ("download/test.local/AAAAAAAAAAAAAAAAAAAAAAAA", "download/matrix.org/..%2F..%2Fetc",
                 "download/test.local/..%2F..%2Fetc", "download/test.local/a.b", "download/not_a_server!/abc",
                 "thumbnail/test.local/nope?width=32&height=32", "thumbnail/other.example/a.b?width=1&height=1"):
        for base in (AUTHED, LEGACY):
            status, body = await alice.get(f"{base}/{path}")
            assert status == 404 and body["errcode"] == "M_NOT_FOUND", (base, path, body)
    # The legacy endpoints' allow_remote=false: remote media we do not hold is not fetched.
    # (Fetching remote media is tested with real servers in tests/federation/test_remote_media.py.)
    for path in ("download/matrix.org/AAAAAAAAAAAAAAAAAAAAAAAA?allow_remote=false",
                 "thumbnail/other.example/x?width=1&height=1&allow_remote=false"):
        status, body = await alice.get(f"{LEGACY}/{path}")
        assert status == 404 and body["errcode"] == "M_NOT_FOUND", (path, body)


async def test_identical_uploads_share_one_file_on_disk(alice, bob, tmp_path):
    data = image_bytes(size=(10, 10))
    first = await upload(alice, data, filename="a.png")
    second = await upload(bob, data, filename="b.png")
    assert first != second
    assert len(content_files(tmp_path / "media")) == 1
    _, headers, _ = await fetch(alice, f"{AUTHED}/download/test.local/{second}")
    assert headers["Content-Disposition"] == "inline; filename=b.png"


async def test_uploads_larger_than_the_request_body_limit_stream_to_disk(alice, services):
    data = bytes(range(256)) * (3 * 4096 + 17)  # ~3 MiB, past limits.max_request_body_bytes
    assert len(data) > services.config.limits.max_request_body_bytes
    media_id = await upload(alice, data, content_type="application/octet-stream", filename="blob.bin")
    status, headers, body = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}")
    assert status == 200 and body == data
    assert headers["Content-Disposition"] == "attachment; filename=blob.bin"


async def test_empty_upload_is_allowed(alice):
    media_id = await upload(alice, b"", content_type="text/plain")
    status, _, body = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}")
    assert (status, body) == (200, b"")


@pytest.mark.parametrize("media_settings", [{"max_upload_size": 1000}])
async def test_oversized_uploads_are_refused_while_streaming(alice, tmp_path):
    status, body = await alice.post(f"{LEGACY}/upload", raw=b"x" * 5000, headers={"Content-Type": "text/plain"})
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"

    async def chunked():  # no Content-Length: the limit is found while reading
        for _ in range(10):
            yield b"y" * 300

    response = await alice.http.post(f"{LEGACY}/upload", data=chunked(),
                                     headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status == 413 and (await response.json())["errcode"] == "M_TOO_LARGE"
    assert content_files(tmp_path / "media") == []
    assert list((tmp_path / "media" / "tmp").iterdir()) == []
    assert await alice.get(f"{AUTHED}/config") == (200, {"m.upload.size": 1000})
    await upload(alice, b"z" * 1000, content_type="text/plain")  # exactly the limit is fine


async def test_bad_filenames_are_refused(alice):
    status, body = await alice.post(f"{LEGACY}/upload?filename={'a' * 300}", raw=b"x")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await alice.post(f"{LEGACY}/upload?filename=a%0Ab", raw=b"x")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"


# --- thumbnails ---------------------------------------------------------------------------

def dimensions(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


async def test_thumbnails_crop_and_scale_on_both_families(alice):
    media_id = await upload(alice, image_bytes("JPEG", (1000, 500)), content_type="image/jpeg")
    cases = [
        ("width=64&height=64&method=crop", (96, 96)),
        ("width=20&height=20&method=crop", (32, 32)),
        ("width=300&height=200&method=scale", (320, 160)),
        ("width=300&height=200", (320, 160)),  # scale is the default
        ("width=700&height=500&method=scale", (800, 400)),
        ("width=5000&height=5000&method=scale", (800, 400)),  # the largest preset
    ]
    for base in (AUTHED, LEGACY):
        for query, size in cases:
            status, headers, body = await fetch(alice, f"{base}/thumbnail/test.local/{media_id}?{query}")
            assert status == 200, (query, body)
            assert headers["Content-Type"] == "image/jpeg"
            assert headers["Content-Disposition"] == "inline; filename=thumbnail.jpeg"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
            assert dimensions(body) == size, query


async def test_png_and_webp_thumbnails(alice):
    png = await upload(alice, image_bytes("PNG", (400, 400)))
    status, headers, body = await fetch(alice, f"{AUTHED}/thumbnail/test.local/{png}?width=96&height=96&method=crop")
    assert (status, headers["Content-Type"], dimensions(body)) == (200, "image/png", (96, 96))
    webp = await upload(alice, image_bytes("WEBP", (400, 400)), content_type="image/webp")
    status, headers, body = await fetch(alice, f"{AUTHED}/thumbnail/test.local/{webp}?width=96&height=96&method=crop")
    assert (status, headers["Content-Type"], dimensions(body)) == (200, "image/jpeg", (96, 96))


async def test_small_images_are_their_own_thumbnail(alice):
    data = image_bytes("PNG", (20, 20))
    media_id = await upload(alice, data)
    status, headers, body = await fetch(alice, f"{AUTHED}/thumbnail/test.local/{media_id}?width=96&height=96&method=crop")
    assert (status, body, headers["Content-Type"]) == (200, data, "image/png")
    # Never upscaled: a wide small image gets the largest square cut from it.
    media_id = await upload(alice, image_bytes("PNG", (50, 20)))
    _, _, body = await fetch(alice, f"{AUTHED}/thumbnail/test.local/{media_id}?width=96&height=96&method=crop")
    assert dimensions(body) == (20, 20)


async def test_thumbnails_are_made_once_and_kept(alice, services, monkeypatch, tmp_path):
    calls = []
    real = thumbnails_module.render_thumbnail

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(thumbnails_module, "render_thumbnail", counting)
    media_id = await upload(alice, image_bytes("PNG", (640, 640)))
    query = f"{AUTHED}/thumbnail/test.local/{media_id}?width=50&height=50&method=crop"
    results = await asyncio.gather(*(fetch(alice, query) for _ in range(3)))
    again = await fetch(alice, query.replace("width=50&height=50", "width=90&height=90"))  # same preset
    assert {r[2] for r in [*results, again]} == {results[0][2]}
    assert len(calls) == 1
    assert len(content_files(tmp_path / "media")) == 2  # the image and its thumbnail
    # Identical content uploaded again shares the thumbnail.
    copy = await upload(alice, image_bytes("PNG", (640, 640)))
    await fetch(alice, f"{AUTHED}/thumbnail/test.local/{copy}?width=96&height=96&method=crop")
    assert len(calls) == 1


async def test_animated_thumbnails(alice):
    media_id = await upload(alice, animated_gif(), content_type="image/gif")
    base = f"{AUTHED}/thumbnail/test.local/{media_id}?width=96&height=96&method=crop"
    status, headers, body = await fetch(alice, base + "&animated=true")
    assert (status, headers["Content-Type"]) == (200, "image/webp")
    image = Image.open(io.BytesIO(body))
    assert image.is_animated and image.n_frames == 3 and image.size == (96, 96)
    for query in ("&animated=false", ""):
        status, headers, body = await fetch(alice, base + query)
        assert (status, headers["Content-Type"]) == (200, "image/png")
        assert not getattr(Image.open(io.BytesIO(body)), "is_animated", False)
    # A still image asked for animated is treated as not animated.
    still = await upload(alice, image_bytes("JPEG", (300, 300)), content_type="image/jpeg")
    _, headers, _ = await fetch(alice, f"{AUTHED}/thumbnail/test.local/{still}?width=32&height=32&method=crop&animated=true")
    assert headers["Content-Type"] == "image/jpeg"


async def test_malformed_thumbnail_requests_get_matrix_errors(alice):
    image = await upload(alice, image_bytes())
    text = await upload(alice, b"just text", content_type="text/plain")
    broken = await upload(alice, b"not really a png", content_type="image/png")
    cases = [
        (image, "height=32", 400, "M_MISSING_PARAM"),
        (image, "width=abc&height=32", 400, "M_INVALID_PARAM"),
        (image, "width=-5&height=32", 400, "M_INVALID_PARAM"),
        (image, "width=0&height=32", 400, "M_INVALID_PARAM"),
        (image, "width=32&height=32&method=zoom", 400, "M_INVALID_PARAM"),
        (image, "width=32&height=32&animated=maybe", 400, "M_INVALID_PARAM"),
        (image, "width=32&height=32&timeout_ms=soon", 400, "M_INVALID_PARAM"),
        (text, "width=32&height=32", 400, "M_UNKNOWN"),
        (broken, "width=32&height=32", 400, "M_UNKNOWN"),
    ]
    for media_id, query, status, errcode in cases:
        for base in (AUTHED, LEGACY):
            got, body = await alice.get(f"{base}/thumbnail/test.local/{media_id}?{query}")
            assert (got, body["errcode"]) == (status, errcode), (query, body)


@pytest.mark.parametrize("media_settings", [{"max_image_pixels": 100 * 100}])
async def test_images_past_the_pixel_limit_are_not_thumbnailed(alice):
    media_id = await upload(alice, image_bytes("PNG", (200, 200)))
    status, body = await alice.get(f"{AUTHED}/thumbnail/test.local/{media_id}?width=32&height=32&method=crop")
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"


# --- asynchronous uploads (POST /create, then PUT) ----------------------------------------

async def create(user) -> str:
    status, body = await user.post("/_matrix/media/v1/create")
    assert status == 200, body
    assert body["content_uri"].startswith("mxc://test.local/")
    assert abs(body["unused_expires_at"] - (time.time() * 1000 + 24 * 3600 * 1000)) < 60_000
    return body["content_uri"].removeprefix("mxc://test.local/")


async def test_create_then_upload(alice, bob):
    media_id = await create(alice)
    path = f"{LEGACY}/upload/test.local/{media_id}?filename=later.txt"
    status, body = await bob.put(path, raw=b"sneaky", headers={"Content-Type": "text/plain"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    assert await alice.put(path, raw=b"finally", headers={"Content-Type": "text/plain"}) == (200, {})
    status, body = await alice.put(path, raw=b"again", headers={"Content-Type": "text/plain"})
    assert status == 409 and body["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"
    status, headers, data = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}")
    assert (status, data, headers["Content-Disposition"]) == (200, b"finally", "inline; filename=later.txt")


async def test_upload_to_unknown_or_remote_media_ids(alice):
    for path in ("test.local/AAAAAAAAAAAAAAAAAAAAAAAA", "test.local/bad.id", "elsewhere.example/AAAA"):
        status, body = await alice.put(f"{LEGACY}/upload/{path}", raw=b"x")
        assert status == 404 and body["errcode"] == "M_NOT_FOUND", path
    uploaded = await upload(alice, b"done", content_type="text/plain")
    status, body = await alice.put(f"{LEGACY}/upload/test.local/{uploaded}", raw=b"x")
    assert status == 409 and body["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"


async def test_download_waits_for_the_upload(alice):
    media_id = await create(alice)
    waiting = asyncio.create_task(fetch(alice, f"{AUTHED}/download/test.local/{media_id}?timeout_ms=10000"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    started = time.monotonic()
    assert await alice.put(f"{LEGACY}/upload/test.local/{media_id}", raw=b"arrived") == (200, {})
    status, _, data = await waiting
    assert (status, data) == (200, b"arrived")
    assert time.monotonic() - started < 2


async def test_download_of_content_not_yet_uploaded_times_out(alice):
    media_id = await create(alice)
    for path in (f"download/test.local/{media_id}", f"thumbnail/test.local/{media_id}?width=32&height=32&"):
        sep = "&" if "?" in path else "?"
        status, body = await alice.get(f"{AUTHED}/{path}{sep}timeout_ms=100")
        assert status == 504 and body["errcode"] == "M_NOT_YET_UPLOADED"


@pytest.mark.parametrize("media_settings", [{"max_pending_media_uploads": 2}])
async def test_pending_uploads_are_limited(alice, bob):
    first = await create(alice)
    await create(alice)
    status, body = await alice.post("/_matrix/media/v1/create")
    assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED" and body["retry_after_ms"] > 0
    await create(bob)  # per user
    await alice.put(f"{LEGACY}/upload/test.local/{first}", raw=b"x")
    await create(alice)  # an upload frees a slot


@pytest.mark.parametrize("media_settings", [{"unused_expiration_time_ms": 50}])
async def test_expired_reservations_cannot_be_uploaded_to(alice):
    status, body = await alice.post("/_matrix/media/v1/create")
    media_id = body["content_uri"].removeprefix("mxc://test.local/")
    await asyncio.sleep(0.1)
    status, body = await alice.put(f"{LEGACY}/upload/test.local/{media_id}", raw=b"late")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await alice.get(f"{AUTHED}/download/test.local/{media_id}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


# --- the legacy freeze --------------------------------------------------------------------

@pytest.mark.parametrize("media_settings", [{"freeze_legacy_unauthenticated": True}])
async def test_frozen_legacy_endpoints_do_not_serve_new_media(alice, db):
    media_id = await upload(alice, image_bytes("PNG", (100, 100)))
    for path in (f"download/test.local/{media_id}", f"download/test.local/{media_id}/a.png",
                 f"thumbnail/test.local/{media_id}?width=32&height=32"):
        status, body = await alice.get(f"{LEGACY}/{path}")
        assert status == 404 and body["errcode"] == "M_NOT_FOUND", path
        status, _, _ = await fetch(alice, f"{AUTHED}/{path}")
        assert status == 200, path
    # Media uploaded before the freeze stays reachable.
    await db.execute("UPDATE local_media SET authenticated = FALSE WHERE media_id = $1", media_id)
    status, _, _ = await fetch(alice, f"{LEGACY}/download/test.local/{media_id}", token=False)
    assert status == 200


# --- listeners ----------------------------------------------------------------------------

async def test_a_media_listener_serves_the_media_endpoints_only(aiohttp_client, services, client):
    from tests.server_fixtures import MatrixClient

    token = (await client.register("carol"))["access_token"]
    media_only = MatrixClient(await aiohttp_client(make_web_app(services, ["media"])), token)
    media_id = await upload(media_only, b"via media listener", content_type="text/plain")
    status, _, data = await fetch(media_only, f"{AUTHED}/download/test.local/{media_id}")
    assert (status, data) == (200, b"via media listener")
    status, body = await media_only.get("/_matrix/client/v3/account/whoami")
    assert status == 404 and body["errcode"] == "M_UNRECOGNIZED"
    assert not any(m.__name__.endswith("content_repo") for m in modules_for(["federation", "keys"]))


# --- URL previews -------------------------------------------------------------------------

PAGE = """<!doctype html><html><head>
<meta charset="utf-8">
<title>Fallback title</title>
<meta property="og:title" content="A &amp; B: the page">
<meta property="og:description" content="What   the page is about.">
<meta property="og:image" content="/img.png">
<meta property="og:image:width" content="9999">
</head><body><h1>Heading</h1><img src="/other.png"></body></html>"""

PLAIN_PAGE = """<html><head><title> Only a title </title>
<meta name="description" content="From the description meta."></head><body></body></html>"""


@pytest.fixture
async def site(aiohttp_server):
    """A small local web site to preview; `hits` counts requests per path."""
    hits: dict[str, int] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        hits[request.path] = hits.get(request.path, 0) + 1
        match request.path:
            case "/page":
                return web.Response(text=PAGE, content_type="text/html")
            case "/plain":
                return web.Response(text=PLAIN_PAGE, content_type="text/html")
            case "/img.png":
                return web.Response(body=image_bytes("PNG", (64, 48)), content_type="image/png")
            case "/redirect":
                raise web.HTTPFound("/page")
            case "/to-private":
                raise web.HTTPFound(f"http://127.0.0.2:{request.url.port}/page")
            case "/big":
                return web.Response(body=b"<html>" + b"x" * 300_000, content_type="text/html")
            case "/pdf":
                return web.Response(body=b"%PDF-1.4", content_type="application/pdf")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}", hits


async def test_preview_url_is_off_by_default(alice):
    for base in (AUTHED, LEGACY):
        status, body = await alice.get(f"{base}/preview_url?url=https://example.org/")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("media_settings", [{"url_preview_enabled": True, "url_preview_max_size": 100_000,
                                             "url_preview_ip_range_allowlist": ["127.0.0.1/32"]}])
async def test_preview_url_of_a_page(alice, site):
    base_url, hits = site
    status, og = await alice.get(f"{AUTHED}/preview_url?url={base_url}/page")
    assert status == 200, og
    assert og["og:title"] == "A & B: the page"
    assert og["og:description"] == "What the page is about."
    assert og["og:image"].startswith("mxc://test.local/")
    assert (og["og:image:width"], og["og:image:height"], og["og:image:type"]) == (64, 48, "image/png")
    assert og["matrix:image:size"] == len(image_bytes("PNG", (64, 48)))
    status, headers, data = await fetch(alice, f"{AUTHED}/download/test.local/{og['og:image'][len('mxc://test.local/'):]}")
    assert (status, headers["Content-Type"], dimensions(data)) == (200, "image/png", (64, 48))
    # Kept: asked again (on either endpoint) the page is not fetched again.
    assert await alice.get(f"{LEGACY}/preview_url?url={base_url}/page") == (200, og)
    assert hits["/page"] == 1
    # Redirects are followed; fallbacks fill what the page lacks.
    status, redirected = await alice.get(f"{AUTHED}/preview_url?url={base_url}/redirect")
    assert status == 200 and redirected["og:title"] == "A & B: the page"
    status, plain = await alice.get(f"{AUTHED}/preview_url?url={base_url}/plain")
    assert plain == {"og:title": "Only a title", "og:description": "From the description meta."}
    # An image URL previews as the image itself; other types preview as nothing.
    status, image = await alice.get(f"{AUTHED}/preview_url?url={base_url}/img.png")
    assert status == 200 and image["og:image"].startswith("mxc://") and image["og:image:width"] == 64
    assert await alice.get(f"{AUTHED}/preview_url?url={base_url}/pdf") == (200, {})


@pytest.mark.parametrize("media_settings", [{"url_preview_enabled": True, "url_preview_max_size": 100_000,
                                             "url_preview_ip_range_allowlist": ["127.0.0.1/32"]}])
async def test_preview_url_errors(alice, site):
    base_url, _ = site
    cases = [
        ("", 400, "M_MISSING_PARAM"),
        ("?url=ftp://example.org/file", 400, "M_INVALID_PARAM"),
        ("?url=not%20a%20url", 400, "M_INVALID_PARAM"),
        (f"?url={base_url}/missing", 502, "M_UNKNOWN"),
        (f"?url={base_url}/big", 502, "M_TOO_LARGE"),
        (f"?url={base_url}/to-private", 403, "M_FORBIDDEN"),  # the redirect's target is checked too
        ("?url=http://127.0.0.2:9/", 403, "M_FORBIDDEN"),
        (f"?url={base_url}/page&ts=soon", 400, "M_INVALID_PARAM"),
    ]
    for query, status, errcode in cases:
        got, body = await alice.get(f"{AUTHED}/preview_url{query}")
        assert (got, body.get("errcode")) == (status, errcode), (query, body)


@pytest.mark.parametrize("media_settings", [{"url_preview_enabled": True}])
async def test_preview_url_refuses_private_addresses(alice, site):
    base_url, hits = site
    port = base_url.rsplit(":", 1)[1]
    for url in (f"{base_url}/page", f"http://localhost:{port}/page", f"http://[::1]:{port}/page",
                f"http://[::ffff:127.0.0.1]:{port}/page", "http://10.1.2.3/",
                "http://169.254.169.254/latest/meta-data/", "http://192.168.0.1/"):
        status, body = await alice.get(f"{AUTHED}/preview_url?url={url}")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", (url, body)
    # 127.0.0.1 in decimal: not a URL aiohttp will fetch at all.
    status, body = await alice.get(f"{AUTHED}/preview_url?url=http://2130706433:{port}/page")
    assert status == 502 and body["errcode"] == "M_UNKNOWN"
    assert hits == {}
