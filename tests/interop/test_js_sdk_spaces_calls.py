"""matrix-js-sdk against ChatGO for spaces (getRoomHierarchy), room upgrades (upgradeRoom and
following the tombstone) and calls (the TURN credentials request)."""

from __future__ import annotations

import pytest

from tests.interop.test_js_sdk import base_url, node, run_scenario, users  # noqa: F401 (fixtures)

TURN_URIS = ["turn:turn.test.local:3478?transport=udp"]


@pytest.fixture
def config_overrides() -> dict:
    return {"voip": {"turn_uris": TURN_URIS, "turn_shared_secret": "coturn-secret"}}


async def test_js_sdk_spaces_upgrades_and_turn(node, base_url, alice, bob, tmp_path):  # noqa: F811
    r = await run_scenario(node, "spaces_calls.mjs", tmp_path, baseUrl=base_url, **users("alice", "bob"))

    assert r["spaceType"] == "m.space"
    assert r["firstPage"] == [r["spaceId"], r["lobbyId"]]
    assert r["secondPage"] == [r["gamesId"]] and r["hasNextAfterSecond"] is False
    assert r["suggested"] == [r["spaceId"], r["gamesId"]]
    assert r["spaceChildren"] == [r["lobbyId"], r["gamesId"]]

    assert r["replacement"] == r["newLobbyId"]
    assert r["predecessor"] == r["lobbyId"] and r["newRoomVersion"] == "11"

    turn = r["turn"]
    assert turn["uris"] == TURN_URIS and turn["ttl"] == 3600
    assert turn["username"].endswith(":@bob:test.local") and turn["password"]
