"""Push rules over HTTP, their evaluation into unread counts, /notifications, pushers and an
HTTP push gateway on loopback."""

import asyncio

import pytest
from aiohttp import web

from homeserver.config import PushConfig
from homeserver.errors import MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.push.notifications import total_counts
from homeserver.services.push.pushers import PusherService
from tests.api.test_relations_context import send, text

V3 = "/_matrix/client/v3"
ALICE, BOB, CAROL = "@alice:test.local", "@bob:test.local", "@carol:test.local"
GATEWAY_PATH = "/_matrix/push/v1/notify"


@pytest.fixture
def config_overrides():
    return {"push": {"allow_private_gateways": True}}


@pytest.fixture
async def carol(client):
    return client.with_token((await client.register("carol"))["access_token"])


async def make_room(owner, *members, **extra):
    status, body = await owner.post(f"{V3}/createRoom", {"preset": "public_chat", **extra})
    assert status == 200, body
    for member in members:
        status, joined = await member.post(f"{V3}/rooms/{body['room_id']}/join", {})
        assert status == 200, joined
    return body["room_id"]




async def counts(services, user_id, room, read_upto=None):
    return (await services.notifications.unread_counts(user_id, [room], read_upto or {}))[room]


async def position(db, event_id):
    return await db.fetchval("SELECT stream_ordering FROM events WHERE event_id = $1", event_id)


# --- push rules CRUD -------------------------------------------------------------------------

async def test_default_ruleset(alice):
    status, body = await alice.get(f"{V3}/pushrules/")
    assert status == 200
    rules = body["global"]
    assert set(rules) == {"override", "content", "room", "sender", "underride"}
    assert rules["override"][0]["rule_id"] == ".m.rule.master" and rules["override"][0]["enabled"] is False
    assert ".m.rule.is_user_mention" in [r["rule_id"] for r in rules["override"]]
    assert rules["content"][0]["pattern"] == "alice"
    assert [r["rule_id"] for r in rules["underride"]][-1] == ".m.rule.encrypted"
    # The global ruleset alone, and one kind's rules.
    status, glob = await alice.get(f"{V3}/pushrules/global/")
    assert status == 200 and glob == rules
    status, room_rules = await alice.get(f"{V3}/pushrules/global/room/")
    assert status == 200 and room_rules == rules["room"]
    # Without the trailing slashes, as Synapse answers (and sytest checks): 404 for
    # /pushrules, 400 M_UNRECOGNIZED for a scope or kind without one, or an unknown one.
    assert (await alice.get(f"{V3}/pushrules"))[0] == 404
    for path in ("global", "global/room", "not_a_scope/", "global/not_a_kind/",
                 "global/override/.m.rule.master/not_an_attr"):
        status, error = await alice.get(f"{V3}/pushrules/{path}")
        assert (status, error["errcode"]) == (400, "M_UNRECOGNIZED"), path
    status, error = await alice.get(f"{V3}/pushrules/global/override/.m.rule.master/enabled")
    assert (status, error) == (200, {"enabled": False})
    for path in ("", "global", "global/room", "global/room/", "not_a_scope/room/x",
                 "global/override/.m.rule.master/not_an_attr"):
        status, error = await alice.put(f"{V3}/pushrules/{path}", {"actions": ["notify"]})
        assert status == 400, path
    # A kind and rule ID given with a trailing slash still reach the rule.
    status, _ = await alice.put(f"{V3}/pushrules/global/room/!r:test.local/", {"actions": ["notify"]})
    assert status == 200
    assert (await alice.delete(f"{V3}/pushrules/global/room/!r:test.local/"))[0] == 200
    status, one = await alice.get(f"{V3}/pushrules/global/underride/.m.rule.message")
    assert one == {"rule_id": ".m.rule.message", "default": True, "enabled": True, "actions": ["notify"],
                   "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}]}


async def test_put_rules_with_before_and_after(alice):
    base = f"{V3}/pushrules/global/content"
    assert (await alice.put(f"{base}/a", {"pattern": "apple", "actions": ["notify"]}))[0] == 200
    assert (await alice.put(f"{base}/b", {"pattern": "banana", "actions": ["notify"]}))[0] == 200
    # A new rule without before/after is the most important of its kind.
    order = [r["rule_id"] for r in (await alice.get(f"{V3}/pushrules/global/"))[1]["content"]]
    assert order == ["b", "a", ".m.rule.contains_user_name"]
    assert (await alice.put(f"{base}/c?after=a", {"pattern": "cherry", "actions": []}))[0] == 200
    assert (await alice.put(f"{base}/d?before=a", {"pattern": "date", "actions": ["notify"]}))[0] == 200
    # before wins over after.
    assert (await alice.put(f"{base}/e?before=b&after=c", {"pattern": "elder", "actions": ["notify"]}))[0] == 200
    order = [r["rule_id"] for r in (await alice.get(f"{V3}/pushrules/global/"))[1]["content"]]
    assert order == ["e", "b", "d", "a", "c", ".m.rule.contains_user_name"]
    # Updating keeps the position (and the enabled flag); before/after moves it.
    assert (await alice.put(f"{base}/a/enabled", {"enabled": False}))[0] == 200
    assert (await alice.put(f"{base}/a", {"pattern": "apricot", "actions": ["dont_notify"]}))[0] == 200
    status, rule = await alice.get(f"{base}/a")
    assert rule == {"rule_id": "a", "default": False, "enabled": False, "actions": ["dont_notify"], "pattern": "apricot"}
    assert (await alice.put(f"{base}/a?after=c", {"pattern": "apricot", "actions": []}))[0] == 200
    order = [r["rule_id"] for r in (await alice.get(f"{V3}/pushrules/global/"))[1]["content"]]
    assert order == ["e", "b", "d", "c", "a", ".m.rule.contains_user_name"]
    # Delete.
    assert (await alice.delete(f"{base}/d"))[0] == 200
    status, body = await alice.get(f"{base}/d")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert (await alice.delete(f"{base}/d"))[1]["errcode"] == "M_NOT_FOUND"


async def test_override_room_and_sender_rules(alice):
    status, _ = await alice.put(f"{V3}/pushrules/global/override/beer", {
        "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                       {"kind": "room_member_count", "is": "<=10"}],
        "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}],
    })
    assert status == 200
    status, rule = await alice.get(f"{V3}/pushrules/global/override/beer")
    assert rule["conditions"][1] == {"kind": "room_member_count", "is": "<=10"} and rule["default"] is False
    rules = (await alice.get(f"{V3}/pushrules/"))[1]["global"]["override"]
    assert [r["rule_id"] for r in rules[:2]] == [".m.rule.master", "beer"]
    room_id = "!dj234r78wl45Gh4D:matrix.org"
    assert (await alice.put(f"{V3}/pushrules/global/room/{room_id.replace('!', '%21')}", {"actions": []}))[0] == 200
    assert (await alice.put(f"{V3}/pushrules/global/sender/%40spam%3Amatrix.org", {"actions": []}))[0] == 200
    rules = (await alice.get(f"{V3}/pushrules/"))[1]["global"]
    assert rules["room"] == [{"rule_id": room_id, "default": False, "enabled": True, "actions": []}]
    assert rules["sender"][0]["rule_id"] == "@spam:matrix.org"


async def test_default_rules_enabled_and_actions(alice):
    path = f"{V3}/pushrules/global/override/.m.rule.master"
    assert (await alice.get(f"{path}/enabled"))[1] == {"enabled": False}
    assert (await alice.put(f"{path}/enabled", {"enabled": True}))[0] == 200
    assert (await alice.get(f"{path}/enabled"))[1] == {"enabled": True}
    msg = f"{V3}/pushrules/global/underride/.m.rule.message"
    assert (await alice.get(f"{msg}/actions"))[1] == {"actions": ["notify"]}
    new = ["notify", {"set_tweak": "sound", "value": "bing"}]
    assert (await alice.put(f"{msg}/actions", {"actions": new}))[0] == 200
    assert (await alice.get(f"{msg}/actions"))[1] == {"actions": new}
    status, rule = await alice.get(msg)
    assert rule["default"] is True and rule["actions"] == new
    # Default rules cannot be created, replaced or deleted.
    status, body = await alice.put(msg, {"actions": ["notify"]})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.delete(msg)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    # A default rule is found only under its own kind.
    assert (await alice.get(f"{V3}/pushrules/global/override/.m.rule.message"))[0] == 404
    assert (await alice.put(f"{V3}/pushrules/global/override/.m.rule.message/enabled", {"enabled": True}))[0] == 404


@pytest.mark.parametrize("method,path,body,status,errcode", [
    ("PUT", "override/.mine", {"actions": []}, 400, "M_INVALID_PARAM"),
    ("PUT", "nonsense/x", {"actions": []}, 400, "M_INVALID_PARAM"),
    ("GET", "nonsense/x", None, 400, "M_INVALID_PARAM"),
    ("PUT", "override/x", {}, 400, "M_MISSING_PARAM"),
    ("PUT", "override/x", {"actions": "notify"}, 400, "M_INVALID_PARAM"),
    ("PUT", "override/x", {"actions": ["shout"]}, 400, "M_INVALID_PARAM"),
    ("PUT", "override/x", {"actions": [], "conditions": [{"kind": "event_match"}]}, 400, "M_INVALID_PARAM"),
    ("PUT", "override/x?before=nope", {"actions": []}, 400, "M_INVALID_PARAM"),
    ("PUT", "override/x?after=.m.rule.master", {"actions": []}, 400, "M_INVALID_PARAM"),
    ("PUT", "content/x", {"actions": []}, 400, "M_MISSING_PARAM"),
    ("GET", "override/nope", None, 404, "M_NOT_FOUND"),
    ("GET", "override/nope/enabled", None, 404, "M_NOT_FOUND"),
    ("GET", "override/nope/actions", None, 404, "M_NOT_FOUND"),
    ("PUT", "override/nope/enabled", {"enabled": True}, 404, "M_NOT_FOUND"),
    ("PUT", "override/nope/actions", {"actions": []}, 404, "M_NOT_FOUND"),
    ("PUT", "override/.m.rule.master/enabled", {"enabled": "yes"}, 400, "M_INVALID_PARAM"),
    ("PUT", "override/.m.rule.master/enabled", {}, 400, "M_MISSING_PARAM"),
    ("PUT", "override/.m.rule.master/actions", {"actions": [3]}, 400, "M_INVALID_PARAM"),
    ("DELETE", "override/nope", None, 404, "M_NOT_FOUND"),
])
async def test_push_rule_errors(alice, method, path, body, status, errcode):
    got, answer = await alice.request(method, f"{V3}/pushrules/global/{path}", body)
    assert (got, answer.get("errcode")) == (status, errcode), answer


async def test_bad_json_bodies(alice):
    status, body = await alice.put(f"{V3}/pushrules/global/override/x", raw=b"{nope",
                                   headers={"Content-Type": "application/json"})
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    status, body = await alice.put(f"{V3}/pushrules/global/override/x", [1])
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert (await alice.get(f"{V3}/pushrules/", token="nope"))[0] == 401


# --- evaluation and counts ---------------------------------------------------------------------

async def test_group_message_notifies_and_mention_highlights(services, alice, bob, carol):
    room = await make_room(alice, bob, carol)
    await send(bob, room, text("lunch soon?"))
    c = await counts(services, ALICE, room)
    assert (c["notification_count"], c["highlight_count"]) == (1, 0)
    # Carol gets it too; Bob sent it and gets nothing.
    assert (await counts(services, CAROL, room))["notification_count"] == 1
    assert (await counts(services, BOB, room))["notification_count"] == 0
    await send(bob, room, text("hey you", **{"m.mentions": {"user_ids": [ALICE]}}))
    c = await counts(services, ALICE, room)
    assert (c["notification_count"], c["highlight_count"]) == (2, 1)
    assert (await counts(services, CAROL, room))["highlight_count"] == 0
    # An edit notifies nobody; a notice neither.
    await send(bob, room, text("* lunch now?", **{"m.new_content": text("lunch now?"),
                                                  "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}))
    await send(bob, room, {"msgtype": "m.notice", "body": "bot"})
    assert (await counts(services, ALICE, room))["notification_count"] == 2
    # The legacy body mentions still work for clients without m.mentions.
    await send(bob, room, text("is carol around?"))
    assert (await counts(services, CAROL, room))["highlight_count"] == 1


async def test_room_mention_needs_power(services, alice, bob, carol):
    room = await make_room(alice, bob, carol)
    await send(bob, room, text("everyone!", **{"m.mentions": {"room": True}}))
    assert (await counts(services, ALICE, room))["highlight_count"] == 0
    await send(alice, room, text("everyone!", **{"m.mentions": {"room": True}}))
    assert (await counts(services, BOB, room))["highlight_count"] == 1


async def test_one_to_one_room_and_read_receipts(services, db, alice, bob):
    room = await make_room(alice, bob)
    first = await send(bob, room, text("hi"))
    second = await send(bob, room, text("there"))
    assert (await counts(services, ALICE, room))["notification_count"] == 2
    status, body = await alice.get(f"{V3}/notifications")
    assert status == 200
    assert body["notifications"][0]["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]
    # Read up to the first message: one left.
    upto = {room: {None: await position(db, first)}}
    assert (await counts(services, ALICE, room, upto))["notification_count"] == 1
    upto = {room: {"main": await position(db, second)}}
    assert (await counts(services, ALICE, room, upto))["notification_count"] == 0


async def test_disabled_rule_and_muted_room(services, alice, bob, carol):
    room = await make_room(alice, bob, carol)
    assert (await alice.put(f"{V3}/pushrules/global/underride/.m.rule.message/enabled", {"enabled": False}))[0] == 200
    await send(bob, room, text("quiet"))
    assert (await counts(services, ALICE, room))["notification_count"] == 0
    assert (await counts(services, CAROL, room))["notification_count"] == 1
    # A room rule with no actions mutes the room for Carol; mentions still highlight (override).
    assert (await carol.put(f"{V3}/pushrules/global/room/{room}", {"actions": []}))[0] == 200
    await send(bob, room, text("still quiet"))
    assert (await counts(services, CAROL, room))["notification_count"] == 1
    await send(bob, room, text("ping", **{"m.mentions": {"user_ids": [CAROL]}}))
    assert (await counts(services, CAROL, room))["highlight_count"] == 1


async def test_nothing_from_ignored_users(services, alice, bob, carol):
    room = await make_room(alice, bob, carol)
    status, _ = await alice.put(f"{V3}/user/{ALICE}/account_data/m.ignored_user_list",
                                {"ignored_users": {BOB: {}}})
    assert status == 200
    await send(bob, room, text("hello", **{"m.mentions": {"user_ids": [ALICE, CAROL]}}))
    assert (await counts(services, ALICE, room))["notification_count"] == 0
    assert (await counts(services, CAROL, room))["highlight_count"] == 1


async def test_the_members_evaluated_follow_joins_leaves_rules_and_ignore_lists(services, client, alice, bob, carol):
    # The evaluator keeps a room's members grouped by ruleset between messages: each change
    # below must reach the next message's evaluation.
    room = await make_room(alice, bob, carol)
    await send(bob, room, text("one"))
    assert [(await counts(services, u, room))["notification_count"] for u in (ALICE, CAROL)] == [1, 1]
    assert (await carol.post(f"{V3}/rooms/{room}/leave", {}))[0] == 200
    dave = client.with_token((await client.register("dave"))["access_token"])
    assert (await dave.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
    await send(bob, room, text("two"))
    assert [(await counts(services, u, room))["notification_count"] for u in (ALICE, CAROL, "@dave:test.local")] \
        == [2, 1, 1]
    status, _ = await alice.put(f"{V3}/user/{ALICE}/account_data/m.ignored_user_list", {"ignored_users": {BOB: {}}})
    assert status == 200
    await send(bob, room, text("three"))
    assert [(await counts(services, u, room))["notification_count"] for u in (ALICE, "@dave:test.local")] == [2, 2]
    status, _ = await alice.put(f"{V3}/user/{ALICE}/account_data/m.ignored_user_list", {"ignored_users": {}})
    assert status == 200
    assert (await dave.put(f"{V3}/pushrules/global/room/{room}", {"actions": []}))[0] == 200
    assert (await carol.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
    await send(bob, room, text("four"))
    assert [(await counts(services, u, room))["notification_count"] for u in (ALICE, CAROL, "@dave:test.local")] \
        == [3, 2, 2]


async def test_threads_have_their_own_counts(services, db, alice, bob, carol):
    room = await make_room(alice, bob, carol)
    root = await send(bob, room, text("root"))
    reply = await send(bob, room, text("in thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    # A reference to a thread event is in the thread too (relations are followed).
    await send(bob, room, text("ref", **{"m.relates_to": {"rel_type": "m.reference", "event_id": reply}}))
    c = await counts(services, ALICE, room)
    assert c["notification_count"] == 1
    assert c["threads"] == {root: {"notification_count": 2, "highlight_count": 0}}
    assert total_counts(c) == {"notification_count": 3, "highlight_count": 0}
    # A main-timeline receipt leaves the thread unread; an unthreaded one reads everything before it.
    c = await counts(services, ALICE, room, {room: {"main": await position(db, root)}})
    assert c["notification_count"] == 0 and c["threads"][root]["notification_count"] == 2
    c = await counts(services, ALICE, room, {room: {root: await position(db, reply)}})
    assert c["notification_count"] == 1 and c["threads"][root]["notification_count"] == 1
    c = await counts(services, ALICE, room, {room: {None: await position(db, reply)}})
    assert c["notification_count"] == 0 and c["threads"][root]["notification_count"] == 1


async def test_sync_counts_read_the_receipts_themselves_and_concurrent_syncs_share_one_query(
        services, alice, bob, carol, monkeypatch):
    room = await make_room(alice, bob, carol)
    other = await make_room(bob, alice, carol)
    root = await send(bob, room, text("root"))
    reply = await send(bob, room, text("in thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    await send(bob, room, text("after", **{"m.mentions": {"user_ids": [ALICE]}}))
    await send(bob, other, text("elsewhere"))
    receipts = [(root, {"thread_id": "main"}), (reply, {"thread_id": root}), (root, {}), (reply, {})]
    for event_id, body in [(None, None), *receipts]:
        if event_id is not None:
            status, _ = await alice.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", body)
            assert status == 200
        expected = await services.notifications.unread_counts(
            ALICE, [room, other], await services.receipts.read_upto(ALICE, [room, other]))
        assert await services.notifications.sync_unread_counts(ALICE, [room, other]) == expected
    # Syncs asking in the same turn of the event loop share one query.
    queries = []
    original = type(services.notifications._actions).counts_after_receipts

    async def counted(store, pairs):
        queries.append(pairs)
        return await original(store, pairs)
    monkeypatch.setattr(type(services.notifications._actions), "counts_after_receipts", counted)
    mine, carols, again = await asyncio.gather(
        services.notifications.sync_unread_counts(ALICE, [room]),
        services.notifications.sync_unread_counts(CAROL, [room, other]),
        services.notifications.sync_unread_counts(ALICE, [other]))
    assert len(queries) == 1
    assert mine[room] == expected[room] and again[other] == expected[other]
    assert carols[room]["notification_count"] == 2 and carols[room]["threads"][root]["notification_count"] == 1
    assert carols[other]["notification_count"] == 1


async def test_counts_kept_in_memory_follow_messages_threads_receipts_and_redactions(services, alice, bob, carol):
    room = await make_room(alice, bob, carol)
    notifications = services.notifications

    async def check():
        from_db = await notifications.unread_counts(ALICE, [room], await services.receipts.read_upto(ALICE, [room]))
        assert await notifications.sync_unread_counts(ALICE, [room]) == from_db
        return from_db[room]

    await check()  # counted once: kept from here on
    hits = notifications.unread.cache_stats.hits
    root = await send(bob, room, text("root"))
    reply = await send(bob, room, text("in thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    await send(bob, room, text("ping", **{"m.mentions": {"user_ids": [ALICE]}}))
    counts = await check()
    assert (counts["notification_count"], counts["highlight_count"]) == (2, 1)
    assert counts["threads"] == {root: {"notification_count": 1, "highlight_count": 0}}
    assert notifications.unread.cache_stats.hits > hits  # moved by the new push actions, not counted again
    for event_id, body in [(root, {"thread_id": "main"}), (reply, {"thread_id": root}), (reply, {})]:
        assert (await alice.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", body))[0] == 200
        await check()
    doomed = await send(bob, room, text("oops", **{"m.mentions": {"user_ids": [ALICE]}}))
    assert (await check())["highlight_count"] == 2
    assert (await bob.put(f"{V3}/rooms/{room}/redact/{doomed}/r1", {}))[0] == 200
    assert (await check())["highlight_count"] == 1


async def test_invites_notify_the_invitee_and_redactions_clear(services, alice, bob, carol):
    room = await make_room(alice, bob)
    status, _ = await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": CAROL})
    assert status == 200
    c = await counts(services, CAROL, room)
    assert (c["notification_count"], c["highlight_count"]) == (1, 0)
    oops = await send(bob, room, text("oops", **{"m.mentions": {"user_ids": [ALICE]}}))
    assert (await counts(services, ALICE, room))["highlight_count"] == 1
    status, _ = await bob.put(f"{V3}/rooms/{room}/redact/{oops}/r1", {})
    assert status == 200
    c = await counts(services, ALICE, room)
    assert (c["notification_count"], c["highlight_count"]) == (0, 0)


async def sync(c, since=None, timeout=0, filter_json=None):
    query = f"?timeout={timeout}" + (f"&since={since}" if since else "")
    if filter_json:
        query += f"&filter={filter_json}"
    status, body = await c.get(f"{V3}/sync{query}")
    assert status == 200, body
    return body


async def test_counts_arrive_in_sync_with_the_event_and_receipts_clear_them(alice, bob, carol):
    room = await make_room(alice, bob, carol)
    body = await sync(alice)
    rules = [e for e in body["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert rules and rules[0]["content"]["global"]["override"][0]["rule_id"] == ".m.rule.master"
    token = body["next_batch"]
    waiting = asyncio.create_task(sync(alice, token, timeout=5000))
    await asyncio.sleep(0.1)
    mention = await send(bob, room, text("hi", **{"m.mentions": {"user_ids": [ALICE]}}))
    body = await waiting
    joined = body["rooms"]["join"][room]
    assert mention in [e["event_id"] for e in joined["timeline"]["events"]]
    assert joined["unread_notifications"] == {"notification_count": 1, "highlight_count": 1}
    status, _ = await alice.post(f"{V3}/rooms/{room}/receipt/m.read/{mention}", {})
    assert status == 200
    body = await sync(alice, body["next_batch"])
    assert body["rooms"]["join"][room]["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}
    # A rule change reaches the client as m.push_rules account data.
    assert (await alice.put(f"{V3}/pushrules/global/room/{room}", {"actions": []}))[0] == 200
    body = await sync(alice, body["next_batch"])
    (event,) = [e for e in body["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert event["content"]["global"]["room"][0]["rule_id"] == room


async def test_a_waiting_sync_gets_its_counts_before_the_other_members_are_evaluated(
        services, client, alice, bob, carol, monkeypatch):
    # A "room of thousands" is one past MEMBERS_PER_SLICE local members: 2 here, so that this
    # room of four takes the path where members with a waiting /sync are evaluated first.
    from homeserver.services.push import evaluator
    monkeypatch.setattr(evaluator, "MEMBERS_PER_SLICE", 2)
    early = []
    evaluating_first = services.notifications.unread.evaluating_first
    monkeypatch.setattr(services.notifications.unread, "evaluating_first",
                        lambda room_id, counted, users, first: (early.append(set(users)),
                                                                evaluating_first(room_id, counted, users, first)))
    dave = client.with_token((await client.register("dave"))["access_token"])
    room = await make_room(alice, bob, carol, dave)
    await send(bob, room, text("first"))
    body = await sync(alice)  # Alice's counts are kept from now on
    assert body["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 1
    waiting = asyncio.create_task(sync(alice, body["next_batch"], timeout=5000))
    await asyncio.sleep(0.1)
    early.clear()
    mention = await send(bob, room, text("hi", **{"m.mentions": {"user_ids": [ALICE, CAROL]}}))
    body = await waiting
    joined = body["rooms"]["join"][room]
    assert mention in [e["event_id"] for e in joined["timeline"]["events"]]
    assert joined["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
    assert early == [{ALICE}]
    # Everyone else was evaluated after, once: nobody counted twice or missed.
    assert [(await counts(services, u, room))["notification_count"] for u in (ALICE, CAROL, "@dave:test.local")] \
        == [2, 2, 2]
    assert (await counts(services, CAROL, room))["highlight_count"] == 1
    assert (await counts(services, BOB, room))["notification_count"] == 0


# --- /notifications -----------------------------------------------------------------------------

async def test_notifications_pagination_and_highlight_filter(alice, bob, carol):
    room = await make_room(alice, bob, carol, name="Lunch")
    sent = []
    for i in range(5):
        mention = {"m.mentions": {"user_ids": [ALICE]}} if i % 2 == 0 else {"m.mentions": {}}
        sent.append(await send(bob, room, text(f"m{i}", **mention)))
    status, page = await alice.get(f"{V3}/notifications?limit=2")
    assert status == 200
    assert [n["event"]["event_id"] for n in page["notifications"]] == [sent[4], sent[3]]
    first = page["notifications"][0]
    assert first["room_id"] == room and first["read"] is False and isinstance(first["ts"], int)
    assert "profile_tag" in first and first["profile_tag"] is None  # always there, as Synapse
    assert "room_id" not in first["event"] and first["event"]["content"]["body"] == "m4"
    assert {"set_tweak": "highlight"} in first["actions"]
    status, page2 = await alice.get(f"{V3}/notifications?limit=2&from={page['next_token']}")
    assert [n["event"]["event_id"] for n in page2["notifications"]] == [sent[2], sent[1]]
    status, page3 = await alice.get(f"{V3}/notifications?limit=2&from={page2['next_token']}")
    assert [n["event"]["event_id"] for n in page3["notifications"]] == [sent[0]]
    assert "next_token" not in page3
    status, highlights = await alice.get(f"{V3}/notifications?only=highlight")
    assert [n["event"]["event_id"] for n in highlights["notifications"]] == [sent[4], sent[2], sent[0]]
    assert (await alice.get(f"{V3}/notifications?from=abc"))[1]["errcode"] == "M_INVALID_PARAM"
    assert (await alice.get(f"{V3}/notifications?limit=x"))[1]["errcode"] == "M_INVALID_PARAM"
    assert (await carol.get(f"{V3}/notifications?only=highlight"))[1] == {"notifications": []}


# --- pushers -------------------------------------------------------------------------------------

def pusher_body(url="https://push.example.org/_matrix/push/v1/notify", **extra):
    body = {"kind": "http", "app_id": "org.example.app.ios", "pushkey": "key-1", "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "data": {"url": url}}
    body.update(extra)
    return body


async def test_pushers_set_list_and_delete(alice, bob):
    assert (await alice.get(f"{V3}/pushers"))[1] == {"pushers": []}
    body = pusher_body(profile_tag="xyz", data={"url": "https://push.example.org/_matrix/push/v1/notify",
                                                 "format": "event_id_only", "custom": 1})
    assert (await alice.post(f"{V3}/pushers/set", body))[0] == 200
    status, listed = await alice.get(f"{V3}/pushers")
    assert listed["pushers"] == [{
        "pushkey": "key-1", "kind": "http", "app_id": "org.example.app.ios", "app_display_name": "App",
        "device_display_name": "Phone", "profile_tag": "xyz", "lang": "en", "data": body["data"],
    }]
    # Setting it again replaces it.
    assert (await alice.post(f"{V3}/pushers/set", pusher_body(lang="fr")))[0] == 200
    assert [p["lang"] for p in (await alice.get(f"{V3}/pushers"))[1]["pushers"]] == ["fr"]
    # The same app_id and pushkey for another user removes Alice's, unless append is set.
    assert (await bob.post(f"{V3}/pushers/set", pusher_body(append=True)))[0] == 200
    assert len((await alice.get(f"{V3}/pushers"))[1]["pushers"]) == 1
    assert (await bob.post(f"{V3}/pushers/set", pusher_body()))[0] == 200
    assert (await alice.get(f"{V3}/pushers"))[1]["pushers"] == []
    # kind null deletes.
    assert (await bob.post(f"{V3}/pushers/set", {"kind": None, "app_id": "org.example.app.ios", "pushkey": "key-1"}))[0] == 200
    assert (await bob.get(f"{V3}/pushers"))[1]["pushers"] == []


async def test_pushers_go_with_their_device(client, alice):
    assert (await alice.post(f"{V3}/pushers/set", pusher_body()))[0] == 200
    assert (await alice.post(f"{V3}/logout"))[0] == 200
    status, login = await client.post(f"{V3}/login", {"type": "m.login.password", "password": "s3cret-pass",
                                                      "identifier": {"type": "m.id.user", "user": "alice"}})
    assert (await client.get(f"{V3}/pushers", token=login["access_token"]))[1]["pushers"] == []


@pytest.mark.parametrize("body,errcode", [
    ({"app_id": "a", "pushkey": "k"}, "M_MISSING_PARAM"),
    ({"kind": "http", "app_id": "a", "pushkey": "k"}, "M_MISSING_PARAM"),
    (pusher_body(kind="email"), "M_INVALID_PARAM"),
    (pusher_body(kind=3), "M_INVALID_PARAM"),
    (pusher_body(data={}), "M_MISSING_PARAM"),
    (pusher_body(data=[]), "M_INVALID_PARAM"),
    (pusher_body(url="https://push.example.org/notify"), "M_INVALID_PARAM"),
    (pusher_body(url="ftp://push.example.org/_matrix/push/v1/notify"), "M_INVALID_PARAM"),
    (pusher_body(url="not a url"), "M_INVALID_PARAM"),
    (pusher_body(url=5), "M_INVALID_PARAM"),
    (pusher_body(app_id="x" * 65), "M_INVALID_PARAM"),
    (pusher_body(pushkey="k" * 513), "M_INVALID_PARAM"),
    (pusher_body(lang=None), "M_INVALID_PARAM"),
    (pusher_body(append="yes"), "M_INVALID_PARAM"),
])
async def test_pusher_errors(alice, body, errcode):
    status, answer = await alice.post(f"{V3}/pushers/set", body)
    assert (status, answer.get("errcode")) == (400, errcode), answer


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/_matrix/push/v1/notify", "https://localhost/_matrix/push/v1/notify",
    "https://10.1.2.3/_matrix/push/v1/notify", "https://[::1]/_matrix/push/v1/notify",
    "https://169.254.169.254/_matrix/push/v1/notify", "https://[::ffff:192.168.1.1]/_matrix/push/v1/notify",
])
async def test_private_gateways_are_refused_by_default(url):
    service = PusherService(None, None, Clock(), PushConfig())
    requester = Requester(ALICE, "DEV", 1, False, False)
    with pytest.raises(MatrixError) as err:
        await service.set_pusher(requester, pusher_body(url=url))
    assert err.value.errcode == "M_INVALID_PARAM"


# --- an HTTP push gateway on loopback --------------------------------------------------------------

class Gateway:
    """A push gateway that records what it receives and answers as told."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.rejected: list[str] = []
        self.failures = 0
        self.arrived = asyncio.Event()

    async def notify(self, request: web.Request) -> web.Response:
        if self.failures:
            self.failures -= 1
            return web.json_response({"error": "try later"}, status=503)
        self.received.append(await request.json())
        self.arrived.set()
        return web.json_response({"rejected": self.rejected})


@pytest.fixture
async def gateway(aiohttp_server):
    gw = Gateway()
    app = web.Application()
    app.router.add_post(GATEWAY_PATH, gw.notify)
    server = await aiohttp_server(app, host="127.0.0.1")
    gw.url = f"http://127.0.0.1:{server.port}{GATEWAY_PATH}"
    return gw


async def test_http_pusher_receives_notifications(services, alice, bob, carol, gateway):
    room = await make_room(alice, bob, carol, name="Mission Control")
    data = {"url": gateway.url, "custom": "x"}
    assert (await alice.post(f"{V3}/pushers/set", pusher_body(data=data, pushkey="pk-alice")))[0] == 200
    await send(bob, room, text("first"))
    await services.pushers.flush()  # the badge count is the one at delivery time
    await send(bob, room, text("second", **{"m.mentions": {"user_ids": [ALICE]}}))
    await services.pushers.flush()
    assert len(gateway.received) == 2
    first, second = (r["notification"] for r in gateway.received)
    assert first["room_id"] == room and first["type"] == "m.room.message" and first["sender"] == BOB
    assert first["sender_display_name"] == "bob" and first["room_name"] == "Mission Control"
    assert first["content"] == text("first") and first["prio"] == "low"
    assert first["counts"] == {"unread": 1}
    assert first["id"] == first["event_id"]  # the old name too, as Synapse sends it
    device = first["devices"][0]
    assert device["app_id"] == "org.example.app.ios" and device["pushkey"] == "pk-alice"
    assert device["data"] == {"custom": "x"} and isinstance(device["pushkey_ts"], int)
    assert device["pushkey_ts"] < 10 ** 11  # seconds
    assert device["tweaks"] == {}
    assert second["counts"] == {"unread": 2} and second["prio"] == "high"
    assert second["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}
    # Alice's own messages are never pushed to her, and suppressed events are not pushed.
    await send(alice, room, text("mine"))
    await send(bob, room, {"msgtype": "m.notice", "body": "bot"})
    await services.pushers.flush()
    assert len(gateway.received) == 2


async def test_invite_push_names_the_room_by_its_alias(services, alice, bob, gateway):
    assert (await alice.post(f"{V3}/pushers/set", pusher_body(data={"url": gateway.url}, pushkey="pk")))[0] == 200
    status, room = await bob.post(f"{V3}/createRoom", {"room_alias_name": "lounge", "invite": [ALICE]})
    assert status == 200, room
    await services.pushers.flush()
    (invite,) = [r["notification"] for r in gateway.received if r["notification"].get("type") == "m.room.member"]
    assert invite["membership"] == "invite" and invite["user_is_target"] is True and invite["sender"] == BOB
    assert invite["room_name"] == "#lounge:test.local" and invite["room_alias"] == "#lounge:test.local"
    assert invite["id"] == invite["event_id"] and "unread" in invite["counts"]


async def test_event_id_only_retry_and_rejected_pushkeys(services, alice, bob, gateway):
    room = await make_room(alice, bob)
    data = {"url": gateway.url, "format": "event_id_only"}
    assert (await alice.post(f"{V3}/pushers/set", pusher_body(data=data, pushkey="pk")))[0] == 200
    gateway.failures = 1  # the first attempt fails: the notification is retried
    event_id = await send(bob, room, text("secret"))
    await services.pushers.flush()
    (received,) = gateway.received
    notification = received["notification"]
    assert notification["event_id"] == event_id and notification["room_id"] == room
    assert "content" not in notification and "sender" not in notification and "type" not in notification
    assert notification["devices"][0]["data"] == {"format": "event_id_only"}
    assert notification["counts"] == {"unread": 1}
    # The gateway rejects the pushkey: the pusher is removed and nothing more is sent.
    gateway.rejected = ["pk"]
    await send(bob, room, text("again"))
    await services.pushers.flush()
    assert len(gateway.received) == 2
    assert (await alice.get(f"{V3}/pushers"))[1]["pushers"] == []
    await send(bob, room, text("and again"))
    await services.pushers.flush()
    assert len(gateway.received) == 2


async def test_badge_updates_after_reading(services, alice, bob, gateway):
    room = await make_room(alice, bob)
    assert (await alice.post(f"{V3}/pushers/set", pusher_body(data={"url": gateway.url}, pushkey="pk")))[0] == 200
    event_id = await send(bob, room, text("hello"))
    await services.pushers.flush()
    assert gateway.received[-1]["notification"]["counts"] == {"unread": 1}
    received = len(gateway.received)
    assert (await alice.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", {}))[0] == 200  # sends the badge
    await services.pushers.flush()
    assert len(gateway.received) == received + 1
    badge = gateway.received[-1]["notification"]
    assert badge == {"prio": "low", "counts": {"unread": 0}, "devices": [
        {"app_id": "org.example.app.ios", "pushkey": "pk", "pushkey_ts": badge["devices"][0]["pushkey_ts"],
         "data": {}, "tweaks": {}}]}
