"""Profiles: get/set/delete fields, validation, and propagation into member events."""

V3 = "/_matrix/client/v3"


async def test_default_displayname_is_the_localpart(client):
    await client.register("alice")
    status, body = await client.get(f"{V3}/profile/@alice:test.local")
    assert status == 200 and body == {"displayname": "alice"}
    status, body = await client.get(f"{V3}/profile/@alice:test.local/displayname")
    assert body == {"displayname": "alice"}
    # An unset avatar_url or displayname answers null, as Synapse does; other keys are 404.
    status, body = await client.get(f"{V3}/profile/@alice:test.local/avatar_url")
    assert (status, body) == (200, {"avatar_url": None})
    status, body = await client.get(f"{V3}/profile/@alice:test.local/m.tz")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await client.get(f"{V3}/profile/@nobody:test.local/avatar_url")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await client.get(f"{V3}/profile/@nobody:test.local")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


async def test_set_fields_and_propagate_to_rooms(client):
    user = await client.register("alice")
    alice = client.with_token(user["access_token"])
    status, room = await alice.post(f"{V3}/createRoom", {})
    room_id = room["room_id"]
    status, _ = await alice.put(f"{V3}/profile/@alice:test.local/displayname", {"displayname": "Alice A."})
    assert status == 200
    status, _ = await alice.put(f"{V3}/profile/@alice:test.local/avatar_url", {"avatar_url": "mxc://test.local/abc"})
    assert status == 200
    status, _ = await alice.put(f"{V3}/profile/@alice:test.local/m.tz", {"m.tz": "Europe/Paris"})
    assert status == 200
    status, body = await alice.get(f"{V3}/profile/@alice:test.local")
    assert body == {"displayname": "Alice A.", "avatar_url": "mxc://test.local/abc", "m.tz": "Europe/Paris"}
    status, member = await alice.get(f"{V3}/rooms/{room_id}/state/m.room.member/@alice:test.local")
    assert member == {"membership": "join", "displayname": "Alice A.", "avatar_url": "mxc://test.local/abc"}
    status, _ = await alice.delete(f"{V3}/profile/@alice:test.local/avatar_url")
    assert status == 200
    status, member = await alice.get(f"{V3}/rooms/{room_id}/state/m.room.member/@alice:test.local")
    assert member == {"membership": "join", "displayname": "Alice A."}
    status, _ = await alice.delete(f"{V3}/profile/@alice:test.local/m.tz")
    status, body = await alice.get(f"{V3}/profile/@alice:test.local")
    assert body == {"displayname": "Alice A."}


async def test_profile_errors(client):
    alice = client.with_token((await client.register("alice"))["access_token"])
    await client.register("bob")
    status, body = await alice.put(f"{V3}/profile/@bob:test.local/displayname", {"displayname": "pwned"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/displayname", {"other": "x"})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/displayname", {"displayname": 5})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/avatar_url", {"avatar_url": 5})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/avatar_url", {"avatar_url": "x" * 1001})
    assert status == 400
    # Not an mxc:// URI, but a string: taken as it is, as Synapse does.
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/avatar_url", {"avatar_url": "LemurLover"})
    assert status == 200
    status, body = await alice.get(f"{V3}/profile/@alice:test.local/avatar_url")
    assert body == {"avatar_url": "LemurLover"}
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/big", {"big": "x" * 70000})
    assert status == 400 and body["errcode"] == "M_PROFILE_TOO_LARGE"
    long_key = "k" * 300
    status, body = await alice.put(f"{V3}/profile/@alice:test.local/{long_key}", {long_key: 1})
    assert status == 400 and body["errcode"] == "M_KEY_TOO_LARGE"
    status, body = await client.put(f"{V3}/profile/@alice:test.local/displayname", {"displayname": "x"})
    assert status == 401
