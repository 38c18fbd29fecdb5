"""X-Matrix between two ChatGO servers over TLS, and what an unsigned or forged request gets."""

from __future__ import annotations

import ssl
import types
from urllib.parse import quote

import aiohttp
import pytest
import yarl
from aiohttp import web
from signedjson.key import generate_signing_key

from federation.client import RemoteError
from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, route
from homeserver.core.x_matrix import sign_request
from tests.federation.conftest import make_federation_client

PROFILE = "/_matrix/federation/v1/query/profile"


# A test-only signed endpoint with a body, to check that the body is covered by the signature.
@route("PUT", "/test/echo/{thing}", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def echo(request: web.Request) -> web.Response:
    """PUT /_matrix/federation/v1/test/echo/{thing}"""
    return json_response({"origin": origin_of(request), "body": await request.json(),
                          "thing": request.match_info["thing"]})


ECHO_MODULE = types.ModuleType("echo_module")
ECHO_MODULE.echo = echo
echo.__module__ = "echo_module"


@pytest.fixture
async def pair(homeservers):
    """Two servers; `b` has a user @alice with a display name and a room alias."""
    a = await homeservers()
    b = await homeservers(extra_modules=[ECHO_MODULE])
    alice = await b.services.accounts.create_user("alice", "password-1")
    await b.services.profiles._profiles.set_displayname(alice, "Alice")
    return a, b, alice


async def test_signed_queries_between_two_servers(pair):
    a, b, alice = pair
    client = a.services.federation_client
    assert await client.get_json(b.name, PROFILE, {"user_id": alice}) == {"displayname": "Alice"}
    assert await client.get_json(b.name, PROFILE, {"user_id": alice, "field": "displayname"}) == {"displayname": "Alice"}
    with pytest.raises(RemoteError) as err:
        await client.get_json(b.name, PROFILE, {"user_id": f"@nobody:{b.name}"})
    assert (err.value.status, err.value.errcode) == (404, "M_NOT_FOUND")
    # b fetched a's key to check those requests, and keeps it.
    assert await b.services.keyring._store.get_keys(a.name)


async def test_directory_query(pair):
    a, b, alice = pair
    room_id = await b.services.rooms.create_room(alice, {})
    await b.services.directory.create_alias(alice, f"#lobby:{b.name}", room_id)
    directory = "/_matrix/federation/v1/query/directory"
    answer = await a.services.federation_client.get_json(b.name, directory, {"room_alias": f"#lobby:{b.name}"})
    assert answer == {"room_id": room_id, "servers": [b.name]}
    with pytest.raises(RemoteError) as err:
        await a.services.federation_client.get_json(b.name, directory, {"room_alias": f"#nothing:{b.name}"})
    assert err.value.errcode == "M_NOT_FOUND"


async def test_the_body_is_signed(pair):
    a, b, _ = pair
    answer = await a.services.federation_client.put_json(b.name, "/_matrix/federation/v1/test/echo/x%2Fy",
                                                          {"n": 1})
    assert answer == {"origin": a.name, "body": {"n": 1}, "thing": "x/y"}


async def raw_request(server, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
                      tls_files=None):
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    async with aiohttp.ClientSession() as session:
        url = yarl.URL(server.url + path, encoded=True)  # exactly the URI that was signed
        async with session.request(method, url, headers=headers or {}, data=body, ssl=context) as resp:
            return resp.status, await resp.json()


def header(origin: str, destination: str, key, method: str, uri: str, content=None) -> str:
    return sign_request(method, uri, origin, destination, key, content)


async def test_unsigned_bad_and_forged_requests_get_401_or_400(pair, tls_files):
    a, b, alice = pair
    uri = f"{PROFILE}?user_id={quote(alice)}"

    async def status_of(headers=None, method="GET", path=uri, body=None):
        status, answer = await raw_request(b, method, path, headers, body, tls_files)
        return status, answer.get("errcode")

    good = header(a.name, b.name, a.signing_key, "GET", uri)
    assert await status_of({"Authorization": good}) == (200, None)
    # Scheme, order and spacing variations the spec allows.
    variant = good.replace("X-Matrix ", "x-matrix   ").replace(",", " ,\t")
    params = variant.split("   ", 1)[1].split(" ,\t")
    assert await status_of({"Authorization": "x-matrix " + ", ".join(reversed(params))}) == (200, None)

    unauthorized = (401, "M_UNAUTHORIZED")
    assert await status_of() == unauthorized
    assert await status_of({"Authorization": "Bearer sometoken"}) == unauthorized
    # A malformed X-Matrix header is a bad request (400, as Synapse; sytest's "Non-numeric ports
    # in server names are rejected").
    malformed = (400, "M_UNAUTHORIZED")
    assert await status_of({"Authorization": "X-Matrix garbage"}) == malformed
    assert await status_of({"Authorization": 'X-Matrix origin="x",key="ed25519:a"'}) == malformed
    bad_origin = good.replace(f'origin="{a.name}"', 'origin="localhost:http"')
    assert await status_of({"Authorization": bad_origin}) == malformed
    # Signed for another destination, for another URI, or by a key that is not the origin's.
    assert await status_of({"Authorization": header(a.name, "elsewhere.test", a.signing_key, "GET", uri)}) == unauthorized
    assert await status_of({"Authorization": header(a.name, b.name, a.signing_key, "GET", uri + "&x=1")}) == unauthorized
    forger = generate_signing_key(a.signing_key.version)  # same key ID, different key
    assert await status_of({"Authorization": header(a.name, b.name, forger, "GET", uri)}) == unauthorized
    # Claims an origin whose keys cannot be fetched.
    assert await status_of({"Authorization": header("localhost:1", b.name, a.signing_key, "GET", uri)}) == unauthorized
    # The destination may be left out (servers older than v1.3); the signature still covers ours.
    no_destination = good.replace(f',destination="{b.name}"', "")
    assert await status_of({"Authorization": no_destination}) == (200, None)

    # A tampered body.
    echo = "/_matrix/federation/v1/test/echo/x"
    signed = header(a.name, b.name, a.signing_key, "PUT", echo, {"n": 1})
    assert await status_of({"Authorization": signed, "Content-Type": "application/json"}, "PUT", echo,
                           b'{"n": 2}') == unauthorized
    assert await status_of({"Authorization": signed, "Content-Type": "application/json"}, "PUT", echo,
                           b'{"n": 1}') == (200, None)
    assert (await status_of({"Authorization": signed}, "PUT", echo, b"not json"))[0] == 400
