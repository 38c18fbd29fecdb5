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
