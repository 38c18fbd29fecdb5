"""A ping the appservice does not answer in time is 504 M_CONNECTION_TIMEOUT (spec: "Pinging")."""

from __future__ import annotations

import pytest

from tests.api.appservices.conftest import appservice_config


@pytest.fixture
def config_overrides(registrations) -> dict:
    config = appservice_config(registrations)
    config["appservice"]["request_timeout_ms"] = 200
    return config


async def test_a_slow_appservice_times_out(as_bridge, bridge):
    bridge.ping_delay = 2.0
    status, body = await as_bridge.post("/_matrix/client/v1/appservice/bridge/ping", {"transaction_id": "t"})
    assert (status, body["errcode"]) == (504, "M_CONNECTION_TIMEOUT")
