"""Presence in an incremental /sync: the room mates whose presence moved, and only they, and
working it out costs what moved, not the size of the user's rooms."""

from tests.api.test_device_lists import new_room
from tests.api.test_sync import V3, sync
from tests.api.test_sync_room_size import add_members
from tests.statement_log import StatementLog


async def set_presence(c, user_id: str, state: str, status_msg: str) -> None:
    status, body = await c.put(f"{V3}/presence/{user_id}/status", {"presence": state, "status_msg": status_msg})
    assert status == 200, body


def presence_of(body) -> dict[str, dict]:
    return {e["sender"]: e["content"] for e in body.get("presence", {}).get("events", [])}


async def test_presence_of_room_mates_costs_what_moved_not_the_room_size(alice, bob, client, services, monkeypatch):
    room = await new_room(alice, bob)
    carol = client.with_token((await client.register("carol"))["access_token"])  # shares no room with bob
    rows = []
    for round_, members in enumerate((5, 60)):
        await add_members(services, room, len(rows) * 5, members - len(rows) * 5)
        token = (await sync(bob, set_presence="offline"))["next_batch"]
        await set_presence(alice, "@alice:test.local", "unavailable", f"round {round_}")
        await set_presence(carol, "@carol:test.local", "online", "elsewhere")
        log = StatementLog(monkeypatch)
        body = await sync(bob, token, set_presence="offline")
        monkeypatch.undo()
        seen = presence_of(body)
        assert seen["@alice:test.local"]["status_msg"] == f"round {round_}"
        assert "@carol:test.local" not in seen  # no room in common
        # No statement reads the members of bob's room (the old way read all of them).
        assert max(n for _, n in log.statements) < 5, log.statements
        rows.append(log.rows)
    assert rows[1] <= rows[0] + 2, rows
