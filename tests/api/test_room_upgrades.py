"""POST /rooms/{roomId}/upgrade: the tombstone, the replacement room and what moves to it."""

V3 = "/_matrix/client/v3"
ALICE = "@alice:test.local"


async def _state(c, room_id, event_type, state_key=""):
    status, content = await c.get(f"{V3}/rooms/{room_id}/state/{event_type}/{state_key}")
    assert status == 200, content
    return content


async def test_upgrade_replaces_the_room(alice, bob):
    status, created = await alice.post(f"{V3}/createRoom", {
        "room_version": "10", "preset": "public_chat", "name": "Old", "room_alias_name": "upgraded",
        "creation_content": {"m.federate": False}, "visibility": "public"})
    room_id = created["room_id"]
    await alice.put(f"{V3}/rooms/{room_id}/state/m.room.topic/", {"topic": "t"})
    await alice.put(f"{V3}/rooms/{room_id}/state/m.room.member/@spam:test.local", {"membership": "ban"})
    status, body = await alice.post(f"{V3}/rooms/{room_id}/upgrade", {"new_version": "11"})
    assert status == 200, body
    new_room_id = body["replacement_room"]
    tombstone = await _state(alice, room_id, "m.room.tombstone")
    assert tombstone["replacement_room"] == new_room_id
    create = await _state(alice, new_room_id, "m.room.create")
    assert create["room_version"] == "11" and create["m.federate"] is False
    assert create["predecessor"]["room_id"] == room_id
    status, events = await alice.get(f"{V3}/rooms/{room_id}/messages?dir=b&limit=5")
    tombstone_id = next(e["event_id"] for e in events["chunk"] if e["type"] == "m.room.tombstone")
    assert create["predecessor"]["event_id"] == tombstone_id
    # The important state, the bans, the alias and the directory entry moved.
    assert (await _state(alice, new_room_id, "m.room.name"))["name"] == "Old"
    assert (await _state(alice, new_room_id, "m.room.topic"))["topic"] == "t"
    assert (await _state(alice, new_room_id, "m.room.join_rules"))["join_rule"] == "public"
    assert (await _state(alice, new_room_id, "m.room.member", "@spam:test.local"))["membership"] == "ban"
    assert (await _state(alice, new_room_id, "m.room.canonical_alias"))["alias"] == "#upgraded:test.local"
    status, alias = await alice.get(f"{V3}/directory/room/%23upgraded:test.local")
    assert alias["room_id"] == new_room_id
    status, vis = await alice.get(f"{V3}/directory/list/room/{new_room_id}")
    assert vis["visibility"] == "public"
    status, vis = await alice.get(f"{V3}/directory/list/room/{room_id}")
    assert vis["visibility"] == "private"
    # The old room now needs moderators to talk; the new one has the old power levels.
    old_levels = await _state(alice, room_id, "m.room.power_levels")
    assert old_levels["events_default"] == 50 and old_levels["invite"] == 50
    new_levels = await _state(alice, new_room_id, "m.room.power_levels")
    assert new_levels["users"] == {ALICE: 100}


async def test_upgrade_refusals(alice, bob):
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = created["room_id"]
    status, body = await alice.post(f"{V3}/rooms/{room_id}/upgrade", {"new_version": "my_bad_version"})
    assert status == 400 and body["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"
    status, body = await alice.post(f"{V3}/rooms/!bogus:test.local/upgrade", {"new_version": "11"})
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    await bob.post(f"{V3}/join/{room_id}", {})
    status, body = await bob.post(f"{V3}/rooms/{room_id}/upgrade", {"new_version": "11"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await alice.get(f"{V3}/rooms/{room_id}/state/m.room.tombstone/")
    assert status == 404  # nothing happened


async def test_upgrade_to_v12_names_the_predecessor_without_an_event(alice):
    status, created = await alice.post(f"{V3}/createRoom", {"room_version": "11"})
    room_id = created["room_id"]
    status, body = await alice.post(f"{V3}/rooms/{room_id}/upgrade", {"new_version": "12"})
    assert status == 200, body
    create = await _state(alice, body["replacement_room"], "m.room.create")
    assert create["predecessor"] == {"room_id": room_id}
    levels = await _state(alice, body["replacement_room"], "m.room.power_levels")
    assert ALICE not in levels.get("users", {})  # v12 creators are not listed


async def test_tags_direct_and_push_rules_follow_the_user(alice, bob):
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = created["room_id"]
    await bob.post(f"{V3}/join/{room_id}", {})
    await alice.put(f"{V3}/user/{ALICE}/rooms/{room_id}/tags/u.work", {"order": 0.5})
    await alice.put(f"{V3}/user/{ALICE}/account_data/m.direct", {"@bob:test.local": [room_id]})
    status, _ = await bob.put(f"{V3}/pushrules/global/room/{room_id}", {"actions": ["notify"]})
    assert status == 200
    status, body = await alice.post(f"{V3}/rooms/{room_id}/upgrade", {"new_version": "11"})
    new_room_id = body["replacement_room"]
    status, tags = await alice.get(f"{V3}/user/{ALICE}/rooms/{new_room_id}/tags")
    assert tags["tags"] == {"u.work": {"order": 0.5}}
    status, direct = await alice.get(f"{V3}/user/{ALICE}/account_data/m.direct")
    assert direct == {"@bob:test.local": [room_id, new_room_id]}
    # Bob's rule follows him when he joins the replacement.
    status, _ = await bob.post(f"{V3}/join/{new_room_id}", {})
    assert status == 200
    status, rule = await bob.get(f"{V3}/pushrules/global/room/{new_room_id}")
    assert status == 200 and rule["actions"] == ["notify"]
