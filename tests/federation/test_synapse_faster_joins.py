"""Faster joins with a real Synapse joining a ChatGO room: Synapse 1.163 asks send_join v2 with
`omit_members=true`, takes the partial answer, resyncs the full state from us in the background
(/state_ids, /state, /event) and, once done, knows every member."""

from __future__ import annotations

import ssl

from tests.federation.synapse import MatrixClient, membership_of, text_message, timeline_event, wait_for


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
