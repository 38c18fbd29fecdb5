"""Rooms shared between ChatGO and a real Synapse: joins, messages, typing, receipts, invites, leaves.

Every scenario runs in both directions (the `hosting` fixture): `synapse_hosts` (a Synapse user
creates the room, a ChatGO user comes in over federation) and `chatgo_hosts` (the other way
round). Everything is observed the way a client would: through /sync on each side, polled
with timeouts, never with sleeps.

With CHATGO_SYNAPSE_SELFTEST=1 a third direction, `synapse_synapse`, runs the same scenarios
between two Synapses: a check of the scenarios themselves, for when a failure looks like the
test's fault rather than ChatGO's.

What Synapse 1.163 asks of ChatGO here (see docs/federation.md, "Testing against Synapse"):
make_join v1 with `ver=` for every room version it knows (unstable ones included), send_join
v2 with `omit_members=true` (answered without the members, MSC3706: see test_synapse_faster_joins.py), make_leave v1 +
send_leave v2, make_knock + send_knock v1, invite v2 (`invite_room_state` as full PDUs,
MSC4311), /backfill, /state, /state_ids and /event, /send with PDUs and m.typing / m.receipt /
m.presence / m.device_list_update EDUs, and our keys.

The Synapse log is also read for complaints about what we sent (`synapse_complaints`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from urllib.parse import quote
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.federation.synapse import (
    MatrixClient,
    ephemeral,
    invited_to,
    knocked_on,
    left,
    membership_of,
    text_message,
    timeline_event,
    unique_name,
    wait_for,
)


DIRECTIONS = ["synapse_hosts", "chatgo_hosts"]
if os.environ.get("CHATGO_SYNAPSE_SELFTEST") == "1":
    DIRECTIONS.append("synapse_synapse")


@dataclass
class Side:
    """One homeserver of the pair, as a test sees it: its name and a way to make users."""
    kind: str  # "chatgo" | "synapse"
    name: str
    new_user: Callable[[str], Awaitable[MatrixClient]]


@pytest.fixture(params=DIRECTIONS)
async def hosting(request, homeservers, synapse, synapses, tls_files) -> tuple[Side, Side]:
    """(home, peer): home's users create the rooms, peer's users come in over federation."""
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))

    async def chatgo_side() -> Side:
        server = await homeservers()
        return Side("chatgo", server.name, lambda localpart: MatrixClient.chatgo_user(server, context, localpart))

    async def synapse_side(own: bool = False) -> Side:
        server = await asyncio.to_thread(synapses) if own else synapse
        return Side("synapse", server.name, server.register)

    if request.param == "synapse_hosts":
        return await synapse_side(), await chatgo_side()
    if request.param == "chatgo_hosts":
        return await chatgo_side(), await synapse_side()
    return await synapse_side(), await synapse_side(own=True)


async def users(hosting: tuple[Side, Side]) -> tuple[MatrixClient, MatrixClient]:
    home, peer = hosting
    return await home.new_user("alice"), await peer.new_user("bob")


async def see_join(client: MatrixClient, room_id: str, user_id: str) -> None:
    await client.sync_until(timeline_event(room_id, membership_of(user_id, "join")),
                            what=f"{user_id} join {room_id}")


async def talk(alice: MatrixClient, bob: MatrixClient, room_id: str, tag: str = "") -> None:
    """A message each way, each seen by the other side's /sync."""
    to_bob = f"hello bob{tag}"
    event_id = await alice.send_text(room_id, to_bob)
    seen = await bob.sync_until(timeline_event(room_id, text_message(to_bob)), what=repr(to_bob))
    assert seen["event_id"] == event_id and seen["sender"] == alice.user_id
    to_alice = f"hello alice{tag}"
    event_id = await bob.send_text(room_id, to_alice)
    seen = await alice.sync_until(timeline_event(room_id, text_message(to_alice)), what=repr(to_alice))
    assert seen["event_id"] == event_id and seen["sender"] == bob.user_id


async def shared_room(alice: MatrixClient, bob: MatrixClient, home: Side, **create) -> str:
    room_id = await alice.create_room(preset="public_chat", **create)
    assert await bob.join(room_id, via=[home.name]) == room_id
    await see_join(alice, room_id, bob.user_id)
    await see_join(bob, room_id, bob.user_id)
    return room_id


async def test_join_by_room_id_and_talk(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home, name="Federated")
    # The joiner got the room's state: its name and the creator's membership.
    await bob.sync_until(timeline_event(room_id, lambda e: e["type"] == "m.room.name"
                                        and e["content"].get("name") == "Federated"), what="m.room.name")
    await bob.sync_until(timeline_event(room_id, membership_of(alice.user_id, "join")), what="alice's join")
    await talk(alice, bob, room_id)
    state = await bob.call("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
    assert set(state["joined"]) == {alice.user_id, bob.user_id}


async def test_join_by_room_id_with_legacy_server_name(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await alice.create_room(preset="public_chat")
    assert await bob.join(room_id, via=[home.name], param="server_name") == room_id
    await see_join(alice, room_id, bob.user_id)
    await talk(alice, bob, room_id)


async def test_join_by_alias(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    lounge = unique_name("lounge")
    room_id = await alice.create_room(preset="public_chat", room_alias_name=lounge)
    assert await bob.join(f"#{lounge}:{home.name}") == room_id
    await see_join(alice, room_id, bob.user_id)
    await talk(alice, bob, room_id)


@pytest.mark.parametrize("room_version", ["1", "10", "11"])
async def test_join_rooms_of_older_versions(hosting, room_version):
    """Room version 12 is the default of both servers; older rooms federate too."""
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home, room_version=room_version)
    await talk(alice, bob, room_id, tag=f" v{room_version}")
    create = await bob.call("GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.create/")
    assert create.get("room_version", "1") == room_version


async def test_typing_both_ways(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)

    def typing(user_id: str, present: bool):
        return ephemeral(room_id, lambda e: e["type"] == "m.typing"
                         and (user_id in e["content"].get("user_ids", [])) == present)

    await alice.typing(room_id, True)
    await bob.sync_until(typing(alice.user_id, True), what="alice typing", seen=False)
    await alice.typing(room_id, False)
    await bob.sync_until(typing(alice.user_id, False), what="alice stopped typing", seen=False)
    await bob.typing(room_id, True)
    await alice.sync_until(typing(bob.user_id, True), what="bob typing", seen=False)
    await bob.typing(room_id, False)
    await alice.sync_until(typing(bob.user_id, False), what="bob stopped typing", seen=False)


async def test_read_receipts_both_ways(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)

    def read_by(user_id: str, event_id: str):
        return ephemeral(room_id, lambda e: e["type"] == "m.receipt"
                         and user_id in e["content"].get(event_id, {}).get("m.read", {}))

    from_alice = await alice.send_text(room_id, "read me, bob")
    await bob.sync_until(timeline_event(room_id, text_message("read me, bob")), what="alice's message")
    await bob.receipt(room_id, from_alice)
    receipt = await alice.sync_until(read_by(bob.user_id, from_alice), what="bob's receipt")
    assert receipt["content"][from_alice]["m.read"][bob.user_id]["ts"] > 0

    from_bob = await bob.send_text(room_id, "read me, alice")
    await alice.sync_until(timeline_event(room_id, text_message("read me, alice")), what="bob's message")
    await alice.receipt(room_id, from_bob)
    await bob.sync_until(read_by(alice.user_id, from_bob), what="alice's receipt")


async def test_invite_then_join(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await alice.create_room(preset="private_chat", name="Invite only")
    await alice.invite(room_id, bob.user_id)

    invite = await bob.sync_until(invited_to(room_id), what="the invite")
    stripped = {(e["type"], e.get("state_key")): e for e in invite["invite_state"]["events"]}
    assert stripped[("m.room.member", bob.user_id)]["content"]["membership"] == "invite"
    assert stripped[("m.room.member", bob.user_id)]["sender"] == alice.user_id
    assert stripped[("m.room.name", "")]["content"]["name"] == "Invite only"
    await alice.sync_until(timeline_event(room_id, membership_of(bob.user_id, "invite")), what="bob invited")

    # No via: the invite tells bob's server where to go.
    assert await bob.join(room_id) == room_id
    await see_join(alice, room_id, bob.user_id)
    await talk(alice, bob, room_id)


async def test_invite_rejected(hosting):
    alice, bob = await users(hosting)
    room_id = await alice.create_room(preset="private_chat")
    await alice.invite(room_id, bob.user_id)
    await bob.sync_until(invited_to(room_id), what="the invite")
    await bob.leave(room_id)
    await alice.sync_until(timeline_event(room_id, membership_of(bob.user_id, "leave")), what="bob's rejection")
    await bob.sync_until(left(room_id), what="the rejected invite under rooms.leave")


async def test_invite_by_the_joined_peer(hosting):
    """A user of the joining server invites another user of the host (a PDU the peer makes
    in a room it does not host) and one of its own (an invite that stays local)."""
    home, peer = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home, power_level_content_override={"invite": 0})
    carol = await home.new_user("carol")
    dave = await peer.new_user("dave")
    await bob.invite(room_id, carol.user_id)
    await carol.sync_until(invited_to(room_id), what="carol's invite from bob")
    await bob.invite(room_id, dave.user_id)
    await dave.sync_until(invited_to(room_id), what="dave's invite from bob")
    await alice.sync_until(timeline_event(room_id, membership_of(dave.user_id, "invite")), what="dave invited")
    assert await dave.join(room_id) == room_id
    await see_join(alice, room_id, dave.user_id)
    await talk(alice, dave, room_id)


async def test_leave(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)
    await talk(alice, bob, room_id)
    await bob.leave(room_id)
    await alice.sync_until(timeline_event(room_id, membership_of(bob.user_id, "leave")), what="bob's leave")
    await bob.sync_until(left(room_id), what="the room under rooms.leave")

    # Alice goes on talking; bob's server no longer gets the room's events.
    await alice.send_text(room_id, "bob is gone")
    await alice.sync_until(timeline_event(room_id, text_message("bob is gone")), what="her own message")
    response = await bob.sync(timeout_ms=1000)
    assert room_id not in response.get("rooms", {}).get("join", {})

    # ... and may come back.
    assert await bob.join(room_id, via=[home.name]) == room_id
    await talk(alice, bob, room_id, tag=" again")


async def test_host_leaves_and_peer_stays(hosting):
    """The room's creator leaves; the room lives on at the peer, which can still talk to a
    second user of the host that joined before."""
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)
    carol = await home.new_user("carol")
    assert await carol.join(room_id) == room_id
    await see_join(bob, room_id, carol.user_id)
    await alice.leave(room_id)
    await bob.sync_until(timeline_event(room_id, membership_of(alice.user_id, "leave")), what="alice's leave")
    await talk(carol, bob, room_id)


async def test_message_burst_arrives_complete_and_in_order(hosting):
    """More PDUs than fit one transaction's worth of patience: all arrive, in order, both ways."""
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)
    for sender, receiver in ((alice, bob), (bob, alice)):
        sent = [f"burst {sender.user_id} {i}" for i in range(30)]
        for body in sent:
            await sender.send_text(room_id, body)
        got: list[str] = []

        def collect(response, got=got, sent=sent):
            room = response.get("rooms", {}).get("join", {}).get(room_id, {})
            got.extend(e["content"]["body"] for e in room.get("timeline", {}).get("events", [])
                       if e["type"] == "m.room.message" and e["content"].get("body") in sent)
            return len(got) >= len(sent)

        await receiver.sync_until(collect, timeout_s=30, what=f"30 messages from {sender.user_id}")
        assert got == sent


async def test_history_before_the_join_through_messages(hosting):
    """What was said before the join is readable afterwards (history_visibility shared):
    /messages on the joiner's server, backfilling from the host where it must."""
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await alice.create_room(preset="public_chat")
    before = [f"before the join {i}" for i in range(15)]
    for body in before:
        await alice.send_text(room_id, body)
    assert await bob.join(room_id, via=[home.name]) == room_id

    async def history():
        bodies = [e["content"].get("body") for e in await bob.messages(room_id) if e["type"] == "m.room.message"]
        return bodies if set(before) <= set(bodies) else None

    bodies = await wait_for(history, timeout_s=20, what="the history before the join")
    assert [body for body in reversed(bodies) if body in before] == before


async def test_state_changes_and_redactions_propagate(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)

    await alice.set_state(room_id, "m.room.name", {"name": "Renamed"})
    await bob.sync_until(timeline_event(room_id, lambda e: e["type"] == "m.room.name"
                                        and e["content"].get("name") == "Renamed"), what="the new name")
    status, name = await bob.request("GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name")
    assert (status, name) == (200, {"name": "Renamed"})

    await bob.set_displayname("Bob Remote")
    await alice.sync_until(timeline_event(room_id, lambda e: membership_of(bob.user_id, "join")(e)
                                          and e["content"].get("displayname") == "Bob Remote"),
                           what="bob's new display name in the room")

    for sender, receiver in ((alice, bob), (bob, alice)):
        body = f"regrettable words of {sender.user_id}"
        event_id = await sender.send_text(room_id, body)
        await receiver.sync_until(timeline_event(room_id, text_message(body)), what=repr(body))
        redaction_id = await sender.redact(room_id, event_id, reason="oops")
        redaction = await receiver.sync_until(timeline_event(room_id, lambda e: e["type"] == "m.room.redaction"
                                                             and redaction_id == e["event_id"]), what="the redaction")
        assert event_id in (redaction.get("redacts"), redaction["content"].get("redacts"))
        status, event = await receiver.request("GET", f"/_matrix/client/v3/rooms/{room_id}/event/{event_id}")
        assert status == 200 and "body" not in event["content"], event


async def test_kick_and_ban(hosting):
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await shared_room(alice, bob, home)
    await alice.kick(room_id, bob.user_id, reason="out")
    kick = await bob.sync_until(left(room_id), what="the kick under rooms.leave")
    assert any(membership_of(bob.user_id, "leave")(e) and e["sender"] == alice.user_id
               for e in kick.get("timeline", {}).get("events", []) + kick.get("state", {}).get("events", []))

    assert await bob.join(room_id, via=[home.name]) == room_id
    await see_join(alice, room_id, bob.user_id)
    await alice.ban(room_id, bob.user_id, reason="really out")
    await alice.sync_until(timeline_event(room_id, membership_of(bob.user_id, "ban")), what="the ban")
    await wait_for(lambda: _not_joined(bob, room_id), what="bob out of the room after the ban")
    status, body = await bob.request("POST", f"/_matrix/client/v3/join/{room_id}", {},
                                     query=[("via", home.name)], timeout_s=60)
    assert status == 403, (status, body)


async def _not_joined(client, room_id: str) -> bool:
    joined = await client.call("GET", "/_matrix/client/v3/joined_rooms")
    return room_id not in joined["joined_rooms"]


async def test_knock_then_invite(hosting):
    """Knocking (room versions 7+): make_knock/send_knock to the host, then an invite."""
    home, _ = hosting
    alice, bob = await users(hosting)
    room_id = await alice.create_room(preset="private_chat", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    assert await bob.knock(room_id, via=[home.name], reason="let me in") == room_id
    knock = await alice.sync_until(timeline_event(room_id, membership_of(bob.user_id, "knock")), what="the knock")
    assert knock["content"].get("reason") == "let me in"
    await bob.sync_until(knocked_on(room_id), what="the room under rooms.knock")
    await alice.invite(room_id, bob.user_id)
    await bob.sync_until(invited_to(room_id), what="the invite after the knock")
    assert await bob.join(room_id) == room_id
    await see_join(alice, room_id, bob.user_id)
    await talk(alice, bob, room_id)


async def test_presence_both_ways(hosting):
    """m.presence EDUs reach the users who share a room."""
    home, _ = hosting
    alice, bob = await users(hosting)
    await shared_room(alice, bob, home)

    def presence_of(user_id: str, status_msg: str):
        return lambda response: next((e for e in response.get("presence", {}).get("events", [])
                                      if e.get("sender") == user_id
                                      and e.get("content", {}).get("status_msg") == status_msg), None)

    for sender, receiver in ((alice, bob), (bob, alice)):
        status_msg = f"busy, says {sender.user_id}"
        await sender.call("PUT", f"/_matrix/client/v3/presence/{quote(sender.user_id)}/status",
                          {"presence": "online", "status_msg": status_msg})
        event = await receiver.sync_until(presence_of(sender.user_id, status_msg), what=f"{sender.user_id}'s presence")
        assert event["content"]["presence"] == "online"


async def test_invite_room_state_is_full_pdus(homeservers, synapse, tls_files):
    chatgo = await homeservers()
    alice = await MatrixClient.chatgo_user(chatgo, ssl.create_default_context(cafile=str(tls_files.ca_cert)), "alice")
    bob = await synapse.register("bob")
    offset = synapse.log_size()
    room_id = await alice.create_room(preset="private_chat", name="Full PDUs")
    await alice.invite(room_id, bob.user_id)
    await bob.sync_until(invited_to(room_id), what="the invite")
    assert synapse_complaints(synapse, offset, "invite_room_state") == []


def synapse_complaints(synapse, offset: int, about: str) -> list[str]:
    """Synapse's WARNING/ERROR log lines since `offset` that mention `about`."""
    return [line for line in synapse.log_lines_since(offset)
            if (" - WARNING - " in line or " - ERROR - " in line) and about in line]
