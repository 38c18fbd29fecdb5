"""Appservices are not rate-limited unless their registration says `rate_limited: true`
(spec: Registration; the sender never is)."""

from __future__ import annotations

import pytest

from tests.api.appservices.conftest import V3, appservice_config, register_ghost


@pytest.fixture
def config_overrides(registrations) -> dict:
    # Rate limits on, tight: the appservice's requests are not limited (rate_limited: false).
    return appservice_config(registrations, rate_limiting={"enabled": True, "per_second": 0.1, "burst": 2})


async def test_appservices_are_not_rate_limited(as_bridge, as_plain, client):
    for i in range(6):
        await register_ghost(as_bridge, f"_bridge_many{i}", inhibit_login=True)
    statuses = []
    for i in range(4):
        status, _ = await client.post(f"{V3}/register", {"username": f"human{i}", "password": "pw-123456",
                                                         "auth": {"type": "m.login.dummy"}})
        statuses.append(status)
    assert 429 in statuses  # others are


@pytest.fixture
def registrations(tmp_path, bridge, plain) -> list[str]:
    from tests.api.appservices.conftest import write_registration

    return [str(write_registration(tmp_path / "bridge.yaml", bridge.registration())),
            str(write_registration(tmp_path / "plain.yaml", plain.registration(rate_limited=True)))]


async def test_rate_limited_appservices_are_limited_but_for_their_sender(as_plain):
    statuses = []
    for i in range(3):
        status, _ = await as_plain.post(f"{V3}/register", {"type": "m.login.application_service",
                                                           "username": f"_plain_u{i}", "inhibit_login": True})
        statuses.append(status)
    assert statuses == [200, 200, 429]
    for _ in range(4):  # as its sender: never limited
        status, body = await as_plain.post(f"{V3}/createRoom", {})
        assert status == 200, body


class TestMessageLimit:
    """rc_message (and every per-user action limit) passes over the users of an appservice
    registered with `rate_limited: false`, as over its sender, through the limiter's hook."""

    @pytest.fixture
    def config_overrides(self, registrations) -> dict:
        from tests.api.ratelimits import limits

        config = appservice_config(registrations)
        config["rate_limiting"] = limits({"rc_message": {"per_second": 0.001, "burst_count": 1}})["rate_limiting"]
        return config

    async def test_ghosts_of_an_unlimited_appservice_are_not_limited(self, as_bridge, as_plain, alice):
        await register_ghost(as_bridge, "_bridge_chatty", inhibit_login=True)
        await register_ghost(as_plain, "_plain_chatty", inhibit_login=True)
        status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
        room_id = room["room_id"]
        for as_client, ghost in ((as_bridge, "@_bridge_chatty:test.local"), (as_plain, "@_plain_chatty:test.local")):
            status, _ = await as_client.post(f"{V3}/rooms/{room_id}/join?user_id={ghost}", {})
            assert status == 200

        async def send(as_client, ghost, i):
            status, body = await as_client.put(f"{V3}/rooms/{room_id}/send/m.room.message/{ghost}{i}?user_id={ghost}",
                                               {"msgtype": "m.text", "body": str(i)})
            return status
        assert [await send(as_bridge, "@_bridge_chatty:test.local", i) for i in range(4)] == [200] * 4
        # plain says rate_limited: true.
        assert [await send(as_plain, "@_plain_chatty:test.local", i) for i in range(2)] == [200, 429]
