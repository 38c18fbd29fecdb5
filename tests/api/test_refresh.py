"""Refresh tokens: issue, expire, refresh, rotate, retry."""

import pytest

V3 = "/_matrix/client/v3"


class FakeClock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def now_ms(self):
        return self.now


@pytest.fixture
async def clock():
    return FakeClock()


@pytest.fixture
async def services(db, config_overrides, clock, signing_key):
    from homeserver.app import build_services
    from tests.conftest import make_test_config

    services = build_services(make_test_config(**config_overrides), db, clock=clock, signing_key=signing_key)
    yield services
    await services.devices.flush()


async def test_expired_token_is_soft_logout_and_refresh_gives_a_new_pair(client, clock):
    user = await client.register("alice", refresh_token=True)
    status, _ = await client.get(f"{V3}/account/whoami", token=user["access_token"])
    assert status == 200
    clock.now += user["expires_in_ms"] + 1
    status, body = await client.get(f"{V3}/account/whoami", token=user["access_token"])
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN" and body["soft_logout"] is True

    status, fresh = await client.post(f"{V3}/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 200, fresh
    assert fresh["access_token"] != user["access_token"]
    assert fresh["refresh_token"] != user["refresh_token"]
    assert fresh["expires_in_ms"] == 300000
    status, body = await client.get(f"{V3}/account/whoami", token=fresh["access_token"])
    assert status == 200 and body["device_id"] == user["device_id"]


async def test_old_refresh_token_works_until_the_new_pair_is_used(client):
    user = await client.register("bob", refresh_token=True)
    status, first = await client.post(f"{V3}/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 200
    # The response was "lost": the client retries with the old refresh token.
    status, retry = await client.post(f"{V3}/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 200
    # The replaced, never-used pair is gone.
    status, _ = await client.get(f"{V3}/account/whoami", token=first["access_token"])
    assert status == 401
    # Using the new access token spends the old refresh token.
    status, _ = await client.get(f"{V3}/account/whoami", token=retry["access_token"])
    assert status == 200
    status, body = await client.post(f"{V3}/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    # The current refresh token keeps rotating.
    status, third = await client.post(f"{V3}/refresh", {"refresh_token": retry["refresh_token"]})
    assert status == 200
    status, _ = await client.post(f"{V3}/refresh", {"refresh_token": third["refresh_token"]})
    assert status == 200
    status, _ = await client.post(f"{V3}/refresh", {"refresh_token": retry["refresh_token"]})
    assert status == 401


async def test_refresh_bad_input(client):
    status, body = await client.post(f"{V3}/refresh", {"refresh_token": "cgr_unknown"})
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    status, body = await client.post(f"{V3}/refresh", {})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"


async def test_logout_kills_refresh_token(client):
    user = await client.register("carol", refresh_token=True)
    status, _ = await client.post(f"{V3}/logout", {}, token=user["access_token"])
    assert status == 200
    status, body = await client.post(f"{V3}/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 401
