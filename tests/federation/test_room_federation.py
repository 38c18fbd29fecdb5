"""Rooms shared by two ChatGO servers over TLS: joins, messages, membership changes."""

from __future__ import annotations

from tests.federation.matrix_client import Client, messages, timeline


async def _client(server, tls_files, localpart: str) -> Client:
    await server.services.accounts.create_user(localpart, "password-" + localpart)
    return await Client(server.url, str(tls_files.ca_cert)).login(localpart, "password-" + localpart)


async def test_remote_user_joins_a_local_room(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await _client(a, tls_files, "alice"), await _client(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat", name="Lobby")
    await alice.send(room_id, "before bob")

    await bob.join(room_id, via=[a.name])

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
