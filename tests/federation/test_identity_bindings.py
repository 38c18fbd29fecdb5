"""Binding 3PIDs on an identity server through us: POST /account/3pid/bind, /unbind, /delete,
and unbinding on deactivation, against a fake identity server over TLS."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from homeserver.app import build_services
from homeserver.web_app import make_web_app
from tests.conftest import make_test_config
from tests.federation.conftest import federation_overrides
from tests.server_fixtures import MatrixClient

V3 = "/_matrix/client/v3"
ALICE = "@alice:test.local"


class FakeIdentityServer:
    """Validated sessions (sid -> 3PID), bindings ((medium, address) -> mxid), requests seen."""

    def __init__(self) -> None:
        self.sessions = {"sid1": ("email", "alice@example.org"), "sid2": ("email", "other@example.org")}
        self.bindings: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.name = ""

    async def bind(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        if request.headers.get("Authorization") != "Bearer id-token":
            return web.json_response({"errcode": "M_UNAUTHORIZED"}, status=401)
        medium, address = self.sessions[body["sid"]]
        self.bindings[(medium, address)] = body["mxid"]
        return web.json_response({"medium": medium, "address": address, "mxid": body["mxid"]})

    async def unbind(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        key = (body["threepid"]["medium"], body["threepid"]["address"])
        if self.bindings.get(key) != body["mxid"]:
            return web.json_response({}, status=404)
        del self.bindings[key]
        return web.json_response({})


@pytest.fixture
async def identity_server(stubs):
    fake = FakeIdentityServer()
    stub = stubs()
    stub.route("POST", "/_matrix/identity/v2/3pid/bind", fake.bind)
    stub.route("POST", "/_matrix/identity/v2/3pid/unbind", fake.unbind)
    fake.name = stub.name
    await stub.start()
    return fake


@pytest.fixture
async def services(db, signing_key, tls_files):
    config = make_test_config(federation=federation_overrides(tls_files))
    services = build_services(config, db, signing_key=signing_key)
    yield services
    await services.devices.flush()
    await services.threepids.close()


@pytest.fixture
async def alice(aiohttp_client, services) -> MatrixClient:
    client = MatrixClient(await aiohttp_client(make_web_app(services, ["client"])))
    return client.with_token((await client.register("alice", "pw-alice-1"))["access_token"])


def bind_body(ids: FakeIdentityServer, sid: str = "sid1") -> dict[str, str]:
    return {"id_server": ids.name, "id_access_token": "id-token", "sid": sid, "client_secret": "secret"}


async def test_bind_then_delete_unbinds_on_the_same_server(alice, identity_server):
    status, body = await alice.post(f"{V3}/account/3pid/bind", bind_body(identity_server))
    assert (status, body) == (200, {})
    assert identity_server.bindings == {("email", "alice@example.org"): ALICE}
    status, body = await alice.post(f"{V3}/account/3pid/delete", {"medium": "email", "address": "alice@example.org"})
    assert (status, body) == (200, {"id_server_unbind_result": "success"})
    assert identity_server.bindings == {}
    # The unbind request is signed by our server (X-Matrix), as the identity service API asks.
    path, headers, content = identity_server.requests[-1]
    assert path.endswith("/3pid/unbind") and headers["Authorization"].startswith("X-Matrix origin=\"test.local\"")
    assert content == {"mxid": ALICE, "threepid": {"medium": "email", "address": "alice@example.org"}}
    # Nothing is remembered any more: a second unbind has no server to ask.
    status, body = await alice.post(f"{V3}/account/3pid/unbind", {"medium": "email", "address": "alice@example.org"})
    assert body == {"id_server_unbind_result": "no-support"}


async def test_unbind_on_a_named_server_and_under_unstable(alice, identity_server):
    identity_server.bindings[("email", "other@example.org")] = ALICE  # bound out of band
    status, body = await alice.post("/_matrix/client/unstable/account/3pid/unbind", {
        "medium": "email", "address": "other@example.org", "id_server": identity_server.name})
    assert (status, body) == (200, {"id_server_unbind_result": "success"})
    assert identity_server.bindings == {}
    # A server that does not know the binding (404): not supported, not an error.
    status, body = await alice.post(f"{V3}/account/3pid/unbind", {
        "medium": "email", "address": "nobody@example.org", "id_server": identity_server.name})
    assert (status, body) == (200, {"id_server_unbind_result": "no-support"})


async def test_deactivation_unbinds(alice, identity_server):
    assert (await alice.post("/_matrix/client/unstable/account/3pid/bind", bind_body(identity_server)))[0] == 200
    status, body = await alice.post(f"{V3}/account/deactivate", {"auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "pw-alice-1"}})
    assert (status, body) == (200, {"id_server_unbind_result": "success"})
    assert identity_server.bindings == {}


async def test_bad_requests(alice, identity_server):
    status, body = await alice.post(f"{V3}/account/3pid/bind", dict(bind_body(identity_server), id_access_token="wrong"))
    assert status == 400
    status, body = await alice.post(f"{V3}/account/3pid/bind", dict(bind_body(identity_server), id_server="a/b"))
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.post(f"{V3}/account/3pid/bind", {"id_server": identity_server.name})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = await alice.post(f"{V3}/account/3pid/unbind", {"medium": "email"})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
