"""Faster joins in the joining server's role (MSC3706/MSC3902): a join through another ChatGO
server asks for the state without its members, returns at once with the room flagged
partial-state, works while partial, and the background resync completes the member list."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

from federation.client import RemoteError, path
from homeserver.core.events import compute_event_id, parse_pdu
from homeserver.core.hashing import compute_content_hash
from homeserver.core.signing import sign_event
from tests.federation.matrix_client import messages, new_user


async def _named_room(a: Any, tls_files: Any) -> tuple[Any, str, set[str]]:
    """A named room (so the partial answer carries no heroes) with three members on `a`."""
    alice = await new_user(a, tls_files, "alice")
    room_id = await alice.create_room(preset="public_chat", name="Faster joins")
    members = {alice.user_id}
    for name in ("carol", "dave"):
        user = await new_user(a, tls_files, name)
        await user.join(room_id)
        members.add(user.user_id)
    return alice, room_id, members


def _sync_state(body: dict[str, Any], room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    room = body["rooms"]["join"][room_id]
    return {(e["type"], e["state_key"]): e for e in room["state"]["events"] + room["timeline"]["events"]
            if "state_key" in e}


def hold_resync(server: Any) -> asyncio.Event:
    """Keep `server`'s resyncs from starting until the returned event is set."""
    resync = server.services.partial_state_resync
    gate, original = asyncio.Event(), resync._run

    async def gated(room_id: str) -> None:
        await gate.wait()
        await original(room_id)
    resync._run = gated
    return gate


async def _bob_joins_partially(homeservers: Any, tls_files: Any) -> tuple[Any, Any, Any, str, set[str], Any,
                                                                         asyncio.Event]:
    """Servers a and b, the named room on a, and Bob of b joined to it with b's resync held:
    (a, b, alice, room_id, members on a, bob, the gate that lets the resync run)."""
    a, b = await homeservers(), await homeservers()
    alice, room_id, members = await _named_room(a, tls_files)
    bob = await new_user(b, tls_files, "bob")
    gate = hold_resync(b)
    await bob.join(room_id, via=[a.name])
    return a, b, alice, room_id, members, bob, gate


async def _joined_members(client: Any, room_id: str) -> set[str]:
    _, body = await client.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members")
    return set(body["joined"])


async def _members(client: Any, room_id: str) -> set[str]:
    _, body = await client.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/members")
    return {e["state_key"] for e in body["chunk"] if e["content"]["membership"] == "join"}


async def _flagged_in_db(server: Any, room_id: str) -> bool:
    return bool(await server.db.fetchval("SELECT count(*) FROM partial_state_rooms WHERE room_id = $1", room_id))


async def wait_until_full(server: Any, room_id: str, timeout_s: float = 20.0) -> None:
    """Until `server`'s resync of `room_id` cleared the partial-state flag."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await _flagged_in_db(server, room_id):
        assert asyncio.get_running_loop().time() < deadline, "the resync did not finish"
        await asyncio.sleep(0.05)


async def test_join_returns_partial_then_the_resync_completes_the_members(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, room_id, members = await _named_room(a, tls_files)
    carol = await new_user(a, tls_files, "carol2")
    await carol.join(room_id)
    members.add(carol.user_id)
    bob = await new_user(b, tls_files, "bob")
    gate = hold_resync(b)

    await bob.join(room_id, via=[a.name])
    # /sync has the room at once, with what is known: the name and Bob, not the others yet.
    first = await bob.sync()
    known = _sync_state(first, room_id)
    assert known[("m.room.name", "")]["content"]["name"] == "Faster joins"
    assert ("m.room.member", bob.user_id) in known and ("m.room.member", alice.user_id) not in known

    # The join is in before any resync: flagged partial, in memory and in the database.
    assert await b.services.federation_membership._partial.is_partial(room_id)
    assert await _flagged_in_db(b, room_id)
    # The local copy lacks the other members (the answer left them out).
    _, own = await bob.state(room_id, "m.room.member", bob.user_id)
    assert own["membership"] == "join"
    await bob.state(room_id, "m.room.member", f"@dave:{a.name}", expect=404)
    # Bob can talk at once, and hears back: an event from a member whose membership Bob's
    # server does not know yet is accepted on its own auth events.
    await bob.send(room_id, "hello while partial")
    await alice.wait_for(lambda body: "hello while partial" in messages(body, room_id))
    await carol.send(room_id, "carol answers")
    await bob.wait_for(lambda body: "carol answers" in messages(body, room_id))
    # The member list waits for the full state.
    waiting = asyncio.create_task(_joined_members(bob, room_id))
    await asyncio.sleep(0.5)
    assert not waiting.done()

    gate.set()

    assert await asyncio.wait_for(waiting, 20) == members | {bob.user_id}
    await wait_until_full(b, room_id)
    # An eager /sync then hands the room over again, whole (as Synapse): every member.
    again = await bob.sync()
    assert {k[1] for k in _sync_state(again, room_id) if k[0] == "m.room.member"} == members | {bob.user_id}
    assert await _members(bob, room_id) == members | {bob.user_id}
    _, dave = await bob.state(room_id, "m.room.member", f"@dave:{a.name}")
    assert dave["membership"] == "join"
    # Events carry on both ways after the resync.
    await alice.send(room_id, "after the resync")
    await bob.wait_for(lambda body: "after the resync" in messages(body, room_id))


async def test_events_during_partial_state_go_to_the_servers_named_at_the_join(homeservers, tls_files):
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice, room_id, members = await _named_room(a, tls_files)
    erin = await new_user(c, tls_files, "erin")  # a third server, unknown to Bob's before the resync
    await erin.join(room_id, via=[a.name])
    bob = await new_user(b, tls_files, "bob")
    hold_resync(b)

    await bob.join(room_id, via=[a.name])
    await bob.send(room_id, "to every server")

    await erin.wait_for(lambda body: "to every server" in messages(body, room_id))


async def test_a_restart_resumes_the_resync(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, room_id, members = await _named_room(a, tls_files)
    bob = await new_user(b, tls_files, "bob")
    hold_resync(b)  # never released: the server stops with the room still partial
    await bob.join(room_id, via=[a.name])
    assert await _flagged_in_db(b, room_id)

    await b.shut_down()
    await b.restart()
    assert await b.services.partial_state_resync.resume() == 1  # as `chatgo run` does at start-up

    await wait_until_full(b, room_id)
    assert not await _flagged_in_db(b, room_id)
    assert await _joined_members(bob, room_id) == members | {bob.user_id}


async def test_without_faster_joins_the_join_takes_the_whole_state(homeservers, tls_files):
    a, b = await homeservers(), await homeservers(federation={"faster_joins": False})
    alice, room_id, members = await _named_room(a, tls_files)
    bob = await new_user(b, tls_files, "bob")

    await bob.join(room_id, via=[a.name])

    assert not await _flagged_in_db(b, room_id)
    _, dave = await bob.state(room_id, "m.room.member", f"@dave:{a.name}")
    assert dave["membership"] == "join"
    assert await _joined_members(bob, room_id) == members | {bob.user_id}


async def test_a_partial_state_server_turns_joins_away_until_its_state_is_full(homeservers, tls_files):
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice, room_id, members = await _named_room(a, tls_files)
    bob = await new_user(b, tls_files, "bob")
    gate = hold_resync(b)
    await bob.join(room_id, via=[a.name])
    erin = await new_user(c, tls_files, "erin")

    # Bob's server cannot answer make_join yet (as Synapse: 404, as if it were not in the room).
    _, refused = await erin.join(room_id, via=[b.name], expect=404)
    assert refused["errcode"] == "M_NOT_FOUND"

    gate.set()
    await wait_until_full(b, room_id)
    await erin.join(room_id, via=[b.name])
    assert await _joined_members(erin, room_id) == members | {bob.user_id, erin.user_id}


async def test_an_event_accepted_while_partial_is_rejected_once_the_full_state_shows_a_ban(homeservers, tls_files):
    """Mallory (server C) was banned; Bob's partial state does not hold the ban, so C's event
    from Mallory passes on its own auth events (her old join), as in Synapse. Once the full
    state is in, it is checked again and rejected."""
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice, room_id, members = await _named_room(a, tls_files)
    mallory = await new_user(c, tls_files, "mallory")
    await mallory.join(room_id, via=[a.name])
    _, state = await alice.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state")
    old_join = next(e["event_id"] for e in state if e["type"] == "m.room.member" and e["state_key"] == mallory.user_id)
    await alice.membership(room_id, "ban", mallory.user_id)
    bob = await new_user(b, tls_files, "bob")
    gate = hold_resync(b)
    await bob.join(room_id, via=[a.name])

    # A hostile C would serve the old join it builds on; ours, no longer in the room, will not
    # (its /event_auth refuses Bob's server): Bob's server takes it from Alice's instead.
    body = await b.services.federation_client.get_json(a.name, path("/_matrix/federation/v1/event/{}", old_join))
    version = (await b.services.events._rooms.snapshot(room_id)).version
    await b.services.federation_intake.store_outliers(room_id, version, [parse_pdu(body["pdus"][0], version)])
    # C builds Mallory's message on Bob's copy of the room, her old join as its auth.
    prepared, _ = await b.services.events.prepare(room_id, bob.user_id, "m.room.message",
                                                  {"msgtype": "m.text", "body": "from a banned user"})
    own_member = {e for e in prepared.auth_event_ids if e not in {x["event_id"] for x in state}}
    pdu = {k: v for k, v in prepared.pdu.items() if k not in ("hashes", "signatures", "unsigned")}
    pdu["sender"] = mallory.user_id
    pdu["auth_events"] = [e for e in prepared.auth_event_ids if e not in own_member] + [old_join]
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    pdu = sign_event(pdu, c.name, c.signing_key, prepared.room_version)
    event_id = compute_event_id(pdu, prepared.room_version)
    answer = await c.services.federation_client.put_json(
        b.name, path("/_matrix/federation/v1/send/{}", uuid.uuid4().hex),
        {"origin": c.name, "origin_server_ts": 0, "pdus": [pdu]})
    assert answer["pdus"][event_id] == {}
    assert await b.db.fetchval("SELECT rejected_reason FROM events WHERE event_id = $1", event_id) is None

    gate.set()
    await wait_until_full(b, room_id)

    assert await b.db.fetchval("SELECT rejected_reason FROM events WHERE event_id = $1", event_id) is not None
    _, page = await bob.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                                query={"dir": "b", "limit": "50"})
    assert event_id not in {e["event_id"] for e in page["chunk"]}


async def test_a_room_another_process_is_resyncing_is_left_to_it(homeservers, tls_files):
    a, b, alice, room_id, members, bob, gate = await _bob_joins_partially(homeservers, tls_files)
    tracker = b.services.federation_membership._partial
    assert await tracker.claim(room_id, 60_000)  # as another process on the database would
    assert not await tracker.claim(room_id, 60_000)

    gate.set()
    await asyncio.sleep(1.5)
    assert await _flagged_in_db(b, room_id)  # ours waits for the lease

    await tracker.release([room_id])  # the other process stopped
    await wait_until_full(b, room_id)
    assert await _joined_members(bob, room_id) == members | {bob.user_id}


async def test_the_state_is_served_to_other_servers_only_once_whole(homeservers, tls_files):
    """While partial, /state_ids, /state and /event_auth answer 403 MSC3895 (as Synapse); the
    servers the join named may read events meanwhile; once whole, the state has every member."""
    a, b, alice, room_id, members, bob, gate = await _bob_joins_partially(homeservers, tls_files)
    event_id = await bob.send(room_id, "an event of the partial state")
    client = a.services.federation_client
    state_ids = path("/_matrix/federation/v1/state_ids/{}", room_id)

    for request_path in (state_ids, path("/_matrix/federation/v1/state/{}", room_id),
                         path("/_matrix/federation/v1/event_auth/{}/{}", room_id, event_id)):
        try:
            await client.get_json(b.name, request_path, query={"event_id": event_id})
        except RemoteError as err:
            assert (err.status, err.errcode) == (403, "ORG.MATRIX.MSC3895_UNABLE_DUE_TO_PARTIAL_STATE")
        else:
            raise AssertionError(f"{request_path} was served from a partial state")
    # Alice's server is among those the join named: it may read the event (its members are
    # not known to Bob's server yet).
    body = await client.get_json(b.name, path("/_matrix/federation/v1/event/{}", event_id))
    assert body["pdus"][0]["content"]["body"] == "an event of the partial state"

    gate.set()
    await wait_until_full(b, room_id)
    answer = await client.get_json(b.name, state_ids, query={"event_id": event_id})
    _, state = await alice.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state")
    ids = {e["event_id"]: e for e in state}
    members_in_answer = {ids[e]["state_key"] for e in answer["pdu_ids"] if e in ids and ids[e]["type"] == "m.room.member"}
    assert members_in_answer == members | {bob.user_id}


async def test_a_resync_that_failed_tries_again(homeservers, tls_files):
    """The resident server is down at first: the resync fails, and its next attempt (not
    held back by its own lease) completes the room once the server is back."""
    a, b, alice, room_id, members, bob, gate = await _bob_joins_partially(homeservers, tls_files)
    await a.shut_down()

    gate.set()
    await asyncio.sleep(1.5)  # the first attempt failed: A is down
    assert await _flagged_in_db(b, room_id)
    await a.restart()

    await wait_until_full(b, room_id, timeout_s=30)
    assert await _joined_members(bob, room_id) == members | {bob.user_id}


async def test_a_lazy_sync_while_partial_names_senders_from_their_events_auth(homeservers, tls_files):
    """While the room's members are not in yet, a lazy-loading /sync still gives the member
    event of each timeline sender: the one among the event's auth events (as Synapse does)."""
    a, b = await homeservers(), await homeservers()
    alice, room_id, _ = await _named_room(a, tls_files)
    await alice.request("PUT", f"/_matrix/client/v3/profile/{quote(alice.user_id)}/displayname",
                        {"displayname": "Alice A."})
    bob = await new_user(b, tls_files, "bob")
    hold_resync(b)
    await bob.join(room_id, via=[a.name])
    await alice.send(room_id, "hello from a member bob's server does not know yet")
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 10}}}
    _, made = await bob.request("POST", f"/_matrix/client/v3/user/{quote(bob.user_id)}/filter", lazy)
    filter_id = made["filter_id"]

    def alices_message(body: dict[str, Any]) -> bool:
        return "hello from a member bob's server does not know yet" in messages(body, room_id)

    # An incremental (woken) lazy sync and a fresh one both carry alice's member event.
    _, first = await bob.request("GET", "/_matrix/client/v3/sync", query={"filter": filter_id, "timeout": "0"})
    since = first["next_batch"]
    body = first
    for _ in range(100):
        if alices_message(body):
            break
        _, body = await bob.request("GET", "/_matrix/client/v3/sync",
                                    query={"filter": filter_id, "since": since, "timeout": "1000"})
        since = body["next_batch"]
    assert alices_message(body)
    member = _sync_state(body, room_id).get(("m.room.member", alice.user_id))
    assert member is not None and member["content"]["displayname"] == "Alice A.", _sync_state(body, room_id).keys()
    # The local state still lacks it: the member event came from the message's auth events.
    await bob.state(room_id, "m.room.member", alice.user_id, expect=404)
    _, fresh = await bob.request("GET", "/_matrix/client/v3/sync", query={"filter": filter_id, "timeout": "0"})
    member = _sync_state(fresh, room_id).get(("m.room.member", alice.user_id))
    assert member is not None and member["content"]["membership"] == "join"


SLIDING = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


async def test_sliding_sync_sends_the_room_whole_again_once_its_state_is_full(homeservers, tls_files):
    a, b, alice, room_id, members, bob, gate = await _bob_joins_partially(homeservers, tls_files)

    eager = {"lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1,
                               "required_state": [["m.room.member", "*"], ["m.room.name", ""]]}}}
    lazy = {"conn_id": "lazy", "lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1,
                                                 "required_state": [["m.room.member", "$LAZY"]]}}}

    def member_ids(body: dict[str, Any]) -> set[str]:
        return {e["state_key"] for e in body["rooms"][room_id].get("required_state", [])
                if e["type"] == "m.room.member"}
    _, first = await bob.request("POST", SLIDING, eager)
    assert first["rooms"][room_id]["initial"] is True and member_ids(first) == {bob.user_id}
    _, first_lazy = await bob.request("POST", SLIDING, lazy)
    assert room_id in first_lazy["rooms"]

    gate.set()
    await wait_until_full(b, room_id)
    # The eager connection gets the room again, new to it, with every member.
    _, again = await bob.request("POST", SLIDING, eager, query={"pos": first["pos"], "timeout": "0"})
    assert again["rooms"][room_id]["initial"] is True
    assert member_ids(again) == members | {bob.user_id}
    # Once: the next response has nothing more of it.
    _, after = await bob.request("POST", SLIDING, eager, query={"pos": again["pos"], "timeout": "0"})
    assert room_id not in after.get("rooms", {})
    # A lazy-loading connection needs no member list: it is not sent the room again for it.
    _, lazy_again = await bob.request("POST", SLIDING, lazy, query={"pos": first_lazy["pos"], "timeout": "0"})
    assert not lazy_again.get("rooms", {}).get(room_id, {}).get("initial")
