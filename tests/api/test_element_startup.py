"""An Element-style start-up and steady state, request by request as Element Web makes them:
versions, capabilities, push rules, filter upload, initial sync with lazy-loaded members,
then incremental long-polls carrying messages, unread counts that follow read receipts,
and the push rules as account data when they change."""

import asyncio
import json
from urllib.parse import quote

from tests.api.test_sync import V3, send, sync
from tests.api.test_sync_ephemeral import shared_room

ELEMENT_FILTER = {
    "room": {
        "state": {"lazy_load_members": True},
        "timeline": {"unread_thread_notifications": True},
    },
}


async def test_element_start_up_then_incremental_syncs(alice, bob, client):
    carol = client.with_token((await client.register("carol"))["access_token"])
    room = await shared_room(alice, bob)
    await carol.post(f"{V3}/rooms/{room}/join", {})
    for i in range(3):
        await send(alice, room, f"before {i}")

    status, versions = await bob.get("/_matrix/client/versions")
    assert status == 200 and "v1.19" in versions["versions"]
    status, caps = await bob.get(f"{V3}/capabilities")
    assert status == 200 and "m.room_versions" in caps["capabilities"]
    status, rules = await bob.get(f"{V3}/pushrules/")
    assert status == 200
    assert ".m.rule.master" in [r["rule_id"] for r in rules["global"]["override"]]
    status, body = await bob.post(f"{V3}/user/@bob:test.local/filter", ELEMENT_FILTER)
    filter_id = body["filter_id"]

    initial = await sync(bob, filter=filter_id, set_presence="online")
    joined = initial["rooms"]["join"][room]
    members = {e["state_key"] for e in joined["state"]["events"] if e["type"] == "m.room.member"}
    timeline_members = {e["state_key"] for e in joined["timeline"]["events"] if e["type"] == "m.room.member"}
    assert "@carol:test.local" not in members  # carol has not spoken: not loaded
    assert "@alice:test.local" in members | timeline_members
    assert joined["summary"]["m.joined_member_count"] == 3
    assert joined["unread_notifications"]["notification_count"] >= 3
    push_rules = [e for e in initial["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert push_rules and push_rules[0]["content"] == rules

    # Steady state: bob reads everything; new messages wake his long-poll and count.
    last = joined["timeline"]["events"][-1]["event_id"]
    await bob.post(f"{V3}/rooms/{room}/read_markers", {"m.fully_read": last, "m.read": last})
    token = (await sync(bob, initial["next_batch"], filter=filter_id))["next_batch"]
    waiting = asyncio.create_task(sync(bob, token, timeout=10000, filter=filter_id))
    await asyncio.sleep(0.1)
    mention = await send(alice, room, "hey @bob:test.local")
    await alice.put(f"{V3}/rooms/{room}/send/m.room.message/m1", {
        "msgtype": "m.text", "body": "bob!", "m.mentions": {"user_ids": ["@bob:test.local"]}})
    body = await waiting
    got = body["rooms"]["join"][room]
    assert mention in [e["event_id"] for e in got["timeline"]["events"]]
    if len(got["timeline"]["events"]) < 2:  # the second message may come in the next sync
        body = await sync(bob, body["next_batch"], filter=filter_id)
    counts = (await sync(bob, token, filter=filter_id))["rooms"]["join"][room]["unread_notifications"]
    # Both highlight: the first by display name (no m.mentions: the legacy rules apply), the
    # second by its m.mentions.
    assert counts == {"notification_count": 2, "highlight_count": 2}

    # Reading resets the count, and the change reaches the client.
    status, _ = await bob.post(f"{V3}/rooms/{room}/receipt/m.read/{mention}", {})
    body = await sync(bob, token, filter=filter_id)
    assert body["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 1

    # Changing a push rule delivers the new ruleset as account data.
    token = body["next_batch"]
    status, _ = await bob.put(f"{V3}/pushrules/global/room/{quote(room)}", {"actions": []})
    assert status == 200
    body = await sync(bob, token, filter=filter_id)
    content = [e for e in body["account_data"]["events"] if e["type"] == "m.push_rules"][0]["content"]
    assert room in [r["rule_id"] for r in content["global"]["room"]]


async def test_unread_counts_follow_threaded_receipts(alice, bob):
    room = await shared_room(alice, bob)
    root = await send(alice, room, "thread root")
    status, reply = await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t1", {
        "msgtype": "m.text", "body": "in thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    threaded = quote(json.dumps(ELEMENT_FILTER))
    body = await sync(bob, filter=threaded)
    joined = body["rooms"]["join"][room]
    assert joined["unread_thread_notifications"][root]["notification_count"] == 1
    await bob.post(f"{V3}/rooms/{room}/receipt/m.read/{reply['event_id']}", {"thread_id": root})
    body = await sync(bob, filter=threaded)
    assert root not in body["rooms"]["join"][room].get("unread_thread_notifications", {})
    # Without thread notifications asked for, threads count in the room's total.
    await alice.put(f"{V3}/rooms/{room}/send/m.room.message/t2", {
        "msgtype": "m.text", "body": "more", "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    body = await sync(bob)
    plain = body["rooms"]["join"][room]["unread_notifications"]["notification_count"]
    body = await sync(bob, filter=threaded)
    main_only = body["rooms"]["join"][room]["unread_notifications"]["notification_count"]
    assert plain == main_only + 1
