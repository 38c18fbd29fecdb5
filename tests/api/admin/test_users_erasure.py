"""Deactivating with `erase`, as Synapse does it: the profile goes, and the erased user's events
are served redacted to whoever joins their rooms afterwards, never to those who were there."""

import uuid
from urllib.parse import quote

V3 = "/_matrix/client/v3"
ADMIN_V1 = "/_synapse/admin/v1"
ALICE = "@alice:test.local"


async def send(c, room_id, text):
    status, body = await c.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": text})
    assert status == 200, body
    return body["event_id"]


async def messages(c, room_id):
    status, body = await c.get(f"{V3}/rooms/{room_id}/messages?dir=b&limit=50")
    assert status == 200, body
    return {e["event_id"]: e for e in body["chunk"]}


async def initial_timeline(c, room_id):
    status, body = await c.get(f"{V3}/sync?timeout=0&filter=" + quote('{"room":{"timeline":{"limit":50}}}'))
    assert status == 200, body
    return {e["event_id"]: e for e in body["rooms"]["join"][room_id]["timeline"]["events"]}


async def alice_room_with_history(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "name": "Erasure"})
    room_id = room["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room_id}/join", {}))[0] == 200
    said = [await send(alice, room_id, f"alice says {n}") for n in range(3)]
    return room_id, said


async def test_erased_users_events_are_redacted_for_later_joiners_only(admin, client, alice, bob):
    room_id, said = await alice_room_with_history(alice, bob)
    status, alice_join = await alice.get(f"{V3}/rooms/{room_id}/state/m.room.member/{quote(ALICE)}")
    status, body = await admin.post(f"{ADMIN_V1}/deactivate/{quote(ALICE)}", {"erase": True})
    assert status == 200, body
    carol = client.with_token((await client.register("carol"))["access_token"])
    assert (await carol.post(f"{V3}/rooms/{room_id}/join", {}))[0] == 200

    # Carol joined afterwards: alice's messages come redacted, through /messages and /sync.
    for seen in (await messages(carol, room_id), await initial_timeline(carol, room_id)):
        for event_id in said:
            assert seen[event_id]["content"] == {} and seen[event_id]["sender"] == ALICE
    # ... and through /event and /context.
    status, event = await carol.get(f"{V3}/rooms/{room_id}/event/{said[0]}")
    assert status == 200 and event["content"] == {}
    status, context = await carol.get(f"{V3}/rooms/{room_id}/context/{said[1]}?limit=5")
    assert context["event"]["content"] == {}
    assert all(e["content"] == {} for e in context["events_before"] + context["events_after"]
               if e["sender"] == ALICE and e["type"] == "m.room.message")
    # Alice's old join event no longer carries her profile for carol.
    joins = [e for e in (await messages(carol, room_id)).values()
             if e["type"] == "m.room.member" and e["state_key"] == ALICE and e["content"].get("membership") == "join"]
    assert joins and all("displayname" not in e["content"] for e in joins)
    # The room's own state set by alice (its name) stays.
    status, name = await carol.get(f"{V3}/rooms/{room_id}/state/m.room.name")
    assert name == {"name": "Erasure"}

    # Bob was there: he still reads them, through /messages and /sync.
    for seen in (await messages(bob, room_id), await initial_timeline(bob, room_id)):
        assert [seen[e]["content"]["body"] for e in said] == [f"alice says {n}" for n in range(3)]
    assert alice_join["displayname"] == "alice"

    # The profile is gone.
    status, body = await carol.get(f"{V3}/profile/{quote(ALICE)}")
    assert status == 404
    status, user = await admin.get(f"/_synapse/admin/v2/users/{quote(ALICE)}")
    assert user["erased"] is True and user["deactivated"] is True and user["displayname"] is None


async def test_reactivation_ends_the_erasure(admin, client, alice, bob):
    room_id, said = await alice_room_with_history(alice, bob)
    await admin.post(f"{ADMIN_V1}/deactivate/{quote(ALICE)}", {"erase": True})
    carol = client.with_token((await client.register("carol"))["access_token"])
    await carol.post(f"{V3}/rooms/{room_id}/join", {})
    assert (await messages(carol, room_id))[said[0]]["content"] == {}
    status, body = await admin.put(f"/_synapse/admin/v2/users/{quote(ALICE)}", {"deactivated": False, "password": "pw-2"})
    assert status == 200 and body["erased"] is False
    assert (await messages(carol, room_id))[said[0]]["content"]["body"] == "alice says 0"


async def test_deactivation_without_erase_redacts_nothing(admin, client, alice, bob):
    room_id, said = await alice_room_with_history(alice, bob)
    await admin.post(f"{ADMIN_V1}/deactivate/{quote(ALICE)}", {})
    carol = client.with_token((await client.register("carol"))["access_token"])
    await carol.post(f"{V3}/rooms/{room_id}/join", {})
    seen = await messages(carol, room_id)
    assert [seen[e]["content"]["body"] for e in said] == [f"alice says {n}" for n in range(3)]
    status, user = await admin.get(f"/_synapse/admin/v2/users/{quote(ALICE)}")
    assert user["erased"] is False and user["displayname"] == "alice"


async def test_admins_read_erased_users_messages_through_the_admin_api(admin, alice, bob):
    """As Synapse's admin /messages and /context: no history visibility and no erasure."""
    room_id, said = await alice_room_with_history(alice, bob)
    await admin.post(f"{ADMIN_V1}/deactivate/{quote(ALICE)}", {"erase": True})
    status, page = await admin.get(f"{ADMIN_V1}/rooms/{quote(room_id)}/messages?dir=b&limit=50")
    assert status == 200, page
    bodies = {e["event_id"]: e["content"].get("body") for e in page["chunk"]}
    assert [bodies[e] for e in said] == [f"alice says {n}" for n in range(3)]
    status, context = await admin.get(f"{ADMIN_V1}/rooms/{quote(room_id)}/context/{said[1]}")
    assert status == 200 and context["event"]["content"]["body"] == "alice says 1"
