"""Media across servers: a client on A downloads media uploaded on B (fetched over federation
once, then served from A's store); B's federation media endpoints and their multipart answers;
older servers (legacy endpoint), Location redirects, size limits and one fetch for many requests."""

from __future__ import annotations

import asyncio
import io
import re
import ssl
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from federation.client import RemoteError
from homeserver.core.x_matrix import sign_request
from tests.api.test_media import image_bytes
from tests.federation.test_remote_keys import UNREACHABLE, Client

FED = "/_matrix/federation/v1"
AUTHED = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"


async def get(client: Client, path: str, *, token: bool = True) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {client.token}"} if token else {}
    context = ssl.create_default_context(cafile=str(client._ssl_cafile))
    async with aiohttp.ClientSession() as session:
        async with session.get(client.server.url + path, headers=headers, ssl=context) as resp:
            return resp.status, dict(resp.headers), await resp.read()


async def upload(client: Client, data: bytes, content_type: str, filename: str) -> str:
    context = ssl.create_default_context(cafile=str(client._ssl_cafile))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{client.server.url}{LEGACY}/upload?filename={quote(filename)}", data=data,
                                headers={"Authorization": f"Bearer {client.token}", "Content-Type": content_type},
                                ssl=context) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return body["content_uri"].rsplit("/", 1)[1]


async def user(server, name: str, tls_files) -> Client:
    user_id = await server.services.accounts.create_user(name, "password-1")
    client = await Client(server, tls_files).login(user_id, "password-1")
    client._ssl_cafile = tls_files.ca_cert
    return client


async def test_client_on_a_downloads_media_uploaded_on_b_then_from_cache(homeservers, tls_files, tmp_path):
    # Each server its own media store: A's copy must be its own.
    a = await homeservers(data_dir=str(tmp_path / "a"))
    b = await homeservers(data_dir=str(tmp_path / "b"))
    alice = await user(b, "alice", tls_files)
    bob = await user(a, "bob", tls_files)
    data = b"hello from B\n" * 1000
    media_id = await upload(alice, data, "text/plain", "hello.txt")

    status, headers, body = await get(bob, f"{AUTHED}/download/{b.name}/{media_id}")
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert headers["Content-Disposition"] == "inline; filename=hello.txt"
    status, headers, body = await get(bob, f"{AUTHED}/download/{b.name}/{media_id}/other.txt")
    assert (status, body, headers["Content-Disposition"]) == (200, data, "inline; filename=other.txt")
    # The unauthenticated legacy endpoint serves it too (no freeze configured).
    status, headers, body = await get(bob, f"{LEGACY}/download/{b.name}/{media_id}", token=False)
    assert (status, body) == (200, data)

    # Unknown media on B: 404; a server nobody can reach: 502.
    status, _, body = await get(bob, f"{AUTHED}/download/{b.name}/AAAAAAAAAAAAAAAAAAAAAAAA")
    assert status == 404 and b"M_NOT_FOUND" in body
    status, _, body = await get(bob, f"{AUTHED}/download/{UNREACHABLE}/AAAAAAAAAAAAAAAAAAAAAAAA")
    assert status == 502 and b"M_UNKNOWN" in body

    # B goes away: A still serves what it fetched, thumbnails of it too; not what it never had.
    png = image_bytes("PNG", (400, 300))
    image_id = await upload(alice, png, "image/png", "pic.png")
    assert (await get(bob, f"{AUTHED}/download/{b.name}/{image_id}"))[0] == 200
    await b.stop()
    status, headers, body = await get(bob, f"{AUTHED}/download/{b.name}/{media_id}")
    assert (status, body, headers["Content-Disposition"]) == (200, data, "inline; filename=hello.txt")
    status, headers, body = await get(bob, f"{AUTHED}/thumbnail/{b.name}/{image_id}?width=32&height=32&method=crop")
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert Image.open(io.BytesIO(body)).size == (32, 32)
    status, _, body = await get(bob, f"{AUTHED}/download/{b.name}/BBBBBBBBBBBBBBBBBBBBBBBB")
    assert status == 502


async def test_thumbnail_of_remote_media_is_made_locally(homeservers, tls_files, tmp_path):
    a = await homeservers(data_dir=str(tmp_path / "a"))
    b = await homeservers(data_dir=str(tmp_path / "b"))
    alice = await user(b, "alice", tls_files)
    bob = await user(a, "bob", tls_files)
    image_id = await upload(alice, image_bytes("PNG", (400, 400)), "image/png", "big.png")
    status, headers, body = await get(bob, f"{AUTHED}/thumbnail/{b.name}/{image_id}?width=96&height=96&method=crop")
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert Image.open(io.BytesIO(body)).size == (96, 96)
    status, _, body = await get(bob, f"{LEGACY}/thumbnail/{b.name}/{image_id}?width=320&height=240", token=False)
    assert status == 200 and Image.open(io.BytesIO(body)).size[0] <= 320


async def signed_get(origin, destination, path: str, tls_files) -> tuple[int, dict[str, str], bytes]:
    """A GET signed by `origin` (X-Matrix), read raw."""
    authorization = sign_request("GET", path, origin.name, destination.name, origin.signing_key, None)
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    async with aiohttp.ClientSession() as session:
        async with session.get(destination.url + path, headers={"Authorization": authorization}, ssl=context) as resp:
            return resp.status, dict(resp.headers), await resp.read()


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/mixed body, read strictly (RFC 2046 as ChatGO writes it)."""
    match = re.fullmatch(r"multipart/mixed; boundary=([0-9a-f]{32})", content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    assert body.startswith(delimiter + b"\r\n") and body.endswith(b"\r\n" + delimiter + b"--\r\n")
    inner = body[len(delimiter) + 2:-(len(delimiter) + 6)]
    parts = []
    for raw in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, _, content = raw.partition(b"\r\n\r\n")
        parts.append((dict(line.split(": ", 1) for line in head.decode().split("\r\n")), content))
    return parts


async def test_federation_media_endpoints_answer_multipart(homeservers, tls_files, tmp_path):
    a = await homeservers(data_dir=str(tmp_path / "a"))
    b = await homeservers(data_dir=str(tmp_path / "b"))
    alice = await user(b, "alice", tls_files)
    tricky = b"\x00\x01binary\r\n--not-a-boundary\r\n"
    media_id = await upload(alice, tricky, "application/x-thing", "t.bin")

    status, headers, body = await signed_get(a, b, f"{FED}/media/download/{media_id}", tls_files)
    assert status == 200
    assert split_multipart(headers["Content-Type"], body) == [
        ({"Content-Type": "application/json"}, b"{}"),
        ({"Content-Type": "application/x-thing", "Content-Disposition": "attachment; filename=t.bin"}, tricky),
    ]

    image_id = await upload(alice, image_bytes("PNG", (400, 400)), "image/png", "i.png")
    status, headers, body = await signed_get(
        a, b, f"{FED}/media/thumbnail/{image_id}?width=32&height=32&method=crop", tls_files)
    (meta_headers, meta), (thumb_headers, thumbnail) = split_multipart(headers["Content-Type"], body)
    assert (status, meta, thumb_headers["Content-Type"]) == (200, b"{}", "image/png")
    assert Image.open(io.BytesIO(thumbnail)).size == (32, 32)

    # The client side reads it the same (through aiohttp's multipart reader).
    async with a.services.federation_client.get_media(b.name, f"{FED}/media/download/{media_id}") as media:
        assert (media.content_type, media.location) == ("application/x-thing", None)
        assert b"".join([chunk async for chunk in media.chunks]) == tricky

    status, _, body = await signed_get(a, b, f"{FED}/media/download/AAAAAAAAAAAAAAAAAAAAAAAA", tls_files)
    assert status == 404 and b"M_NOT_FOUND" in body
    status, _, body = await signed_get(a, b, f"{FED}/media/thumbnail/{image_id}", tls_files)
    assert status == 400 and b"M_MISSING_PARAM" in body
    # Unsigned requests are refused.
    with pytest.raises(RemoteError) as err:
        await a.services.federation_client.request("GET", b.name, f"{FED}/media/download/{media_id}", signed=False)
    assert err.value.status == 401


def multipart_answer(parts: list[tuple[dict[str, str], bytes]]) -> web.Response:
    boundary = "b0undary"
    body = b"".join(
        b"--" + boundary.encode() + b"\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        + b"\r\n" + content + b"\r\n"
        for headers, content in parts) + b"--" + boundary.encode() + b"--\r\n"
    return web.Response(body=body, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})


async def test_stub_origins_legacy_fallback_location_size_limit_and_one_fetch(homeservers, stubs, tls_files, tmp_path):
    a = await homeservers(data_dir=str(tmp_path), media={"max_upload_size": 1000})
    bob = await user(a, "bob", tls_files)

    # An older server: no federation media endpoint, only the legacy download.
    old = stubs()
    old.route("GET", f"{LEGACY}/download/{{server}}/{{media_id}}", lambda request: web.Response(
        body=b"old bytes", headers={"Content-Type": "image/gif", "Content-Disposition": "inline; filename=\"o.gif\""}))
    await old.start()
    status, headers, body = await get(bob, f"{AUTHED}/download/{old.name}/OLD")
    assert (status, body, headers["Content-Type"]) == (200, b"old bytes", "image/gif")
    assert headers["Content-Disposition"] == "inline; filename=o.gif"
    assert old.hits == {f"{LEGACY}/download/{{server}}/{{media_id}}": 1}

    # A server answering with a Location part; slow, so that simultaneous requests overlap.
    new = stubs()
    go = asyncio.Event()

    async def download(request):
        await go.wait()
        if request.match_info["media_id"] == "BIG":
            return multipart_answer([({"Content-Type": "application/json"}, b"{}"),
                                     ({"Content-Type": "text/plain"}, b"x" * 1001)])
        if request.match_info["media_id"] == "GONE":
            return web.json_response({"errcode": "M_NOT_FOUND", "error": "nope"}, status=404)
        if request.match_info["media_id"] == "PENDING":
            return web.json_response({"errcode": "M_NOT_YET_UPLOADED", "error": "wait"}, status=504)
        if request.match_info["media_id"] == "GARBLED":
            return web.Response(body=b"garbage", headers={"Content-Type": "multipart/mixed; boundary=x"})
        if request.match_info["media_id"] == "NOTMULTIPART":
            return web.json_response({})
        return multipart_answer([({"Content-Type": "application/json"}, b"{}"),
                                 ({"Location": f"https://localhost:{new.port}/cdn/file"}, b"")])

    new.route("GET", f"{FED}/media/download/{{media_id}}", download)
    new.route("GET", "/cdn/file", lambda request: web.Response(
        body=b"from the cdn", headers={"Content-Type": "text/plain", "Content-Disposition": "inline; filename*=utf-8''na%C3%AFve.txt"}))
    await new.start()
    requests = [asyncio.ensure_future(get(bob, f"{AUTHED}/download/{new.name}/NEW")) for _ in range(5)]
    await asyncio.sleep(0.5)
    go.set()
    for status, headers, body in await asyncio.gather(*requests):
        assert (status, body) == (200, b"from the cdn")
        assert headers["Content-Disposition"] == "inline; filename*=utf-8''na%C3%AFve.txt"
    assert new.hits == {f"{FED}/media/download/{{media_id}}": 1, "/cdn/file": 1}

    status, _, body = await get(bob, f"{AUTHED}/download/{new.name}/BIG")
    assert status == 502 and b"M_TOO_LARGE" in body
    status, _, body = await get(bob, f"{AUTHED}/download/{new.name}/GONE")
    assert status == 404 and b"M_NOT_FOUND" in body
    status, _, body = await get(bob, f"{AUTHED}/download/{new.name}/PENDING")
    assert status == 504 and b"M_NOT_YET_UPLOADED" in body
    for media_id in ("GARBLED", "NOTMULTIPART"):
        status, _, body = await get(bob, f"{AUTHED}/download/{new.name}/{media_id}")
        assert status == 502 and b"M_UNKNOWN" in body, body
    # Not the legacy endpoint for a real "not found".
    assert f"{LEGACY}/download/{{server}}/{{media_id}}" not in new.hits
