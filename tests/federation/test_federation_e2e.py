"""Two ChatGO servers sharing a room: what one server's users do reaches the other's through
the sender (PUT /send), and shows in the other users' /sync — messages both ways, typing,
receipts, presence, device-list changes and to-device messages."""

from __future__ import annotations

from urllib.parse import quote

from tests.api.test_e2e_keys import device_keys
from tests.federation.matrix_client import messages, new_user


def _ephemeral(body, room_id, kind):
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == kind]


async def test_messages_and_edus_flow_between_two_servers(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id, via=[a.name])
    await alice.wait_for(lambda s: any(e.get("state_key") == bob.user_id
                                       for e in s.get("rooms", {}).get("join", {}).get(room_id, {})
                                       .get("timeline", {}).get("events", [])))
    await bob.sync()

    # Messages, both ways.
    first = await alice.send(room_id, "hello from A")
    await bob.wait_for(lambda s: "hello from A" in messages(s, room_id))
    await bob.send(room_id, "hello from B")
    await alice.wait_for(lambda s: "hello from B" in messages(s, room_id))

    # Typing (B -> A) and a read receipt (B -> A).
    await bob.request("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/typing/{quote(bob.user_id)}",
                      {"typing": True, "timeout": 30000})
    await alice.wait_for(lambda s: any(bob.user_id in e["content"]["user_ids"]
                                       for e in _ephemeral(s, room_id, "m.typing")))
    await bob.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/receipt/m.read/{quote(first)}", {})
    await alice.wait_for(lambda s: any(bob.user_id in e["content"].get(first, {}).get("m.read", {})
                                       for e in _ephemeral(s, room_id, "m.receipt")))

    # Presence (A -> B).
    await alice.request("PUT", f"/_matrix/client/v3/presence/{quote(alice.user_id)}/status",
                        {"presence": "online", "status_msg": "on server A"})
    await bob.wait_for(lambda s: any(e["sender"] == alice.user_id and e["content"].get("status_msg") == "on server A"
                                     for e in s.get("presence", {}).get("events", [])))

    # A device-list change (B's keys) shows in A's device_lists.changed.
    _, who = await bob.request("GET", "/_matrix/client/v3/account/whoami")
    keys, _ = device_keys(bob.user_id, who["device_id"])
    await bob.request("POST", "/_matrix/client/v3/keys/upload", {"device_keys": keys})
    await alice.wait_for(lambda s: bob.user_id in s.get("device_lists", {}).get("changed", []))

    # A to-device message (A -> all of Bob's devices).
    await alice.request("PUT", "/_matrix/client/v3/sendToDevice/m.test/txn1",
                        {"messages": {bob.user_id: {"*": {"secret": 42}}}})
    await bob.wait_for(lambda s: {"type": "m.test", "sender": alice.user_id, "content": {"secret": 42}}
                       in s.get("to_device", {}).get("events", []))


async def test_messages_sent_while_a_server_is_down_arrive_after_it_returns(homeservers, tls_files):
    a = await homeservers(federation={"retry_min_interval_ms": 200})
    b = await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id, via=[a.name])
    await bob.sync()

    await b.shut_down()
    for n in range(3):
        await alice.send(room_id, f"while you were out {n}")
    await b.restart()
    got: list[str] = []

    def collect(body) -> bool:
        got.extend(m for m in messages(body, room_id) if m.startswith("while"))
        return len(got) >= 3
    await bob.wait_for(collect)
    assert got == [f"while you were out {n}" for n in range(3)]  # in order, each once
