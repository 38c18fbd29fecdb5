"""Appservices create users and rooms on demand (GET /_matrix/app/v1/users/{userId} and
/rooms/{roomAlias}), and pings both ways (spec: "Querying", "Pinging")."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.api.appservices.conftest import SERVER, V3, appservice_config, register_ghost, write_registration


async def test_an_invite_to_an_unknown_ghost_asks_the_appservice_first(feeds, bridge, as_bridge, alice, client):
    ghost = f"@_bridge_new:{SERVER}"

    async def create(user_id: str) -> bool:
        await register_ghost(as_bridge, user_id.split(":")[0][1:], inhibit_login=True)
        return True
    bridge.on_user = create
    status, room = await alice.post(f"{V3}/createRoom", {"invite": [ghost], "name": "Portal"})
    assert status == 200, room
    invites = await bridge.wait_for(lambda: [e for e in bridge.events("m.room.member") if e["state_key"] == ghost])
    assert invites[0]["content"]["membership"] == "invite"
    # With the room's stripped state, as clients get it (the bridge learns what it is invited to).
    stripped = {(e["type"], e["state_key"]): e for e in invites[0]["unsigned"]["invite_room_state"]}
    assert stripped[("m.room.name", "")]["content"] == {"name": "Portal"}
    assert ("m.room.create", "") in stripped and ("m.room.member", f"@alice:{SERVER}") in stripped
    assert bridge.queries == [ghost]  # asked once, before the invite went out
    status, profile = await client.get(f"{V3}/profile/{ghost}")
    assert status == 200  # the ghost exists now


async def test_an_unknown_user_outside_namespaces_is_nobodys_business(feeds, bridge, plain, alice):
    status, room = await alice.post(f"{V3}/createRoom", {"invite": [f"@nobody:{SERVER}"]})
    assert status == 200
    status, _ = await alice.put(f"{V3}/rooms/{room['room_id']}/send/m.room.message/1", {"body": "x", "msgtype": "m.text"})
    assert bridge.queries == [] and plain.queries == []


async def test_joining_an_unknown_alias_asks_the_appservice_to_create_the_room(feeds, bridge, as_bridge, bob):
    alias = f"#_bridge_portal:{SERVER}"

    async def make_room(wanted: str) -> bool:
        status, room = await as_bridge.post(f"{V3}/createRoom", {"preset": "public_chat"})
        assert status == 200, room
        status, body = await as_bridge.put(f"{V3}/directory/room/{urllib.parse.quote(wanted)}",
                                           {"room_id": room["room_id"]})
        assert status == 200, body
        return True
    bridge.on_alias = make_room
    status, joined = await bob.post(f"{V3}/join/{urllib.parse.quote(alias)}", {})
    assert status == 200, joined
    assert bridge.queries == [alias]
    status, found = await bob.get(f"{V3}/directory/room/{urllib.parse.quote(alias)}")
    assert (status, found["room_id"]) == (200, joined["room_id"])
    # The room concerns the appservice through its alias: bob's join reached it.
    await bridge.wait_for(lambda: [e for e in bridge.events("m.room.member") if e["state_key"] == f"@bob:{SERVER}"])


async def test_an_alias_the_appservice_does_not_create_stays_unknown(bridge, bob):
    alias = urllib.parse.quote(f"#_bridge_nothing:{SERVER}")
    status, body = await bob.get(f"{V3}/directory/room/{alias}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert bridge.queries == [f"#_bridge_nothing:{SERVER}"]
    status, body = await bob.get(f"{V3}/directory/room/{urllib.parse.quote(f'#elsewhere:{SERVER}')}")
    assert status == 404 and len(bridge.queries) == 1  # not its namespace: not asked


async def test_ping_both_ways(as_bridge, bridge, as_plain, alice):
    status, body = await as_bridge.post("/_matrix/client/v1/appservice/bridge/ping", {"transaction_id": "meow"})
    assert status == 200, body
    assert isinstance(body["duration_ms"], int) and body["duration_ms"] >= 0
    assert bridge.pings == [{"transaction_id": "meow"}]
    status, body = await as_bridge.post("/_matrix/client/v1/appservice/bridge/ping", {})
    assert status == 200 and bridge.pings[-1] == {}
    # Only an appservice, and only about itself.
    status, body = await as_plain.post("/_matrix/client/v1/appservice/bridge/ping", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.post("/_matrix/client/v1/appservice/bridge/ping", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # The appservice answers badly: 502 M_BAD_STATUS with what it said.
    bridge.ping_status = 500
    status, body = await as_bridge.post("/_matrix/client/v1/appservice/bridge/ping", {})
    assert (status, body["errcode"], body["status"]) == (502, "M_BAD_STATUS", 500)
    assert "not today" in body["body"]
    # It is gone: 502 M_CONNECTION_FAILED.
    await bridge.stop()
    status, body = await as_bridge.post("/_matrix/client/v1/appservice/bridge/ping", {})
    assert (status, body["errcode"]) == (502, "M_CONNECTION_FAILED")


@pytest.fixture
def registrations(tmp_path, bridge, plain) -> list[str]:
    # plain has no URL: it takes no traffic (and cannot be pinged).
    return [str(write_registration(tmp_path / "bridge.yaml", bridge.registration())),
            str(write_registration(tmp_path / "plain.yaml", plain.registration(url=None)))]


async def test_ping_without_a_url(as_plain):
    status, body = await as_plain.post("/_matrix/client/v1/appservice/plain/ping", {})
    assert (status, body["errcode"]) == (400, "M_URL_NOT_SET")
