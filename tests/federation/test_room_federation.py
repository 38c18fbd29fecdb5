"""Rooms shared by two ChatGO servers over TLS: joins, messages, membership changes."""

from __future__ import annotations

import asyncio

from storage.federation_queue import FederationQueueStore
from tests.federation.conftest import backing_off
from tests.federation.test_faster_joins_joining import wait_until_full
from tests.federation.matrix_client import messages, new_user, timeline


async def test_remote_user_joins_a_local_room(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat", name="Lobby")
    await alice.send(room_id, "before bob")

    await bob.join(room_id, via=[a.name])
    await wait_until_full(b, room_id)  # a faster join: the members come with the resync

    # Bob's server now holds the room: its state and the join, through Bob's /sync.
    body = await bob.sync()
    joined = body["rooms"]["join"][room_id]
    state = {(e["type"], e["state_key"]): e for e in joined["state"]["events"] + timeline(body, room_id)
             if "state_key" in e}
    assert state[("m.room.name", "")]["content"]["name"] == "Lobby"
    assert state[("m.room.member", alice.user_id)]["content"]["membership"] == "join"
    assert state[("m.room.member", bob.user_id)]["content"]["membership"] == "join"
    status, name = await bob.state(room_id, "m.room.name")
    assert name == {"name": "Lobby"}
    # And Alice's server took the join into the room.
    await alice.wait_for(lambda s: any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id
                                       for e in timeline(s, room_id)))
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "join"


async def test_invite_across_servers_then_join_and_reject(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice = await new_user(a, tls_files, "alice")
    bob, carol = await new_user(b, tls_files, "bob"), await new_user(b, tls_files, "carol")
    room_id = await alice.create_room(preset="private_chat", name="Secret plans")

    await alice.membership(room_id, "invite", bob.user_id)
    await alice.membership(room_id, "invite", carol.user_id)

    # Bob's server signed the invite and keeps it, with the room's stripped state, for his /sync.
    body = await bob.wait_for(lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    stripped = {(e["type"], e.get("state_key")): e for e in body["rooms"]["invite"][room_id]["invite_state"]["events"]}
    assert stripped[("m.room.name", "")]["content"]["name"] == "Secret plans"
    assert stripped[("m.room.member", bob.user_id)]["content"]["membership"] == "invite"
    assert stripped[("m.room.member", bob.user_id)]["sender"] == alice.user_id
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "invite"

    # Carol rejects (her server is not in the room): make_leave/send_leave through Alice's server; she leaves the invite section.
    await carol.wait_for(lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    await carol.membership(room_id, "leave")
    _, member = await alice.state(room_id, "m.room.member", carol.user_id)
    assert member["membership"] == "leave"
    await carol.wait_for(lambda s: room_id in s.get("rooms", {}).get("leave", {}))

    # Bob accepts: his server joins through Alice's (the inviter's) server, named by nothing else.
    await bob.join(room_id)
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "join"


async def test_remote_server_invites_a_local_user_into_its_room(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await bob.create_room(preset="private_chat", name="Bob's room")
    await bob.membership(room_id, "invite", alice.user_id)
    await alice.wait_for(lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    await alice.join(room_id)
    body = await alice.sync()
    assert room_id in body["rooms"]["join"]
    _, member = await bob.state(room_id, "m.room.member", alice.user_id)
    assert member["membership"] == "join"


async def test_join_refused_by_the_resident_server_is_a_clean_error(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="private_chat")
    status, body = await bob.join(room_id, via=[a.name], expect=None)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    # Nothing of the room was stored on Bob's server.
    status, body = await bob.state(room_id, "m.room.create", expect=None)
    assert status in (403, 404)
    # No server to ask: 404.
    status, body = await bob.join("!unknown:nowhere.invalid", expect=None)
    assert status in (404, 502)


async def test_joins_in_every_room_version(homeservers, tls_files):
    """Event formats differ (v1-v2 event IDs, v3+ hashes, v11 redaction, v12 room IDs):
    a remote join must work in each."""
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    for version in ("1", "2", "3", "5", "7", "9", "10", "11", "12"):
        room_id = await alice.create_room(preset="public_chat", room_version=version, name=f"v{version}")
        await bob.join(room_id, via=[a.name])
        _, name = await bob.state(room_id, "m.room.name")
        assert name == {"name": f"v{version}"}, version
        _, member = await alice.state(room_id, "m.room.member", bob.user_id)
        assert member["membership"] == "join", version


async def test_knock_on_a_remote_room(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="private_chat", name="Knock first",
                                      initial_state=[{"type": "m.room.join_rules", "state_key": "",
                                                      "content": {"join_rule": "knock"}}])
    await bob.request("POST", f"/_matrix/client/v3/knock/{room_id}", {"reason": "let me in"},
                      query={"via": a.name})
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "knock" and member["reason"] == "let me in"
    body = await bob.wait_for(lambda s: room_id in s.get("rooms", {}).get("knock", {}))
    stripped = {(e["type"], e.get("state_key")): e for e in body["rooms"]["knock"][room_id]["knock_state"]["events"]}
    assert stripped[("m.room.name", "")]["content"]["name"] == "Knock first"
    assert stripped[("m.room.member", bob.user_id)]["content"]["membership"] == "knock"


async def test_restricted_join_authorised_by_the_resident_server(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    space = await alice.create_room(preset="public_chat", name="Space")
    room_id = await alice.create_room(preset="private_chat", room_version="10", initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    # Not in the allowed room yet: refused.
    status, body = await bob.join(room_id, via=[a.name], expect=None)
    assert status == 403, body
    await bob.join(space, via=[a.name])
    await bob.join(room_id, via=[a.name])
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "join"
    assert member["join_authorised_via_users_server"] == alice.user_id


async def test_leaves_kicks_and_bans_across_servers(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice = await new_user(a, tls_files, "alice")
    bob, carol = await new_user(b, tls_files, "bob"), await new_user(b, tls_files, "carol")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id, via=[a.name])
    await carol.join(room_id, via=[a.name])
    await bob.sync()
    await carol.sync()

    # A ban on A reaches B: Carol sees herself banned; B refuses her rejoin itself.
    await alice.membership(room_id, "ban", carol.user_id, reason="spam")
    body = await carol.wait_for(lambda s: room_id in s.get("rooms", {}).get("leave", {}))
    banned = [e for e in body["rooms"]["leave"][room_id]["timeline"]["events"]
              if e["type"] == "m.room.member" and e["state_key"] == carol.user_id]
    assert banned[-1]["content"]["membership"] == "ban" and banned[-1]["content"]["reason"] == "spam"
    status, err = await carol.join(room_id, via=[a.name], expect=None)
    assert status == 403, err

    # Bob leaves on B (B is still in the room): the leave reaches A.
    await bob.membership(room_id, "leave")
    await alice.wait_for(lambda s: any(e.get("state_key") == bob.user_id and e["content"].get("membership") == "leave"
                                       for e in timeline(s, room_id)))
    # B is no longer in the room: Bob's rejoin goes through A again, and a kick from A reaches him.
    await bob.join(room_id, via=[a.name])
    await bob.sync()
    await alice.membership(room_id, "kick", bob.user_id, reason="bye")
    body = await bob.wait_for(lambda s: room_id in s.get("rooms", {}).get("leave", {}))
    kicked = [e for e in body["rooms"]["leave"][room_id]["timeline"]["events"] if e.get("state_key") == bob.user_id]
    assert kicked[-1]["content"]["membership"] == "leave" and kicked[-1]["sender"] == alice.user_id
    _, member = await alice.state(room_id, "m.room.member", bob.user_id)
    assert member["membership"] == "leave"


async def test_history_from_before_the_join_is_backfilled(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat", name="Old news")
    for n in range(25):
        await alice.send(room_id, f"old {n}")
    await bob.join(room_id, via=[a.name])
    body = await bob.sync()
    token = body["rooms"]["join"][room_id]["timeline"]["prev_batch"]
    seen: list[str] = []
    oldest = None
    for _ in range(10):
        _, page = await bob.request("GET", f"/_matrix/client/v3/rooms/{room_id}/messages",
                                    query={"dir": "b", "from": token, "limit": "10"})
        seen += [e["content"]["body"] for e in page["chunk"] if e["type"] == "m.room.message"]
        oldest = page["chunk"][-1] if page["chunk"] else oldest
        if "end" not in page or not page["chunk"]:  # the last page may be empty (as Synapse's)
            break
        token = page["end"]
    assert seen == [f"old {n}" for n in reversed(range(25))]
    # The join brought the room's state as outliers; backfill reached the room's start and put
    # them in the timeline too, down to the create event.
    assert oldest is not None and oldest["type"] == "m.room.create"
    # Backfilled history is not news: an incremental sync does not replay it.
    later = await bob.sync()
    assert not messages(later, room_id)


async def test_concurrent_state_changes_fork_and_both_servers_resolve_alike(homeservers, tls_files):
    a = await homeservers()
    # B waits a minute before retrying a failed destination: only A's next transaction (which
    # wakes B's queue for A) delivers Bob's change, so Alice's change is made without it.
    b = await homeservers(federation={"retry_min_interval_ms": 60_000})
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat", power_level_content_override={
        "users": {bob.user_id: 100}})  # v12: the creator needs no level
    await bob.join(room_id, via=[a.name])
    await wait_until_full(b, room_id)  # the faster join's resync is over before A goes down
    await alice.wait_for(lambda s: any(e.get("state_key") == bob.user_id for e in timeline(s, room_id)))

    await a.shut_down()
    await bob.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.topic/", {"topic": "from B"})
    await backing_off(FederationQueueStore(b.db), a.name)  # B tried A, failed, and waits
    await a.restart()
    await alice.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.topic/", {"topic": "from A"})

    # Each server ends up with both topic events, forked, and resolves the same winner.
    async def topic(client) -> str:
        _, content = await client.state(room_id, "m.room.topic")
        return content["topic"]

    for _ in range(200):
        extremities_a = await a.services.events._events.forward_extremities(room_id)
        extremities_b = await b.services.events._events.forward_extremities(room_id)
        if len(extremities_a) == 2 and sorted(extremities_a) == sorted(extremities_b):
            break
        await asyncio.sleep(0.05)
    assert len(extremities_a) == 2 and sorted(extremities_a) == sorted(extremities_b)
    winner = await topic(alice)
    assert winner in ("from A", "from B") and await topic(bob) == winner

    # The next message merges the fork on both sides.
    await alice.send(room_id, "merge")
    await bob.wait_for(lambda s: "merge" in messages(s, room_id))
    assert len(await b.services.events._events.forward_extremities(room_id)) == 1
    assert await topic(bob) == winner


async def test_an_invite_is_rejected_here_when_the_inviting_server_is_gone(homeservers, tls_files):
    """As Synapse: with no server of the room to take the leave, it is recorded locally."""
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await bob.create_room(preset="private_chat", name="Soon gone")
    await bob.membership(room_id, "invite", alice.user_id)
    await alice.wait_for(lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    await b.stop()

    await alice.membership(room_id, "leave")
    body = await alice.wait_for(lambda s: room_id in s.get("rooms", {}).get("leave", {}))
    [leave] = [e for e in body["rooms"]["leave"][room_id]["timeline"]["events"] if e["type"] == "m.room.member"]
    assert (leave["sender"], leave["state_key"], leave["content"]["membership"]) == (
        alice.user_id, alice.user_id, "leave")
    assert room_id not in (await alice.sync()).get("rooms", {}).get("invite", {})
