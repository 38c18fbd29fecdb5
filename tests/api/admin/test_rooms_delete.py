"""Deleting rooms through the admin API (v1 synchronous, v2 in the background with status),
with the effects: members gone from the room (and told so by /sync), aliases moved or removed,
the room out of the directory, blocked, and purged from the database."""

import pytest

from tests.api.admin.rooms_helpers import ADMIN_V1, ADMIN_V2, V3, create_room, join, q, send_text, sync, wait_for


@pytest.fixture
async def charlie(client):
    return client.with_token((await client.register("charlie"))["access_token"])


async def room_rows(db, room_id: str) -> dict[str, int]:
    """How many rows the database still holds of a room, table by table."""
    counts = {}
    for table in ("events", "current_state", "room_memberships", "state_groups", "forward_extremities",
                  "rooms", "room_stats", "room_aliases", "published_rooms", "receipts", "account_data"):
        counts[table] = await db.fetchval(f"SELECT count(*) FROM {table} WHERE room_id = $1", room_id)
    return counts


async def test_v1_shuts_a_room_down_into_a_notice_room(admin, alice, bob, charlie, db):
    room = await create_room(alice, name="Bad", preset="public_chat", room_alias_name="bad", visibility="public")
    await join(bob, room)
    assert (await alice.post(f"{V3}/rooms/{q(room)}/invite", {"user_id": "@charlie:test.local"}))[0] == 200
    await send_text(bob, room, "illegal things")
    assert (await bob.post(f"{V3}/rooms/{q(room)}/receipt/m.read/{q(await send_text(alice, room, 'x'))}", {}))[0] == 200
    assert (await bob.put(f"{V3}/user/{q('@bob:test.local')}/rooms/{q(room)}/tags/u.work", {}))[0] == 200
    alice_token, bob_token = (await sync(alice))["next_batch"], (await sync(bob))["next_batch"]

    status, result = await admin.delete(f"{ADMIN_V1}/rooms/{q(room)}", {
        "new_room_user_id": "@moderator:test.local", "room_name": "Closed", "message": "We closed it."})
    assert status == 200, result
    assert sorted(result["kicked_users"]) == ["@alice:test.local", "@bob:test.local", "@charlie:test.local"]
    assert result["failed_to_kick_users"] == [] and result["local_aliases"] == ["#bad:test.local"]
    notice_room = result["new_room_id"]

    # The members who were joined are in the notice room, with the message; the invitee is not.
    for user, token in ((alice, alice_token), (bob, bob_token)):
        assert (await user.get(f"{V3}/joined_rooms"))[1]["joined_rooms"] == [notice_room]
        body = await sync(user, token)
        assert room in body["rooms"]["leave"]
        left = body["rooms"]["leave"][room]["timeline"]["events"]
        assert left[-1]["type"] == "m.room.member" and left[-1]["content"]["membership"] == "leave"
        notices = body["rooms"]["join"][notice_room]
        assert any(e["type"] == "m.room.message" and e["content"]["body"] == "We closed it."
                   and e["sender"] == "@moderator:test.local" for e in notices["timeline"]["events"])
    assert notice_room not in (await charlie.get(f"{V3}/joined_rooms"))[1]["joined_rooms"]
    status, name = await alice.get(f"{V3}/rooms/{q(notice_room)}/state/m.room.name/")
    assert name == {"name": "Closed"}
    status, levels = await alice.get(f"{V3}/rooms/{q(notice_room)}/state/m.room.power_levels/")
    assert levels["users_default"] == -10
    status, speak = await alice.put(f"{V3}/rooms/{q(notice_room)}/send/m.room.message/t1", {"body": "no"})
    assert status == 403
    # The alias now leads to the notice room; the old room is out of the directory.
    assert (await bob.get(f"{V3}/directory/room/{q('#bad:test.local')}"))[1]["room_id"] == notice_room
    public = (await bob.get(f"{V3}/publicRooms"))[1]["chunk"]
    assert room not in [r["room_id"] for r in public]

    # Purged (the default): of the room only what the local users' /sync needs is left, their
    # departures (3 events) and their membership history (join or invite, then leave: 6 rows).
    counts = await room_rows(db, room)
    assert counts == {"events": 3, "current_state": 0, "room_memberships": 6, "state_groups": 0,
                      "forward_extremities": 0, "rooms": 0, "room_stats": 0, "room_aliases": 0,
                      "published_rooms": 0, "receipts": 0, "account_data": 0}
    assert await db.fetchval("SELECT count(*) FROM events WHERE room_id = $1 AND type <> 'm.room.member'", room) == 0
    status, body = await admin.get(f"{ADMIN_V1}/rooms/{q(room)}")
    assert status == 404
    # The room is not blocked (block was not asked): but nobody is left here to let anyone in.
    assert (await admin.get(f"{ADMIN_V1}/rooms/{q(room)}/block"))[1] == {"block": False}
    entry = (await admin.get(f"{ADMIN_V1}/audit_log?action=room.delete"))[1]["entries"][0]
    assert entry["target"] == room and entry["details"]["new_room_user_id"] == "@moderator:test.local"


async def test_v2_deletes_in_the_background_blocks_and_reports(admin, alice, bob, db):
    room = await create_room(alice, preset="public_chat", room_alias_name="gone")
    await join(bob, room)
    for n in range(20):
        await send_text(alice, room, f"message {n}")
    bob_token = (await sync(bob))["next_batch"]

    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(room)}", {"block": True})
    assert status == 200 and set(body) == {"delete_id"}
    delete_id = body["delete_id"]
    done = await wait_for(admin, f"{ADMIN_V2}/rooms/delete_status/{delete_id}")
    assert done == {"delete_id": delete_id, "room_id": room, "status": "complete", "shutdown_room": {
        "kicked_users": ["@alice:test.local", "@bob:test.local"], "failed_to_kick_users": [],
        "local_aliases": [], "new_room_id": None}}
    status, by_room = await admin.get(f"{ADMIN_V2}/rooms/{q(room)}/delete_status")
    assert status == 200 and by_room == {"results": [done]}

    # Gone for its members, however late they sync, and blocked for their return.
    body = await sync(bob, bob_token)
    assert room in body["rooms"]["leave"] and room not in body["rooms"].get("join", {})
    assert (await bob.get(f"{V3}/joined_rooms"))[1]["joined_rooms"] == []
    status, refused = await bob.post(f"{V3}/join/{q(room)}", {})
    assert status == 403 and refused["error"] == "This room has been blocked on this server"
    assert (await admin.get(f"{ADMIN_V1}/rooms/{q(room)}/block"))[1] == {"block": True, "user_id": "@admin:test.local"}
    # Its alias is gone, its messages too.
    assert (await bob.get(f"{V3}/directory/room/{q('#gone:test.local')}"))[0] == 404
    assert await db.fetchval("SELECT count(*) FROM events WHERE room_id = $1 AND type = 'm.room.message'", room) == 0
    assert (await admin.get(f"{ADMIN_V1}/rooms?search_term={q(room)}"))[1]["total_rooms"] == 0
    # The room's cached state went with it: sending into it fails as for any unknown room.
    status, _ = await alice.put(f"{V3}/rooms/{q(room)}/send/m.room.message/late", {"body": "x"})
    assert status in (403, 404)


async def test_a_deletion_without_purge_leaves_an_empty_forgotten_room(admin, alice, bob):
    room = await create_room(alice, preset="public_chat")
    await join(bob, room)
    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(room)}", {"purge": False})
    assert status == 200, body
    done = await wait_for(admin, f"{ADMIN_V2}/rooms/delete_status/{body['delete_id']}")
    assert done["status"] == "complete", done
    status, details = await admin.get(f"{ADMIN_V1}/rooms/{q(room)}")
    assert status == 200 and details["joined_members"] == 0 and details["forgotten"] is True
    # Not blocked: a member may come back only if let in, and nobody is left to let them.
    status, members = await admin.get(f"{ADMIN_V1}/rooms/{q(room)}/members")
    assert members == {"members": [], "total": 0}


async def test_deleting_a_room_this_server_does_not_know(admin):
    unknown = "!unknown:test.local"
    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(unknown)}", {"block": True})
    assert status == 200, body
    done = await wait_for(admin, f"{ADMIN_V2}/rooms/delete_status/{body['delete_id']}")
    assert done["status"] == "complete" and done["shutdown_room"]["kicked_users"] == []
    assert (await admin.get(f"{ADMIN_V1}/rooms/{q(unknown)}/block"))[1]["block"] is True
    status, result = await admin.delete(f"{ADMIN_V1}/rooms/{q('!other:test.local')}", {})
    assert (status, result) == (200, {"kicked_users": [], "failed_to_kick_users": [], "local_aliases": [],
                                      "new_room_id": None})


async def test_bad_deletions_get_matrix_errors(admin, alice):
    room = await create_room(alice)
    for version in (ADMIN_V1, ADMIN_V2):
        for body, errcode in (({"block": "yes"}, "M_BAD_JSON"), ({"purge": 1}, "M_BAD_JSON"),
                              ({"force_purge": None}, "M_BAD_JSON"), ({"message": 5}, "M_BAD_JSON"),
                              ({"new_room_user_id": "@mod:elsewhere.example"}, "M_INVALID_PARAM"),
                              ({"new_room_user_id": 7}, "M_INVALID_PARAM")):
            status, answer = await admin.delete(f"{version}/rooms/{q(room)}", body)
            assert status == 400 and answer["errcode"] == errcode, (version, body, answer)
        status, answer = await admin.delete(f"{version}/rooms/invalidroom", {})
        assert status == 400 and answer["error"] == "invalidroom is not a legal room ID"
        status, answer = await admin.delete(f"{version}/rooms/{q(room)}")
        assert status == 400 and answer["errcode"] == "M_NOT_JSON"
    status, answer = await admin.get(f"{ADMIN_V2}/rooms/delete_status/nope")
    assert status == 404 and answer["errcode"] == "M_NOT_FOUND"
    status, answer = await admin.get(f"{ADMIN_V2}/rooms/{q(room)}/delete_status")
    assert status == 404 and answer["errcode"] == "M_NOT_FOUND"
    status, answer = await admin.get(f"{ADMIN_V2}/rooms/invalidroom/delete_status")
    assert status == 400 and answer["errcode"] == "M_INVALID_PARAM"
    # Nothing was changed by any of these.
    assert (await admin.get(f"{ADMIN_V1}/rooms/{q(room)}"))[1]["joined_members"] == 1


async def test_a_deletion_cut_short_by_a_stop_is_reported_failed(admin, alice, db, services):
    """A task whose process died stops beating: reported failed at once it is stale, and
    recorded failed at the next start; a second deletion of the room may then go ahead."""
    room = await create_room(alice)
    now = services.room_tasks._clock.now_ms()
    await db.execute(
        """INSERT INTO room_admin_tasks (task_id, kind, room_id, status, params, requester, created_ts, updated_ts)
           VALUES ('stale', 'delete', $1, 'active', '{}', '@admin:test.local', $2, $2),
                  ('running', 'delete', '!other:test.local', 'active', '{}', '@admin:test.local', $3, $3)""",
        room, now - 10 * 60 * 1000, now)
    status, body = await admin.get(f"{ADMIN_V2}/rooms/delete_status/stale")
    assert status == 200 and body["status"] == "failed" and "Interrupted" in body["error"]
    # A deletion still beating elsewhere blocks another one of the same room.
    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q('!other:test.local')}", {})
    assert status == 400 and body["error"] == "Purge already in progress for !other:test.local"

    await services.room_tasks.recover()
    assert await db.fetchval("SELECT status FROM room_admin_tasks WHERE task_id = 'stale'") == "failed"
    assert await db.fetchval("SELECT status FROM room_admin_tasks WHERE task_id = 'running'") == "active"
    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(room)}", {})
    assert status == 200
    await services.room_deletion.wait(body["delete_id"])
    status, results = await admin.get(f"{ADMIN_V2}/rooms/{q(room)}/delete_status")
    assert [r["status"] for r in results["results"]] == ["failed", "complete"]


async def test_a_stop_marks_running_deletions_failed(admin, alice, services):
    room = await create_room(alice)
    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(room)}", {})
    assert status == 200
    await services.room_tasks.stop()
    status, answer = await admin.get(f"{ADMIN_V2}/rooms/delete_status/{body['delete_id']}")
    assert answer["status"] in ("complete", "failed")
    if answer["status"] == "failed":
        assert "Interrupted" in answer["error"]


async def test_a_purge_waits_for_local_members_to_be_gone_unless_forced(admin, alice, bob, services, monkeypatch, db):
    room = await create_room(alice, preset="public_chat")
    await join(bob, room)
    leave = services.membership.leave

    async def stuck(user_id, room_id, reason=None):
        if user_id == "@bob:test.local":
            raise RuntimeError("cannot leave")
        return await leave(user_id, room_id, reason)
    monkeypatch.setattr(services.membership, "leave", stuck)

    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(room)}", {})
    done = await wait_for(admin, f"{ADMIN_V2}/rooms/delete_status/{body['delete_id']}")
    assert done["status"] == "failed" and done["error"] == "Users are still joined to this room"
    assert done["shutdown_room"]["kicked_users"] == ["@alice:test.local"]
    assert done["shutdown_room"]["failed_to_kick_users"] == ["@bob:test.local"]
    assert await db.fetchval("SELECT count(*) FROM events WHERE room_id = $1", room) > 3  # not purged

    status, body = await admin.delete(f"{ADMIN_V2}/rooms/{q(room)}", {"force_purge": True})
    done = await wait_for(admin, f"{ADMIN_V2}/rooms/delete_status/{body['delete_id']}")
    assert done["status"] == "complete" and done["shutdown_room"]["failed_to_kick_users"] == ["@bob:test.local"]
    # Purged with bob still in it: the room is gone from under him (as Synapse warns).
    assert (await bob.get(f"{V3}/joined_rooms"))[1]["joined_rooms"] == []
    assert await db.fetchval("SELECT count(*) FROM events WHERE room_id = $1 AND sender = '@bob:test.local'", room) == 0
