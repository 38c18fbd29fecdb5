"""Faster joins in the resident server's role (MSC3706, spec v1.6+ send_join v2 `omit_members`):
the answer leaves out the room's members, keeps an auth chain that authorises what it returns,
and names the servers in the room."""

from __future__ import annotations

from typing import Any

from federation.client import RemoteError, path
from homeserver.core import auth_rules
from homeserver.core.events import Event, parse_pdu
from tests.federation.matrix_client import new_user


async def _send_join(joiner: Any, resident: Any, user_id: str, room_id: str, query: dict | None) -> tuple[Any, Any]:
    """Bob's server asks `resident` to join `user_id` to the room; returns (answer, join event)."""
    membership = joiner.services.federation_membership
    template, version, _ = await membership._make(user_id, room_id, [resident.name], "join")
    join = membership._complete(template, version, user_id, {}, "join")
    answer = await joiner.services.federation_client.put_json(
        resident.name, path("/_matrix/federation/v2/send_join/{}/{}", room_id, join.event_id), join.pdu, query=query)
    return answer, join


def _assert_authorised(answer: dict[str, Any], join: Event) -> None:
    """Every returned state event and the join pass the auth rules against their own auth
    events, all of which the answer carries (state or auth chain)."""
    version = join.room_version
    known = {e.event_id: e for e in (parse_pdu(p, version) for p in answer["state"] + answer["auth_chain"])}
    # v12 rooms leave the create event out of auth_events: the answer's state carries it.
    create = next(e for e in known.values() if e.type == "m.room.create")
    for event in [*(parse_pdu(p, version) for p in answer["state"]), join]:
        auth = {}
        for auth_id in event.auth_event_ids:
            assert auth_id in known, f"{event.type} {event.state_key}: auth event {auth_id} missing"
            auth[auth_id] = known[auth_id]
        auth_rules.check_auth_events(event, auth)
        auth_rules.check(event, {("m.room.create", ""): create,
                                 **{(a.type, a.state_key or ""): a for a in auth.values()}})


async def _room_with_members(a: Any, tls_files: Any, c: Any, **room: Any) -> tuple[Any, str, list[str]]:
    alice = await new_user(a, tls_files, "alice")
    room_id = await alice.create_room(preset="public_chat", **room)
    members = [alice.user_id]
    for name in ("carol", "dave"):
        user = await new_user(a, tls_files, name)
        await user.join(room_id)
        members.append(user.user_id)
    erin = await new_user(c, tls_files, "erin")  # a member on a third server
    await erin.join(room_id, via=[a.name])
    members.append(erin.user_id)
    return alice, room_id, members


async def test_omit_members_leaves_out_other_members_and_names_the_servers(homeservers, tls_files):
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice, room_id, members = await _room_with_members(a, tls_files, c, name="Named room")
    bob_id = f"@bob:{b.name}"
    await b.services.accounts.create_user("bob", "password-bob")

    answer, join = await _send_join(b, a, bob_id, room_id, {"omit_members": "true"})

    assert answer["members_omitted"] is True
    # Before the join: Alice's server and Erin's; not Bob's, which had no one in the room.
    assert sorted(answer["servers_in_room"]) == sorted([a.name, c.name])
    state_members = [e["state_key"] for e in answer["state"] if e["type"] == "m.room.member"]
    assert state_members == []  # Bob had no membership before; the room is named, so no heroes
    types = {e["type"] for e in answer["state"]}
    assert {"m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name"} <= types
    # Nothing twice: events of the state are left out of the auth chain.
    state_ids = {parse_pdu(e, join.room_version).event_id for e in answer["state"]}
    chain_ids = {parse_pdu(e, join.room_version).event_id for e in answer["auth_chain"]}
    assert not state_ids & chain_ids
    # Only the members the auth chain needs: Alice's (she sent the state), none of the others'.
    chain_members = {e["state_key"] for e in answer["auth_chain"] if e["type"] == "m.room.member"}
    assert chain_members == {alice.user_id}
    _assert_authorised(answer, join)
    # The join went in all the same.
    _, member = await alice.state(room_id, "m.room.member", bob_id)
    assert member["membership"] == "join"


async def test_omit_members_keeps_the_heroes_of_an_unnamed_room(homeservers, tls_files):
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice, room_id, members = await _room_with_members(a, tls_files, c)
    await b.services.accounts.create_user("bob", "password-bob")
    bob_id = f"@bob:{b.name}"

    answer, join = await _send_join(b, a, bob_id, room_id, {"omit_members": "true"})

    assert answer["members_omitted"] is True
    # No name nor alias: the heroes (up to 5 joined members, oldest first) come with the state.
    state_members = {e["state_key"] for e in answer["state"] if e["type"] == "m.room.member"}
    assert state_members == set(members)
    _assert_authorised(answer, join)


async def test_without_omit_members_the_whole_state_as_before(homeservers, tls_files):
    a, b, c = await homeservers(), await homeservers(), await homeservers()
    alice, room_id, members = await _room_with_members(a, tls_files, c, name="Named room")
    await b.services.accounts.create_user("bob", "password-bob")
    bob_id = f"@bob:{b.name}"

    answer, join = await _send_join(b, a, bob_id, room_id, None)

    assert answer["members_omitted"] is False
    state_members = {e["state_key"] for e in answer["state"] if e["type"] == "m.room.member"}
    assert state_members == set(members)
    _assert_authorised(answer, join)


async def test_omit_members_must_be_a_boolean(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice = await new_user(a, tls_files, "alice")
    room_id = await alice.create_room(preset="public_chat")
    await b.services.accounts.create_user("bob", "password-bob")
    try:
        await _send_join(b, a, f"@bob:{b.name}", room_id, {"omit_members": "yes"})
    except RemoteError as err:
        assert err.status == 400
        assert err.body["errcode"] == "M_INVALID_PARAM"
    else:
        raise AssertionError("omit_members=yes was accepted")
    # Refused before the join was taken in.
    await alice.state(room_id, "m.room.member", f"@bob:{b.name}", expect=404)
