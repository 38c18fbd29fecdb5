"""Aliases, canonical alias validation, the room directory and publicRooms."""


V3 = "/_matrix/client/v3"


async def create(c, **body):
    status, resp = await c.post(f"{V3}/createRoom", body)
    assert status == 200, resp
    return resp["room_id"]


async def test_alias_lifecycle(alice, bob, client):
    room = await create(alice, preset="public_chat")
    status, body = await alice.put(f"{V3}/directory/room/%23hangout:test.local", {"room_id": room})
    assert status == 200 and body == {}
    status, body = await client.get(f"{V3}/directory/room/%23hangout:test.local")
    assert status == 200 and body == {"room_id": room, "servers": ["test.local"]}
    status, body = await alice.put(f"{V3}/directory/room/%23hangout:test.local", {"room_id": room})
    assert status == 409
    status, body = await alice.get(f"{V3}/rooms/{room}/aliases")
    assert body == {"aliases": ["#hangout:test.local"]}
    # Bob can join through the alias.
    status, body = await bob.post(f"{V3}/join/%23hangout:test.local", {})
    assert status == 200 and body == {"room_id": room}
    # Bob (power 0) may not delete Alice's alias.
    status, body = await bob.delete(f"{V3}/directory/room/%23hangout:test.local")
    assert status == 403
    status, body = await alice.delete(f"{V3}/directory/room/%23hangout:test.local")
    assert status == 200
    status, body = await client.get(f"{V3}/directory/room/%23hangout:test.local")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


async def test_alias_errors(alice, bob):
    room = await create(alice)
    for alias, status_code in (("%23x:other.server", 400), ("nohash", 400), ("%23:test.local", 400)):
        status, body = await alice.put(f"{V3}/directory/room/{alias}", {"room_id": room})
        assert status == status_code, (alias, body)
    status, body = await alice.put(f"{V3}/directory/room/%23x:test.local", {"room_id": "!unknown:test.local"})
    assert status == 404
    status, body = await alice.put(f"{V3}/directory/room/%23x:test.local", {"room_id": 7})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await bob.get(f"{V3}/rooms/{room}/aliases")
    assert status == 403
    status, body = await alice.delete(f"{V3}/directory/room/%23missing:test.local")
    assert status == 404


async def test_create_room_with_alias_sets_canonical_alias(alice, bob):
    room = await create(alice, room_alias_name="lobby", preset="public_chat")
    status, body = await alice.get(f"{V3}/rooms/{room}/state/m.room.canonical_alias/")
    assert body == {"alias": "#lobby:test.local"}
    status, body = await alice.get(f"{V3}/directory/room/%23lobby:test.local")
    assert body["room_id"] == room
    status, body = await alice.post(f"{V3}/createRoom", {"room_alias_name": "lobby"})
    assert status == 400 and body["errcode"] == "M_ROOM_IN_USE"
    # Deleting the alias removes it from the canonical alias event too.
    status, _ = await alice.delete(f"{V3}/directory/room/%23lobby:test.local")
    status, body = await alice.get(f"{V3}/rooms/{room}/state/m.room.canonical_alias/")
    assert body == {}


async def test_canonical_alias_must_point_to_the_room(alice):
    room = await create(alice)
    other = await create(alice)
    await alice.put(f"{V3}/directory/room/%23other:test.local", {"room_id": other})
    status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.canonical_alias/", {"alias": "#other:test.local"})
    assert status == 400 and body["errcode"] == "M_BAD_ALIAS"
    status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.canonical_alias/", {"alt_aliases": ["#none:test.local"]})
    assert status == 400 and body["errcode"] == "M_BAD_ALIAS"
    await alice.put(f"{V3}/directory/room/%23mine:test.local", {"room_id": room})
    status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.canonical_alias/", {"alias": "#mine:test.local"})
    assert status == 200


async def test_publish_and_public_rooms(alice, bob, client):
    public = await create(alice, visibility="public", name="Big room", topic="lots of people", room_alias_name="big")
    small = await create(bob, preset="public_chat", name="Small")
    status, body = await alice.get(f"{V3}/directory/list/room/{public}")
    assert body == {"visibility": "public"}
    status, body = await client.get(f"{V3}/directory/list/room/{small}")
    assert body == {"visibility": "private"}
    status, body = await alice.put(f"{V3}/directory/list/room/{small}", {"visibility": "public"})
    assert status == 403  # Alice is not an admin of Bob's room
    status, body = await bob.put(f"{V3}/directory/list/room/{small}", {"visibility": "public"})
    assert status == 200
    await bob.post(f"{V3}/rooms/{public}/join", {})
    status, body = await client.get(f"{V3}/publicRooms")
    assert status == 200
    assert [r["room_id"] for r in body["chunk"]] == [public, small]  # most members first
    big = body["chunk"][0]
    assert big == {"room_id": public, "num_joined_members": 2, "world_readable": False, "guest_can_join": False,
                   "join_rule": "public", "name": "Big room", "topic": "lots of people",
                   "canonical_alias": "#big:test.local"}
    assert body["total_room_count_estimate"] == 2
    status, page = await client.get(f"{V3}/publicRooms?limit=1")
    assert [r["room_id"] for r in page["chunk"]] == [public] and page["next_batch"]
    status, page2 = await client.get(f"{V3}/publicRooms?limit=1&since={page['next_batch']}")
    assert [r["room_id"] for r in page2["chunk"]] == [small] and "next_batch" not in page2
    assert page2["prev_batch"] == "o0"
    status, found = await alice.post(f"{V3}/publicRooms", {"filter": {"generic_search_term": "SMALL"}})
    assert [r["room_id"] for r in found["chunk"]] == [small]
    status, found = await alice.post(f"{V3}/publicRooms", {"filter": {"room_types": ["m.space"]}})
    assert found["chunk"] == []
    status, found = await alice.post(f"{V3}/publicRooms", {"filter": {"room_types": [None]}})
    assert len(found["chunk"]) == 2
    status, _ = await bob.put(f"{V3}/directory/list/room/{small}", {"visibility": "private"})
    status, body = await client.get(f"{V3}/publicRooms")
    assert [r["room_id"] for r in body["chunk"]] == [public]


async def test_public_rooms_bad_input(alice, client):
    status, body = await client.get(f"{V3}/publicRooms?limit=abc")
    assert status == 400
    status, body = await client.get(f"{V3}/publicRooms?since=garbage")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await alice.post(f"{V3}/publicRooms", {"filter": "x"})
    assert status == 400
    status, body = await alice.post(f"{V3}/publicRooms", {"limit": -1})
    assert status == 400
    # Another server's directory is asked over federation (tests/federation/test_public_rooms.py);
    # one that cannot be reached (loopback is denied to federation here) is a 502.
    status, body = await alice.get(f"{V3}/publicRooms?server=localhost:1")
    assert (status, body["errcode"]) == (502, "M_UNKNOWN")
    status, body = await client.get(f"{V3}/publicRooms?server=localhost:1")  # relayed only for users
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    status, body = await alice.get(f"{V3}/publicRooms?server=not%20a%20name")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.put(f"{V3}/directory/list/room/!nope:test.local", {"visibility": "public"})
    assert status == 404
    room = await create(alice)
    status, body = await alice.put(f"{V3}/directory/list/room/{room}", {"visibility": "everyone"})
    assert status == 400
