"""The client API as an appservice: as_token, `user_id` and `device_id` assertion, registering
and logging in its users, exclusive namespaces, bridged timestamps, deactivation and devices
without UIA, no rate limits (spec: "Client-Server API Extensions")."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.api.appservices.conftest import SERVER, V3, appservice_config, register_ghost


def q(**params: str) -> str:
    return "?" + urllib.parse.urlencode(params)


async def test_a_bad_as_token_is_an_unknown_token(client):
    status, body = await client.get(f"{V3}/account/whoami", token="as-nobody")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_the_as_token_acts_as_the_sender(as_bridge):
    status, body = await as_bridge.get(f"{V3}/account/whoami")
    assert status == 200, body
    assert body == {"user_id": f"@bridgebot:{SERVER}", "is_guest": False}


async def test_user_id_asserts_a_registered_user_of_the_namespace(as_bridge, alice):
    ghost = f"@_bridge_alice:{SERVER}"
    # Not registered yet: refused (spec: the user must exist).
    status, body = await as_bridge.get(f"{V3}/account/whoami" + q(user_id=ghost))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    await register_ghost(as_bridge, "_bridge_alice", inhibit_login=True)
    status, body = await as_bridge.get(f"{V3}/account/whoami" + q(user_id=ghost))
    assert (status, body["user_id"]) == (200, ghost)
    # Outside its namespaces: never.
    status, body = await as_bridge.get(f"{V3}/account/whoami" + q(user_id=f"@alice:{SERVER}"))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # Another appservice's namespace is not its own either.
    status, body = await as_bridge.get(f"{V3}/account/whoami" + q(user_id=f"@_plain_x:{SERVER}"))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # A user's own token ignores user_id (as Synapse).
    status, body = await alice.get(f"{V3}/account/whoami" + q(user_id=ghost))
    assert (status, body["user_id"]) == (200, f"@alice:{SERVER}")


async def test_device_id_asserts_one_of_the_users_devices(as_bridge):
    ghost = f"@_bridge_dev:{SERVER}"
    registered = await register_ghost(as_bridge, "_bridge_dev", device_id="GHOSTDEV")
    assert registered["device_id"] == "GHOSTDEV" and registered["access_token"]
    status, body = await as_bridge.get(f"{V3}/account/whoami" + q(user_id=ghost, device_id="GHOSTDEV"))
    assert (status, body) == (200, {"user_id": ghost, "device_id": "GHOSTDEV", "is_guest": False})
    status, body = await as_bridge.get(
        f"{V3}/account/whoami" + q(user_id=ghost, **{"org.matrix.msc3202.device_id": "GHOSTDEV"}))
    assert (status, body.get("device_id")) == (200, "GHOSTDEV")
    status, body = await as_bridge.get(f"{V3}/account/whoami" + q(user_id=ghost, device_id="NOPE"))
    assert (status, body["errcode"]) == (400, "M_UNKNOWN_DEVICE")
    # Spec v1.17: an appservice creates devices with PUT /devices/{deviceId}, and deletes them
    # without user-interactive auth.
    status, body = await as_bridge.put(f"{V3}/devices/NEWDEV" + q(user_id=ghost), {"display_name": "bridge"})
    assert status == 200, body
    status, body = await as_bridge.get(f"{V3}/devices/NEWDEV" + q(user_id=ghost))
    assert (status, body["display_name"]) == (200, "bridge")
    status, body = await as_bridge.delete(f"{V3}/devices/NEWDEV" + q(user_id=ghost), {})
    assert status == 200, body
    status, _ = await as_bridge.get(f"{V3}/devices/NEWDEV" + q(user_id=ghost))
    assert status == 404


async def test_registering_users_of_its_namespace(as_bridge, client):
    body = await register_ghost(as_bridge, "_bridge_Bob")
    # No password, no UIA; the name is kept as given (as Synapse); logged in unless inhibited.
    assert body["user_id"] == f"@_bridge_Bob:{SERVER}" and body["access_token"] and body["device_id"]
    status, profile = await client.get(f"{V3}/profile/@_bridge_Bob:{SERVER}")
    assert (status, profile.get("displayname")) == (200, "_bridge_Bob")
    inhibited = await register_ghost(as_bridge, "_bridge_quiet", inhibit_login=True)
    assert inhibited == {"user_id": f"@_bridge_quiet:{SERVER}"}
    status, again = await as_bridge.post(f"{V3}/register", {"type": "m.login.application_service",
                                                            "username": "_bridge_quiet"})
    assert (status, again["errcode"]) == (400, "M_USER_IN_USE")
    # Outside its namespaces, or in another appservice's exclusive one: M_EXCLUSIVE (spec).
    for username in ("someone", "_plain_x"):
        status, refused = await as_bridge.post(f"{V3}/register", {"type": "m.login.application_service",
                                                                  "username": username})
        assert (status, refused["errcode"]) == (400, "M_EXCLUSIVE"), username


async def test_registering_as_an_appservice_needs_its_token(client):
    body = {"type": "m.login.application_service", "username": "_bridge_x"}
    status, missing = await client.post(f"{V3}/register", body)
    assert (status, missing["errcode"]) == (401, "M_MISSING_TOKEN")
    status, unknown = await client.post(f"{V3}/register", body, token="not-an-as-token")
    assert (status, unknown["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_users_cannot_register_in_an_exclusive_namespace(client):
    # The appservice's sender is in its exclusive namespace (its users' start with "_", which
    # users may not register anyway, as Synapse).
    status, body = await client.post(f"{V3}/register", {"username": "bridgebot", "password": "pw-123456",
                                                        "auth": {"type": "m.login.dummy"}})
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
    status, body = await client.get(f"{V3}/register/available?username=bridgebot")
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
    status, body = await client.get(f"{V3}/register/available?username=plainbot2")
    assert (status, body) == (200, {"available": True})


async def test_login_as_a_user_of_its_namespace(as_bridge, client):
    await register_ghost(as_bridge, "_bridge_carol", inhibit_login=True)
    login = {"type": "m.login.application_service", "identifier": {"type": "m.id.user", "user": "_bridge_carol"}}
    status, body = await as_bridge.post(f"{V3}/login", login)
    assert status == 200, body
    assert body["user_id"] == f"@_bridge_carol:{SERVER}"
    status, me = await client.get(f"{V3}/account/whoami", token=body["access_token"])
    assert (status, me["user_id"]) == (200, f"@_bridge_carol:{SERVER}")
    # Its sender needs no registration to log in.
    status, body = await as_bridge.post(f"{V3}/login", {**login, "identifier": {"type": "m.id.user",
                                                                              "user": f"@bridgebot:{SERVER}"}})
    assert (status, body.get("user_id")) == (200, f"@bridgebot:{SERVER}")
    status, body = await as_bridge.post(f"{V3}/login", {**login, "identifier": {"type": "m.id.user", "user": "alice"}})
    assert (status, body["errcode"]) == (403, "M_EXCLUSIVE")
    status, body = await client.post(f"{V3}/login", login)
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    status, flows = await client.get(f"{V3}/login")
    assert {"type": "m.login.application_service"} in flows["flows"]


async def test_ts_sets_the_timestamp_of_an_appservices_events(as_bridge, alice):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = room["room_id"]
    await register_ghost(as_bridge, "_bridge_dan", inhibit_login=True)
    ghost = f"@_bridge_dan:{SERVER}"
    status, _ = await as_bridge.post(f"{V3}/rooms/{room_id}/join" + q(user_id=ghost), {})
    assert status == 200
    bridged = 1_600_000_000_123
    status, sent = await as_bridge.put(f"{V3}/rooms/{room_id}/send/m.room.message/t1" + q(user_id=ghost, ts=str(bridged)),
                                       {"msgtype": "m.text", "body": "from the past"})
    assert status == 200, sent
    status, event = await alice.get(f"{V3}/rooms/{room_id}/event/{sent['event_id']}")
    assert (event["origin_server_ts"], event["sender"]) == (bridged, ghost)
    status, own_room = await as_bridge.post(f"{V3}/createRoom" + q(user_id=ghost), {})
    status, state = await as_bridge.put(f"{V3}/rooms/{own_room['room_id']}/state/m.room.topic"
                                        + q(user_id=ghost, ts=str(bridged + 1)), {"topic": "old news"})
    assert status == 200, state
    status, event = await as_bridge.get(f"{V3}/rooms/{own_room['room_id']}/event/{state['event_id']}" + q(user_id=ghost))
    assert (status, event["origin_server_ts"]) == (200, bridged + 1)
    status, bad = await as_bridge.put(f"{V3}/rooms/{room_id}/send/m.room.message/t2" + q(user_id=ghost, ts="soon"),
                                      {"msgtype": "m.text", "body": "x"})
    assert (status, bad["errcode"]) == (400, "M_INVALID_PARAM")
    # A user's `ts` is ignored: their events are timed by the server.
    status, own = await alice.put(f"{V3}/rooms/{room_id}/send/m.room.message/t3" + q(ts=str(bridged)),
                                  {"msgtype": "m.text", "body": "now"})
    status, event = await alice.get(f"{V3}/rooms/{room_id}/event/{own['event_id']}")
    assert event["origin_server_ts"] > bridged + 10**11


async def test_aliases_in_exclusive_namespaces(as_bridge, alice):
    status, room = await alice.post(f"{V3}/createRoom", {})
    room_id = room["room_id"]
    alias = urllib.parse.quote(f"#_bridge_chan:{SERVER}")
    status, body = await alice.put(f"{V3}/directory/room/{alias}", {"room_id": room_id})
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
    status, body = await alice.post(f"{V3}/createRoom", {"room_alias_name": "_bridge_other"})
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
    # The appservice creates its own aliases (no membership needed) and nothing outside them.
    status, body = await as_bridge.put(f"{V3}/directory/room/{alias}", {"room_id": room_id})
    assert status == 200, body
    status, body = await alice.get(f"{V3}/directory/room/{alias}")
    assert body["room_id"] == room_id
    outside = urllib.parse.quote(f"#lobby:{SERVER}")
    status, body = await as_bridge.put(f"{V3}/directory/room/{outside}", {"room_id": room_id})
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
    # Users may not delete it; the appservice may.
    status, body = await alice.delete(f"{V3}/directory/room/{alias}")
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")  # alice is the room's admin: only that stops her
    status, body = await as_bridge.delete(f"{V3}/directory/room/{alias}")
    assert status == 200, body


async def test_an_appservice_deactivates_its_users_without_uia(as_bridge, client):
    await register_ghost(as_bridge, "_bridge_gone", inhibit_login=True)
    ghost = f"@_bridge_gone:{SERVER}"
    status, body = await as_bridge.post(f"{V3}/account/deactivate" + q(user_id=ghost), {})
    assert status == 200, body
    login = {"type": "m.login.application_service", "identifier": {"type": "m.id.user", "user": ghost}}
    status, body = await as_bridge.post(f"{V3}/login", login)
    assert (status, body["errcode"]) == (403, "M_USER_DEACTIVATED")


async def test_uploading_keys_needs_a_device(as_bridge):
    await register_ghost(as_bridge, "_bridge_keys", device_id="KEYDEV")
    ghost = f"@_bridge_keys:{SERVER}"
    status, body = await as_bridge.post(f"{V3}/keys/upload" + q(user_id=ghost),
                                        {"one_time_keys": {"signed_curve25519:AAA": {"key": "k"}}})
    assert status == 400, body
    status, body = await as_bridge.post(f"{V3}/keys/upload" + q(user_id=ghost, device_id="KEYDEV"),
                                        {"one_time_keys": {"curve25519:AAA": "k"}})
    assert (status, body["one_time_key_counts"].get("curve25519")) == (200, 1)
