"""Purging a room's history through the admin API (Synapse's purge_history_api.md): events
before the point leave the database (state and, unless asked, local events stay but leave the
timeline), and /messages, /sync and the admin /messages no longer return them."""

import asyncio

from tests.api.admin.rooms_helpers import ADMIN_V1, V3, create_room, join, q, send_text, sync, wait_for

PURGE = f"{ADMIN_V1}/purge_history"


async def purge(admin, path: str, body: dict) -> dict:
    status, answer = await admin.post(path, body)
    assert status == 200 and set(answer) == {"purge_id"}, answer
    return await wait_for(admin, f"{ADMIN_V1}/purge_history_status/{answer['purge_id']}")


async def stored(db, event_ids: list[str]) -> list[str]:
    rows = await db.fetch("SELECT event_id FROM events WHERE event_id = ANY($1::text[])", event_ids)
    found = {r["event_id"] for r in rows}
    return [e for e in event_ids if e in found]


async def message_bodies(client, path: str) -> list[str]:
    status, page = await client.get(path)
    assert status == 200, page
    return [e["content"]["body"] for e in page["chunk"] if e["type"] == "m.room.message"]


async def test_a_purge_up_to_an_event_deletes_what_came_before(admin, alice, bob, db):
    room = await create_room(alice, preset="public_chat")
    await join(bob, room)
    sent = [await send_text(alice if n % 2 else bob, room, f"m{n}") for n in range(6)]
    await alice.put(f"{V3}/rooms/{q(room)}/redact/{q(sent[0])}/r1", {})
    state_before = await db.fetchval("SELECT count(*) FROM events WHERE room_id = $1 AND state_key IS NOT NULL", room)

    assert await purge(admin, f"{PURGE}/{q(room)}/{q(sent[3])}", {"delete_local_events": True}) == \
        {"status": "complete"}
    # Non-state events below m3 are gone (the redaction came after m3: it stays); m3 and
    # everything after it stay; state stays.
    assert await stored(db, sent) == sent[3:]
    assert await db.fetchval("SELECT count(*) FROM events WHERE room_id = $1 AND state_key IS NOT NULL", room) \
        == state_before
    assert await db.fetchval("SELECT count(*) FROM event_edges WHERE event_id = ANY($1::text[])", sent[:3]) == 0

    # Clients and the admin API page back to m3 and no further.
    assert await message_bodies(alice, f"{V3}/rooms/{q(room)}/messages?dir=b&limit=50") == ["m5", "m4", "m3"]
    assert await message_bodies(admin, f"{ADMIN_V1}/rooms/{q(room)}/messages?dir=f&limit=50") == ["m3", "m4", "m5"]
    status, page = await alice.get(f"{V3}/rooms/{q(room)}/messages?dir=b&limit=50")
    assert all(e["type"] != "m.room.create" for e in page["chunk"])  # the kept state left the timeline
    timeline = (await sync(bob))["rooms"]["join"][room]["timeline"]["events"]
    assert [e["content"].get("body") for e in timeline if e["type"] == "m.room.message"] == ["m3", "m4", "m5"]
    status, context = await admin.get(f"{ADMIN_V1}/rooms/{q(room)}/context/{q(sent[1])}")
    assert status == 404
    # The room goes on: state intact, sends work.
    await send_text(bob, room, "after")
    status, members = await alice.get(f"{V3}/rooms/{q(room)}/joined_members")
    assert set(members["joined"]) == {"@alice:test.local", "@bob:test.local"}
    entry = (await admin.get(f"{ADMIN_V1}/audit_log?action=room.purge_history"))[1]["entries"][0]
    assert entry["target"] == room and entry["details"]["event_id"] == sent[3]


async def test_local_events_are_kept_unless_asked_but_leave_the_timeline(admin, alice, db):
    room = await create_room(alice)
    sent = [await send_text(alice, room, f"m{n}") for n in range(4)]
    assert (await purge(admin, f"{PURGE}/{q(room)}", {"purge_up_to_event_id": sent[2]}))["status"] == "complete"
    assert await stored(db, sent) == sent
    assert await message_bodies(alice, f"{V3}/rooms/{q(room)}/messages?dir=b&limit=50") == ["m3", "m2"]
    # Asked again with delete_local_events, they go.
    assert (await purge(admin, f"{PURGE}/{q(room)}", {"purge_up_to_event_id": sent[2],
                                                       "delete_local_events": True}))["status"] == "complete"
    assert await stored(db, sent) == sent[2:]


async def test_a_purge_up_to_a_time_keeps_the_last_event_before_it(admin, alice, db):
    room = await create_room(alice)
    early = [await send_text(alice, room, f"old{n}") for n in range(3)]
    await asyncio.sleep(0.02)
    cut = await db.fetchval("SELECT max(received_ts) FROM events WHERE room_id = $1", room) + 1
    await asyncio.sleep(0.02)
    late = await send_text(alice, room, "new")
    result = await purge(admin, f"{PURGE}/{q(room)}", {"purge_up_to_ts": cut, "delete_local_events": True})
    assert result == {"status": "complete"}
    assert await stored(db, [*early, late]) == [early[2], late]
    status, answer = await admin.post(f"{PURGE}/{q(room)}", {"purge_up_to_ts": 1})
    assert status == 404 and answer == {"errcode": "M_NOT_FOUND", "error": "there is no event to be purged"}


async def test_bad_purges_get_matrix_errors(admin, alice):
    room = await create_room(alice)
    other = await create_room(alice)
    event = await send_text(alice, room, "x")
    elsewhere = await send_text(alice, other, "y")
    cases = [
        (f"{PURGE}/{q(room)}", {}, 400, "M_BAD_JSON"),
        (f"{PURGE}/{q(room)}", {"purge_up_to_ts": "yesterday"}, 400, "M_BAD_JSON"),
        (f"{PURGE}/{q(room)}", {"purge_up_to_ts": True}, 400, "M_BAD_JSON"),
        (f"{PURGE}/{q(room)}/{q(event)}", {"delete_local_events": "yes"}, 400, "M_BAD_JSON"),
        (f"{PURGE}/{q(room)}/{q(elsewhere)}", {}, 400, "M_INVALID_PARAM"),
        (f"{PURGE}/{q(room)}", {"purge_up_to_event_id": 5}, 400, "M_INVALID_PARAM"),
        (f"{PURGE}/{q(room)}/{q('$missing')}", {}, 404, "M_NOT_FOUND"),
        (f"{PURGE}/{q('!nope:test.local')}/{q(event)}", {}, 404, "M_NOT_FOUND"),
        (f"{PURGE}/invalidroom", {"purge_up_to_ts": 5}, 400, "M_INVALID_PARAM"),
    ]
    for path, body, status_, errcode in cases:
        status, answer = await admin.post(path, body)
        assert status == status_ and answer["errcode"] == errcode, (path, body, answer)
    status, answer = await admin.request("POST", f"{PURGE}/{q(room)}/{q(event)}", raw=b"[1]")
    assert status == 400 and answer["errcode"] == "M_BAD_JSON"
    status, answer = await admin.get(f"{ADMIN_V1}/purge_history_status/unknown")
    assert status == 404 and answer["errcode"] == "M_NOT_FOUND"
    # A deletion's ID is no purge's.
    status, deletion = await admin.delete(f"/_synapse/admin/v2/rooms/{q(other)}", {})
    assert (await admin.get(f"{ADMIN_V1}/purge_history_status/{deletion['delete_id']}"))[0] == 404
    status, answer = await alice.post(f"{PURGE}/{q(room)}/{q(event)}", {})
    assert status == 403 and answer["errcode"] == "M_FORBIDDEN"


async def test_a_purge_waits_for_the_push_actions_of_events_already_sent(admin, alice, bob, db, monkeypatch):
    # Push actions are written after the sender is answered; a purge that ran meanwhile
    # would delete the events and leave their actions behind.
    from storage.push import PushActionStore

    room = await create_room(alice, preset="public_chat")
    await join(bob, room)
    release, held = asyncio.Event(), []
    write = PushActionStore.add

    async def add_when_released(self, actions):
        held.append(actions)
        await release.wait()
        await write(self, actions)
    monkeypatch.setattr(PushActionStore, "add", add_when_released)
    sent = [await send_text(bob, room, f"m{n}") for n in range(3)]
    status, answer = await admin.post(f"{PURGE}/{q(room)}/{q(sent[2])}", {"delete_local_events": True})
    assert status == 200, answer
    await asyncio.sleep(0.3)
    assert held  # the actions of the messages are being written
    status, progress = await admin.get(f"{ADMIN_V1}/purge_history_status/{answer['purge_id']}")
    assert progress == {"status": "active"}
    release.set()
    assert await wait_for(admin, f"{ADMIN_V1}/purge_history_status/{answer['purge_id']}") == {"status": "complete"}
    assert await stored(db, sent) == sent[2:]
    rows = await db.fetch("SELECT event_id FROM event_push_actions WHERE room_id = $1", room)
    assert {r["event_id"] for r in rows} == {sent[2]}  # alice's action for the message kept, none orphaned
