"""OpenID tokens: POST /user/{userId}/openid/request_token and the federation userinfo check."""

import base64

import pytest

from tests.server_fixtures import MatrixClient, make_web_app

V3 = "/_matrix/client/v3"
USERINFO = "/_matrix/federation/v1/openid/userinfo"


class FakeClock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def now_ms(self):
        return self.now


@pytest.fixture
async def clock():
    return FakeClock()


@pytest.fixture
async def services(db, clock, signing_key):
    from homeserver.app import build_services
    from tests.conftest import make_test_config

    services = build_services(make_test_config(), db, clock=clock, signing_key=signing_key)
    yield services
    await services.devices.flush()
    await services.pushers.close()


async def federation(aiohttp_client, services) -> MatrixClient:
    return MatrixClient(await aiohttp_client(make_web_app(services, ["federation"])))


async def test_token_is_exchanged_for_the_user(aiohttp_client, services, alice):
    status, token = await alice.post(f"{V3}/user/@alice:test.local/openid/request_token", {})
    assert status == 200, token
    assert token["token_type"] == "Bearer" and token["matrix_server_name"] == "test.local"
    assert token["expires_in"] == 3600 and token["access_token"]
    peer = await federation(aiohttp_client, services)
    status, info = await peer.get(f"{USERINFO}?access_token={token['access_token']}")
    assert (status, info) == (200, {"sub": "@alice:test.local"})


async def test_bad_tokens_are_refused(aiohttp_client, services, alice):
    peer = await federation(aiohttp_client, services)
    status, body = await peer.get(f"{USERINFO}?access_token=an%2Finvalid%2Ftoken")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    status, body = await peer.get(USERINFO)
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    # A token with its user ID changed does not verify.
    _, token = await alice.post(f"{V3}/user/@alice:test.local/openid/request_token", {})
    payload, mac = token["access_token"].split(".")
    forged = base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==").replace(b"alice", b"admin"))
    status, body = await peer.get(f"{USERINFO}?access_token={forged.decode().rstrip('=')}.{mac}")
    assert status == 401
    # Nor may a user ask for another user's token.
    status, body = await alice.post(f"{V3}/user/@bob:test.local/openid/request_token", {})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_expired_token_is_refused(aiohttp_client, services, alice, clock):
    _, token = await alice.post(f"{V3}/user/@alice:test.local/openid/request_token", {})
    clock.now += 3600 * 1000 + 1
    peer = await federation(aiohttp_client, services)
    status, body = await peer.get(f"{USERINFO}?access_token={token['access_token']}")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
