"""Faster joins with a real Synapse joining a ChatGO room: Synapse 1.163 asks send_join v2 with
`omit_members=true`, takes the partial answer, resyncs the full state from us in the background
(/state_ids, /state, /event) and, once done, knows every member."""

from __future__ import annotations

import ssl

from tests.federation.synapse import (
    MatrixClient,
    membership_of,
    text_message,
    timeline_event,
    wait_for,
)
from tests.federation.test_faster_joins_joining import hold_resync


async def test_synapse_joins_with_partial_state_and_then_sees_every_member(homeservers, synapse, tls_files):
    home = await homeservers()
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    alice = await MatrixClient.chatgo_user(home, context, "alice")
    room_id = await alice.create_room(preset="public_chat", name="Many members")
    members = {alice.user_id}
    for localpart in ("carol", "dave", "erin", "frank", "grace", "heidi"):
        user = await MatrixClient.chatgo_user(home, context, localpart)
        assert await user.join(room_id) == room_id
        members.add(user.user_id)
    log_from = synapse.log_size()

    bob = await synapse.register("bob")
    assert await bob.join(room_id, via=[home.name]) == room_id

    # Synapse asked for, and took, the partial answer...
    log = synapse.log_lines_since(log_from)
    assert any("/send_join/" in line and "omit_members=true" in line for line in log)
    assert any("join-via-remote" in line and "(partial_state: True)" in line for line in log)

    # ... and finished its resync from us.
    async def resynced() -> bool:
        return any(f"Clearing partial-state flag for {room_id}" in line for line in synapse.log_lines_since(log_from))
    await wait_for(resynced, timeout_s=30, what="Synapse's partial-state resync")
    # The whole member list on Synapse's side (it waits for the full state to answer this).
    joined = await bob.call("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
    assert set(joined["joined"]) == members | {bob.user_id}
    members_answer = await bob.call("GET", f"/_matrix/client/v3/rooms/{room_id}/members")
    assert {e["state_key"] for e in members_answer["chunk"]
            if e["content"]["membership"] == "join"} == members | {bob.user_id}

    # And the room works both ways.
    await alice.sync_until(timeline_event(room_id, membership_of(bob.user_id, "join")), what="bob's join")
    event_id = await alice.send_text(room_id, "hello bob")
    seen = await bob.sync_until(timeline_event(room_id, text_message("hello bob")), what="hello bob")
    assert seen["event_id"] == event_id
    event_id = await bob.send_text(room_id, "hello alice")
    seen = await alice.sync_until(timeline_event(room_id, text_message("hello alice")), what="hello alice")
    assert seen["event_id"] == event_id


async def test_chatgo_joins_a_synapse_room_with_partial_state_and_resyncs(homeservers, synapse, tls_files):
    """The other way round: Synapse is the resident server and answers our omit_members join
    without the members; the join returns with the room partial, we talk at once, and our
    resync from Synapse (/state_ids, /state) then lists every member."""
    from tests.federation.test_faster_joins_joining import wait_until_full

    home = await homeservers()
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    alice = await synapse.register("alice")
    room_id = await alice.create_room(preset="public_chat", name="Synapse room")
    members = {alice.user_id}
    for localpart in ("carol", "dave", "erin"):
        user = await synapse.register(localpart)
        assert await user.join(room_id) == room_id
        members.add(user.user_id)
    bob = await MatrixClient.chatgo_user(home, context, "bob")
    gate = hold_resync(home)

    assert await bob.join(room_id, via=[synapse.name]) == room_id

    partial = await home.db.fetchrow("SELECT servers_in_room FROM partial_state_rooms WHERE room_id = $1", room_id)
    assert partial is not None and synapse.name in partial["servers_in_room"]
    event_id = await bob.send_text(room_id, "hello from a partial join")
    seen = await alice.sync_until(timeline_event(room_id, text_message("hello from a partial join")), what="bob's text")
    assert seen["event_id"] == event_id
    # Alice's membership is not in our partial state (a named room: no heroes); her event
    # passes on its own auth events.
    await alice.send_text(room_id, "hello bob")
    await bob.sync_until(timeline_event(room_id, text_message("hello bob")), what="alice's text")

    gate.set()
    await wait_until_full(home, room_id, timeout_s=60)
    joined = await bob.call("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
    assert set(joined["joined"]) == members | {bob.user_id}
