"""Initial /sync reads its rooms in batches: one query per kind of data for all rooms, and
the same answer whether the rooms come from memory (the event pipeline's recent events) or
from the database (a server started again on the same database)."""

import json
import uuid

from homeserver.app import build_services
from homeserver.web_app import make_web_app
from storage.aux_stream import AuxStreamStore
from storage.database import Database
from storage.events import EventStore
from tests.statement_log import StatementLog
from tests.conftest import make_test_config
from tests.server_fixtures import MatrixClient

V3 = "/_matrix/client/v3"


async def make_rooms(alice, bob, count):
    """Rooms unlike each other: a long history (state before the timeline), a name, history
    visible to members only from their join, a room bob left, an invite."""
    rooms = []
    for i in range(count):
        kind = i % 4
        body = {"preset": "public_chat"} if kind != 2 else {
            "preset": "public_chat", "initial_state": [
                {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}]}
        if kind == 1:
            body["name"] = f"Room {i}"
        room = (await alice.post(f"{V3}/createRoom", body))[1]["room_id"]
        for j in range(14 if kind == 0 else 2):
            await alice.put(f"{V3}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                            {"msgtype": "m.text", "body": f"before {j}"})
        if kind == 3 and i % 8 == 3:
            await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"})
        else:
            assert (await bob.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
            await alice.put(f"{V3}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                            {"msgtype": "m.text", "body": "after"})
            if kind == 3:
                await bob.post(f"{V3}/rooms/{room}/leave", {})
        rooms.append(room)
    return rooms


def essentials(body):
    """What a client takes from an initial sync, ages and tokens left out."""
    out = {}
    for section in ("join", "leave", "invite"):
        for room_id, room in body["rooms"].get(section, {}).items():
            if section == "invite":
                out[room_id] = ("invite", sorted(e["type"] for e in room["invite_state"]["events"]))
                continue
            out[room_id] = (section, [e["event_id"] for e in room["timeline"]["events"]],
                            room["timeline"]["limited"], sorted(e["event_id"] for e in room["state"]["events"]),
                            room.get("summary"), [json.dumps(e.get("content"), sort_keys=True)
                                                  for e in room["timeline"]["events"]])
    return out


async def initial_sync(c):
    status, body = await c.get(f"{V3}/sync?timeout=0&filter=" + json.dumps({"room": {"include_leave": True}}))
    assert status == 200, body
    return body


async def test_initial_sync_reads_each_kind_of_data_once_for_all_rooms(alice, bob, monkeypatch):
    await make_rooms(alice, bob, 4)
    log = StatementLog(monkeypatch)
    await initial_sync(bob)
    few = len(log.statements)
    await make_rooms(alice, bob, 12)
    log.statements.clear()
    body = await initial_sync(bob)
    assert len(body["rooms"]["join"]) + len(body["rooms"]["leave"]) + len(body["rooms"]["invite"]) == 16
    # Invites read their stripped state one by one (a few); everything else is per kind.
    invites = len(body["rooms"]["invite"])
    assert len(log.statements) <= few + 2 * invites, log.statements


async def test_the_database_gives_what_memory_gives(alice, bob, db_url, signing_key, aiohttp_client):
    await make_rooms(alice, bob, 8)
    from_memory = await initial_sync(bob)
    # The same database served by a server started afresh: nothing of these rooms in memory.
    db = await Database.connect(db_url, min_size=1, max_size=3)
    try:
        services = build_services(make_test_config(), db, signing_key=signing_key,
                                  stream_position=await EventStore(db).current_stream_position(),
                                  aux_position=await AuxStreamStore(db).current_position())
        restarted = MatrixClient(await aiohttp_client(make_web_app(services, ["client"])), bob.token)
        from_database = await initial_sync(restarted)
    finally:
        await db.close()
    assert essentials(from_database) == essentials(from_memory)
    assert len(essentials(from_memory)) == 8
