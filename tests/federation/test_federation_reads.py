"""The read-side federation endpoints between real ChatGO servers over TLS: /event, /state,
/state_ids, /event_auth, /backfill, /get_missing_events; who may read (joined servers, ACLs)
and what they see (history visibility for servers, redactions).

Remote joins are not built yet, so a room's remote member is made by the resident server
sending the member event itself (`events.send` with the remote user as sender): the auth
rules allow a join to a public room, and the DAG then holds a join of a user of the
requesting server, which is all these endpoints look at.
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.client import RemoteError, path
from homeserver.core.events import compute_event_id
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, DEFAULT_ROOM_VERSION

VERSION = KNOWN_ROOM_VERSIONS[DEFAULT_ROOM_VERSION]


def event_id_of(pdu: dict[str, Any]) -> str:
    return compute_event_id(pdu, VERSION)


async def send(server, room_id: str, sender: str, event_type: str, content: dict[str, Any], state_key=None):
    return await server.services.events.send(room_id, sender, event_type, content, state_key=state_key)


async def stored(server, event_ids) -> dict[str, Any]:
    return await server.services.events._events.get_events(list(event_ids))


async def python_auth_chain(server, room_id: str, event_ids) -> set[str]:
    """The auth chain walked one event at a time, to check the recursive query against. From
    v12 the create event is in it without being listed in auth_events."""
    create_id = "$" + room_id[1:]
    seen: set[str] = {create_id} if any(e != create_id for e in event_ids) else set()
    todo = list(event_ids)
    while todo:
        rows = await stored(server, todo)
        todo = []
        for row in rows.values():
            for auth_id in row.pdu["auth_events"]:
                if auth_id not in seen:
                    seen.add(auth_id)
                    todo.append(auth_id)
    return seen


async def error_of(coro) -> tuple[int, str | None]:
    with pytest.raises(RemoteError) as err:
        await coro
    return err.value.status, err.value.errcode


@pytest.fixture
async def room(homeservers):
    """Server `a` holds a public room of @alice with @bob of server `b` joined; `c` has no one in it."""
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice = await a.services.accounts.create_user("alice", "password-1")
    room_id = await a.services.rooms.create_room(alice, {"preset": "public_chat", "name": "Lobby"})
    bob = f"@bob:{b.name}"
    join = await send(a, room_id, bob, "m.room.member", {"membership": "join"}, state_key=bob)
    messages = [await send(a, room_id, alice, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"})
                for i in range(10)]
    return a, b, c, alice, room_id, join, messages


async def test_event_state_ids_state_and_event_auth(room):
    a, b, c, alice, room_id, join, messages = room
    fed = b.services.federation_client
    last = messages[-1]

    body = await fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", last.event_id))
    assert body["origin"] == a.name and isinstance(body["origin_server_ts"], int)
    assert body["pdus"] == [(await stored(a, [last.event_id]))[last.event_id].pdu]
    assert "unsigned" not in body["pdus"][0]

    # The state before the last message is the room's current state (messages change nothing).
    current = await a.services.events._events.current_state_ids(room_id)
    ids = await fed.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", room_id),
                             query={"event_id": last.event_id})
    assert sorted(ids["pdu_ids"]) == sorted(current.values())
    assert set(ids["auth_chain_ids"]) == await python_auth_chain(a, room_id, list(current.values()))

    state = await fed.get_json(a.name, path("/_matrix/federation/v1/state/{}", room_id),
                               query={"event_id": last.event_id})
    assert sorted(event_id_of(p) for p in state["pdus"]) == sorted(ids["pdu_ids"])
    assert sorted(event_id_of(p) for p in state["auth_chain"]) == sorted(ids["auth_chain_ids"])

    # State BEFORE an event: bob's join is not in the state before itself.
    before_join = await fed.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", room_id),
                                     query={"event_id": join.event_id})
    assert join.event_id not in before_join["pdu_ids"]
    assert set(before_join["pdu_ids"]) == set(current.values()) - {join.event_id}
    # The create event has nothing before it.
    create_id = current[("m.room.create", "")]
    empty = await fed.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", room_id),
                               query={"event_id": create_id})
    assert empty == {"pdu_ids": [], "auth_chain_ids": []}

    auth = await fed.get_json(a.name, path("/_matrix/federation/v1/event_auth/{}/{}", room_id, last.event_id))
    chain = {event_id_of(p) for p in auth["auth_chain"]}
    assert chain == await python_auth_chain(a, room_id, [last.event_id])
    assert {create_id, current[("m.room.power_levels", "")], current[("m.room.member", alice)]} <= chain
    assert last.event_id not in chain


async def test_who_may_read_and_bad_requests(room):
    a, b, c, alice, room_id, join, messages = room
    fed_b, fed_c = b.services.federation_client, c.services.federation_client
    last = messages[-1].event_id
    # A server with no user in the room reads nothing of it.
    for request in (
        fed_c.get_json(a.name, path("/_matrix/federation/v1/event/{}", last)),
        fed_c.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", room_id), query={"event_id": last}),
        fed_c.get_json(a.name, path("/_matrix/federation/v1/state/{}", room_id), query={"event_id": last}),
        fed_c.get_json(a.name, path("/_matrix/federation/v1/event_auth/{}/{}", room_id, last)),
        fed_c.get_json(a.name, path("/_matrix/federation/v1/backfill/{}", room_id), query={"v": last, "limit": 5}),
        fed_c.post_json(a.name, path("/_matrix/federation/v1/get_missing_events/{}", room_id),
                        content={"earliest_events": [], "latest_events": [last]}),
    ):
        assert await error_of(request) == (403, "M_FORBIDDEN")

    # Unknown rooms and events, an event of another room, bad parameters: Matrix errors, no 500.
    other_room = await a.services.rooms.create_room(alice, {"preset": "public_chat"})
    other_event = (await send(a, other_room, alice, "m.room.message", {"msgtype": "m.text", "body": "x"})).event_id
    state_ids = path("/_matrix/federation/v1/state_ids/{}", room_id)
    assert await error_of(fed_b.get_json(a.name, path("/_matrix/federation/v1/event/{}", "$nope"))) == \
        (404, "M_NOT_FOUND")
    assert await error_of(fed_b.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", "!nope:x"),
                                         query={"event_id": last})) == (404, "M_NOT_FOUND")
    assert await error_of(fed_b.get_json(a.name, state_ids, query={"event_id": other_event})) == (404, "M_NOT_FOUND")
    assert await error_of(fed_b.get_json(a.name, state_ids)) == (400, "M_MISSING_PARAM")
    assert await error_of(fed_b.get_json(a.name, path("/_matrix/federation/v1/event_auth/{}/{}", room_id,
                                                      other_event))) == (404, "M_NOT_FOUND")
    backfill = path("/_matrix/federation/v1/backfill/{}", room_id)
    assert await error_of(fed_b.get_json(a.name, backfill, query={"limit": 5})) == (400, "M_MISSING_PARAM")
    assert await error_of(fed_b.get_json(a.name, backfill, query={"v": last})) == (400, "M_MISSING_PARAM")
    assert await error_of(fed_b.get_json(a.name, backfill, query={"v": last, "limit": "x"})) == \
        (400, "M_INVALID_PARAM")
    missing = path("/_matrix/federation/v1/get_missing_events/{}", room_id)
    assert await error_of(fed_b.post_json(a.name, missing, content={"earliest_events": []})) == \
        (400, "M_MISSING_PARAM")
    assert await error_of(fed_b.post_json(a.name, missing, content={"earliest_events": "x",
                                                                    "latest_events": [last]})) == (400, "M_BAD_JSON")
    assert await error_of(fed_b.post_json(a.name, missing, content={
        "earliest_events": [], "latest_events": [last], "limit": -1})) == (400, "M_BAD_JSON")
    # No signature at all: the route is for servers only.
    import aiohttp
    import ssl
    context = ssl.create_default_context(cafile=str(a.services.config.federation.ca_certificates[0]))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{a.url}/_matrix/federation/v1/event/{last}", ssl=context) as resp:
            assert resp.status == 401


async def test_backfill_and_get_missing_events(room):
    a, b, c, alice, room_id, join, messages = room
    fed = b.services.federation_client
    ids = [m.event_id for m in messages]
    backfill = path("/_matrix/federation/v1/backfill/{}", room_id)

    body = await fed.get_json(a.name, backfill, query={"v": ids[-1], "limit": 3})
    assert body["origin"] == a.name
    assert [event_id_of(p) for p in body["pdus"]] == [ids[9], ids[8], ids[7]]  # deepest first, given one included
    assert [p["content"]["body"] for p in body["pdus"]] == ["m9", "m8", "m7"]
    # Several starting points; the limit is capped at 100, and the walk reaches the create event.
    everything = await fed.get_json(a.name, backfill, query={"v": [ids[2], ids[9]], "limit": 1000})
    got = [event_id_of(p) for p in everything["pdus"]]
    assert len(got) == len(set(got))
    assert got[0] == ids[9] and got[-1] == room_id.replace("!", "$", 1)  # v12: the create event's ID
    depths = [p["depth"] for p in everything["pdus"]]
    assert depths == sorted(depths, reverse=True)
    assert set(ids) | {join.event_id} <= set(got)
    assert (await fed.get_json(a.name, backfill, query={"v": ids[9], "limit": 0}))["pdus"] == []

    missing = path("/_matrix/federation/v1/get_missing_events/{}", room_id)
    body = await fed.post_json(a.name, missing, content={"earliest_events": [ids[3]], "latest_events": [ids[8]]})
    assert [event_id_of(p) for p in body["events"]] == ids[4:8]  # oldest first, neither end included
    body = await fed.post_json(a.name, missing, content={"earliest_events": [ids[3]], "latest_events": [ids[8]],
                                                         "limit": 2})
    assert [event_id_of(p) for p in body["events"]] == ids[6:8]  # the nearest two
    body = await fed.post_json(a.name, missing, content={"earliest_events": [ids[0]], "latest_events": [ids[8]],
                                                         "min_depth": messages[5].depth})
    assert [event_id_of(p) for p in body["events"]] == ids[5:8]
    body = await fed.post_json(a.name, missing, content={"earliest_events": [], "latest_events": ["$unknown"]})
    assert body == {"events": []}


async def test_history_visibility_for_servers_and_redactions(homeservers):
    a, b = await homeservers(), await homeservers()
    fed = b.services.federation_client
    alice = await a.services.accounts.create_user("alice", "password-1")
    room_id = await a.services.rooms.create_room(alice, {"preset": "public_chat"})
    bob = f"@bob:{b.name}"
    to_joined = await send(a, room_id, alice, "m.room.history_visibility", {"history_visibility": "joined"}, "")
    hidden = await send(a, room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "before bob"})
    to_invited = await send(a, room_id, alice, "m.room.history_visibility", {"history_visibility": "invited"}, "")
    invite = await send(a, room_id, alice, "m.room.member", {"membership": "invite"}, bob)
    seen_invited = await send(a, room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "bob invited"})
    join = await send(a, room_id, bob, "m.room.member", {"membership": "join"}, bob)
    after = await send(a, room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "bob is here"})
    redacted = await send(a, room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "oops"})
    redaction = await send(a, room_id, alice, "m.room.redaction", {"redacts": redacted.event_id})
    to_shared = await send(a, room_id, alice, "m.room.history_visibility", {"history_visibility": "shared"}, "")

    body = await fed.get_json(a.name, path("/_matrix/federation/v1/backfill/{}", room_id),
                              query={"v": to_shared.event_id, "limit": 100})
    by_id = {event_id_of(p): p for p in body["pdus"]}
    # Hidden from b (history `joined`, no user of b joined then): redacted, still verifiable.
    assert by_id[hidden.event_id]["content"] == {}
    assert by_id[hidden.event_id]["hashes"] == hidden.pdu["hashes"]
    assert by_id[hidden.event_id]["signatures"] == hidden.pdu["signatures"]
    # `invited` with b's user invited; after the join; the server's own member events.
    assert by_id[seen_invited.event_id]["content"]["body"] == "bob invited"
    assert by_id[after.event_id]["content"]["body"] == "bob is here"
    assert by_id[invite.event_id]["content"]["membership"] == "invite"
    assert by_id[join.event_id]["content"]["membership"] == "join"
    # A visibility change shows when the state before or after it allows: shared -> joined
    # shows (shared before it). (Its redacted form would keep this key anyway.)
    assert by_id[to_joined.event_id]["content"] == {"history_visibility": "joined"}
    # A redacted event goes out redacted; the redaction itself as it is.
    assert by_id[redacted.event_id]["content"] == {}
    assert by_id[redaction.event_id]["content"] == {"redacts": redacted.event_id}
    # The same rules for /event and /get_missing_events.
    single = await fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", hidden.event_id))
    assert single["pdus"][0]["content"] == {}
    missing = await fed.post_json(a.name, path("/_matrix/federation/v1/get_missing_events/{}", room_id),
                                  content={"earliest_events": [to_joined.event_id],
                                           "latest_events": [after.event_id]})
    assert [event_id_of(p) for p in missing["events"]] == [hidden.event_id, to_invited.event_id, invite.event_id,
                                                           seen_invited.event_id, join.event_id]
    assert missing["events"][0]["content"] == {}
    # With history `shared`, any server in the room sees everything from then on.
    later = await send(a, room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "shared"})
    await send(a, room_id, bob, "m.room.member", {"membership": "leave"}, bob)
    c = await homeservers()
    carol = f"@carol:{c.name}"
    await send(a, room_id, carol, "m.room.member", {"membership": "join"}, carol)
    seen_by_c = await c.services.federation_client.get_json(a.name, path("/_matrix/federation/v1/event/{}",
                                                                         later.event_id))
    assert seen_by_c["pdus"][0]["content"]["body"] == "shared"
    hidden_from_c = await c.services.federation_client.get_json(
        a.name, path("/_matrix/federation/v1/event/{}", after.event_id))
    assert hidden_from_c["pdus"][0]["content"] == {}
    # b left, but had a user joined at `after`: it may still read that event (and see it).
    still = await fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", after.event_id))
    assert still["pdus"][0]["content"]["body"] == "bob is here"
    # ...not the room's history as a whole.
    assert await error_of(fed.get_json(a.name, path("/_matrix/federation/v1/backfill/{}", room_id),
                                       query={"v": later.event_id, "limit": 5})) == (403, "M_FORBIDDEN")


async def test_server_acl(room):
    a, b, c, alice, room_id, join, messages = room
    fed = b.services.federation_client
    reads = a.services.federation_reads
    await reads.check_acl(room_id, "evil.example")  # no ACL yet
    await reads.check_acl("!unknown:" + a.name, "evil.example")
    last = messages[-1].event_id
    # Every test server is `localhost:<port>`: ports are not considered, so `localhost` is b.
    await send(a, room_id, alice, "m.room.server_acl", {"allow": ["*"], "deny": ["evil.example", "local*"]}, "")
    with pytest.raises(Exception) as err:
        await reads.check_acl(room_id, "evil.example:8448")
    assert getattr(err.value, "errcode", None) == "M_FORBIDDEN" and err.value.status == 403
    await reads.check_acl(room_id, "good.example")
    for request in (
        fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", last)),
        fed.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", room_id), query={"event_id": last}),
        fed.get_json(a.name, path("/_matrix/federation/v1/state/{}", room_id), query={"event_id": last}),
        fed.get_json(a.name, path("/_matrix/federation/v1/event_auth/{}/{}", room_id, last)),
        fed.get_json(a.name, path("/_matrix/federation/v1/backfill/{}", room_id), query={"v": last, "limit": 5}),
        fed.post_json(a.name, path("/_matrix/federation/v1/get_missing_events/{}", room_id),
                      content={"earliest_events": [], "latest_events": [last]}),
    ):
        status, errcode = await error_of(request)
        assert (status, errcode) == (403, "M_FORBIDDEN")
    # An ACL that lets `localhost` in again.
    await send(a, room_id, alice, "m.room.server_acl", {"allow": ["localhost"], "allow_ip_literals": False}, "")
    body = await fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", last))
    assert event_id_of(body["pdus"][0]) == last


async def test_timestamp_to_event(room):
    a, b, c, alice, room_id, join, messages = room
    fed = b.services.federation_client
    url = path("/_matrix/federation/v1/timestamp_to_event/{}", room_id)
    first = await fed.get_json(a.name, url, query={"ts": 0, "dir": "f"})
    assert first["event_id"] == "$" + room_id[1:]  # v12: the create event
    last = await fed.get_json(a.name, url, query={"ts": 2**70, "dir": "b"})  # beyond any BIGINT: no 500
    assert last == {"event_id": messages[-1].event_id, "origin_server_ts": messages[-1].origin_server_ts}
    assert await error_of(fed.get_json(a.name, url, query={"ts": 0, "dir": "b"})) == (404, "M_NOT_FOUND")
    assert await error_of(fed.get_json(a.name, url, query={"ts": 0, "dir": "x"})) == (400, "M_INVALID_PARAM")
    assert await error_of(fed.get_json(a.name, url, query={"ts": 0})) == (400, "M_MISSING_PARAM")
    assert await error_of(fed.get_json(a.name, url, query={"dir": "f"})) == (400, "M_MISSING_PARAM")
    assert await error_of(c.services.federation_client.get_json(a.name, url, query={"ts": 0, "dir": "f"})) == \
        (403, "M_FORBIDDEN")


async def test_acl_guards_joins_and_transactions_and_a_real_joined_server_reads(homeservers, tls_files):
    from tests.federation.matrix_client import Client

    a, b = await homeservers(), await homeservers()
    for server, name in ((a, "alice"), (b, "bob")):
        await server.services.accounts.create_user(name, "password-" + name)
    alice = await Client(a.url, str(tls_files.ca_cert)).login("alice", "password-alice")
    bob = await Client(b.url, str(tls_files.ca_cert)).login("bob", "password-bob")
    room_id = await alice.create_room(preset="public_chat", name="Guarded")
    await alice.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.server_acl",
                        {"allow": ["*"], "deny": ["localhost"]})
    # make_join is refused (403), and b's user stays out.
    status, body = await bob.join(room_id, via=[a.name], expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert await a.services.events._events.members(room_id) == {alice.user_id: "join"}
    # PDUs of a denied server in a /send transaction are refused one by one, before any check,
    # each under the event ID its room version gives it (a hash from v3, not a claimed one).
    pdu = {"room_id": room_id, "type": "m.room.message", "event_id": "$x", "content": {}}
    result = await a.services.federation_transactions.on_send(b.name, "t1", {"pdus": [pdu]})
    version = (await a.services.events._rooms.snapshot(room_id)).version
    assert "ACL" in result["pdus"][compute_event_id(pdu, version)]["error"]

    # Allowed again: b's user really joins (send_join), and b reads the room as a joined server.
    await alice.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.server_acl",
                        {"allow": ["localhost"]})
    await bob.join(room_id, via=[a.name])
    message = await alice.send(room_id, "hello bob")
    fed = b.services.federation_client
    ids = await fed.get_json(a.name, path("/_matrix/federation/v1/state_ids/{}", room_id),
                             query={"event_id": message})
    current = await a.services.events._events.current_state_ids(room_id)
    assert sorted(ids["pdu_ids"]) == sorted(current.values())
    assert current[("m.room.member", bob.user_id)] in ids["pdu_ids"]
    body = await fed.get_json(a.name, path("/_matrix/federation/v1/backfill/{}", room_id),
                              query={"v": message, "limit": 2})
    assert body["pdus"][0]["content"]["body"] == "hello bob"
    assert body["pdus"][1]["content"]["membership"] == "join" and body["pdus"][1]["sender"] == bob.user_id


async def test_events_of_an_erased_user_go_out_redacted(room):
    """POST /account/deactivate with erase: other servers are served redacted copies of the
    user's events from then on (spec, "Account deactivation"; as Synapse)."""
    a, b, c, alice, room_id, join, messages = room
    fed = b.services.federation_client
    first = messages[0].event_id

    async def content_of(event_id: str) -> dict[str, Any]:
        body = await fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", event_id))
        return body["pdus"][0]["content"]

    assert await content_of(first) == {"msgtype": "m.text", "body": "m0"}
    await a.services.accounts.deactivate_user(alice, erase=True)
    assert await content_of(first) == {}
    body = await fed.post_json(a.name, path("/_matrix/federation/v1/get_missing_events/{}", room_id),
                               content={"earliest_events": [], "latest_events": [messages[-1].event_id],
                                        "limit": 3})
    assert [p["content"] for p in body["events"]] == [{}, {}, {}]
    # Not the others' events: Bob's join is whole.
    join_body = await fed.get_json(a.name, path("/_matrix/federation/v1/event/{}", join.event_id))
    assert join_body["pdus"][0]["content"]["membership"] == "join"
