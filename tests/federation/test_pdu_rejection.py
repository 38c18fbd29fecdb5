"""Forged and invalid PDUs in PUT /send are refused one by one, and the room goes on working.

Server B is joined to Alice's room on server A; B's signed requests carry PDUs that B built
(through its own copy of the room) and then spoiled.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from federation.client import path
from homeserver.core.events import compute_event_id
from homeserver.core.signing import sign_event
from tests.federation.matrix_client import messages, new_user


async def _shared_room(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id, via=[a.name])
    await alice.sync()
    return a, b, alice, bob, room_id


async def _built_on_b(b, room_id: str, sender: str, body: str) -> dict[str, Any]:
    event, _ = await b.services.events.prepare(room_id, sender, "m.room.message", {"msgtype": "m.text", "body": body})
    return dict(event.pdu)


async def _send(b, a, pdus: list[dict[str, Any]]) -> dict[str, Any]:
    return await b.services.federation_client.put_json(
        a.name, path("/_matrix/federation/v1/send/{}", uuid.uuid4().hex),
        {"origin": b.name, "origin_server_ts": 0, "pdus": pdus})


async def _event_id(a, room_id: str, pdu: dict[str, Any]) -> str:
    return compute_event_id(pdu, (await a.services.events._rooms.snapshot(room_id)).version)


async def test_forged_pdus_are_refused_each_on_its_own(homeservers, tls_files):
    a, b, alice, bob, room_id = await _shared_room(homeservers, tls_files)
    version = (await a.services.events._rooms.snapshot(room_id)).version

    good = await _built_on_b(b, room_id, bob.user_id, "a real message")
    bad_signature = await _built_on_b(b, room_id, bob.user_id, "bad signature")
    sig = bad_signature["signatures"][b.name]
    key_id = next(iter(sig))
    bad_signature["signatures"] = {b.name: {key_id: sig[key_id][:-6] + "AAAAAA"}}
    # A PDU claiming a user of A as its sender, signed only by B.
    forged_sender = await _built_on_b(b, room_id, bob.user_id, "forged")
    forged_sender = {k: v for k, v in forged_sender.items() if k not in ("hashes", "signatures")}
    forged_sender["sender"] = alice.user_id
    from homeserver.core.hashing import compute_content_hash
    forged_sender["hashes"] = {"sha256": compute_content_hash(forged_sender)}
    forged_sender = sign_event(forged_sender, b.name, b.signing_key, version)
    # A user of B who is not in the room: fails the auth rules.
    not_member = await _built_on_b(b, room_id, bob.user_id, "not a member")
    not_member = {k: v for k, v in not_member.items() if k not in ("hashes", "signatures")}
    not_member["sender"] = f"@eve:{b.name}"
    not_member["hashes"] = {"sha256": compute_content_hash(not_member)}
    not_member = sign_event(not_member, b.name, b.signing_key, version)
    garbage = {"room_id": room_id, "type": 42}

    answer = await _send(b, a, [bad_signature, forged_sender, not_member, garbage, good])
    results = answer["pdus"]
    assert results[await _event_id(a, room_id, good)] == {}
    assert "signature" in results[await _event_id(a, room_id, bad_signature)]["error"]
    assert "error" in results[await _event_id(a, room_id, forged_sender)]
    # A PDU that fails the auth rules was handled (stored rejected): no error, as Synapse answers.
    assert results[await _event_id(a, room_id, not_member)] == {}

    # Only the good one reached Alice; the dropped ones were not stored at all, the rejected one
    # was stored rejected (and is not shown).
    body = await alice.wait_for(lambda s: "a real message" in messages(s, room_id))
    assert set(messages(body, room_id)) == {"a real message"}
    stored = await a.services.events._rooms.events._events.get_events(
        [await _event_id(a, room_id, p) for p in (bad_signature, forged_sender, not_member)])
    assert set(stored) == {await _event_id(a, room_id, not_member)}
    assert stored[await _event_id(a, room_id, not_member)].rejected_reason

    # The room keeps working: Alice sends, and B's next message is accepted.
    await alice.send(room_id, "still here")
    later = await _built_on_b(b, room_id, bob.user_id, "after the noise")
    answer = await _send(b, a, [later])
    assert answer["pdus"][await _event_id(a, room_id, later)] == {}


async def test_tampered_content_hash_keeps_the_redacted_copy(homeservers, tls_files):
    a, b, alice, bob, room_id = await _shared_room(homeservers, tls_files)
    pdu = await _built_on_b(b, room_id, bob.user_id, "original words")
    pdu["content"] = {"msgtype": "m.text", "body": "words B never signed"}
    event_id = await _event_id(a, room_id, pdu)
    answer = await _send(b, a, [pdu])
    assert answer["pdus"][event_id] == {}
    body = await alice.wait_for(lambda s: any(e["event_id"] == event_id for e in
                                              s.get("rooms", {}).get("join", {}).get(room_id, {})
                                              .get("timeline", {}).get("events", [])))
    shown = next(e for e in body["rooms"]["join"][room_id]["timeline"]["events"] if e["event_id"] == event_id)
    assert shown["content"] == {}  # the redacted copy: neither version of the text


async def test_retried_transaction_is_answered_again_without_reprocessing(homeservers, tls_files):
    a, b, alice, bob, room_id = await _shared_room(homeservers, tls_files)
    pdu = await _built_on_b(b, room_id, bob.user_id, "once")
    txn = path("/_matrix/federation/v1/send/{}", "txn-1")
    first = await b.services.federation_client.put_json(a.name, txn, {"origin": b.name, "origin_server_ts": 0,
                                                                      "pdus": [pdu]})
    again = await b.services.federation_client.put_json(a.name, txn, {"origin": b.name, "origin_server_ts": 0,
                                                                      "pdus": [pdu]})
    assert first == again == {"pdus": {await _event_id(a, room_id, pdu): {}}}
    body = await alice.wait_for(lambda s: "once" in messages(s, room_id))
    assert messages(body, room_id).count("once") == 1


async def test_membership_endpoints_answer_bad_requests_with_matrix_errors(homeservers, tls_files):
    """Signed but wrong requests to make_*/send_*/invite: a Matrix error each, never a 500."""
    from federation.client import RemoteError

    a, b, alice, bob, room_id = await _shared_room(homeservers, tls_files)
    client = b.services.federation_client
    v1, v2 = "/_matrix/federation/v1", "/_matrix/federation/v2"
    attempts = [
        ("GET", path(v1 + "/make_join/{}/{}", room_id, alice.user_id), None),  # not a user of B
        ("GET", path(v1 + "/make_join/{}/{}", "!nowhere:" + a.name, "@x:" + b.name), None),
        ("GET", path(v1 + "/make_join/{}/{}", room_id, "@x:" + b.name) + "?ver=0", None),
        ("PUT", path(v2 + "/send_join/{}/{}", room_id, "$nothing"), {}),
        ("PUT", path(v2 + "/send_join/{}/{}", room_id, "$nothing"), {"type": "m.room.member", "content": []}),
        ("PUT", path(v2 + "/send_leave/{}/{}", room_id, "$nothing"), {"room_id": room_id}),
        ("PUT", path(v1 + "/send_knock/{}/{}", room_id, "$nothing"), {"depth": "deep"}),
        ("PUT", path(v2 + "/invite/{}/{}", room_id, "$nothing"), {"event": "not an event"}),
        ("PUT", path(v2 + "/invite/{}/{}", room_id, "$nothing"), {"room_version": "999", "event": {}}),
        ("PUT", path(v2 + "/invite/{}/{}", room_id, "$nothing"), {"room_version": "12", "event": {"type": 1}}),
        ("PUT", path(v1 + "/send/{}", "t1"), {"pdus": "nope"}),
        ("PUT", path(v1 + "/send/{}", "t2"), {"pdus": [{}] * 51}),
    ]
    for method, uri, body in attempts:
        with pytest.raises(RemoteError) as err:
            await client.request(method, a.name, uri, content=body)
        assert 400 <= err.value.status < 500 and err.value.errcode, (uri, err.value.status, err.value.body)
    # And the room is unharmed.
    await alice.send(room_id, "still fine")
    await bob.wait_for(lambda s: "still fine" in messages(s, room_id))


async def _redaction_on_b(b, room_id: str, sender: str, target: str) -> dict[str, Any]:
    events = b.services.events
    async with events.room_lock(room_id):
        snap = await events._rooms.snapshot(room_id)
        event = await events.append(events.begin(snap), sender, "m.room.redaction", {}, redacts=target)
    return dict(event.pdu)


async def test_redactions_apply_only_in_their_room_and_by_power_or_from_the_same_server(homeservers, tls_files):
    """Room versions 3+ (spec, "Redactions"): a redaction by a user without the redact power
    applies to events of its own server only, and never to an event of another room; those
    that may not apply are not shown to clients either."""
    a, b, alice, bob, room_id = await _shared_room(homeservers, tls_files)
    other_room = await alice.create_room(preset="public_chat")
    await bob.join(other_room, via=[a.name])
    alices = await alice.send(room_id, "alice's words")
    elsewhere = await alice.send(other_room, "in the other room")
    bobs = await bob.send(room_id, "bob's words")
    await alice.wait_for(lambda s: "bob's words" in messages(s, room_id))

    forged = await _redaction_on_b(b, room_id, bob.user_id, alices)     # Bob has no redact power
    across = await _redaction_on_b(b, room_id, bob.user_id, elsewhere)  # another room's event
    own = await _redaction_on_b(b, room_id, bob.user_id, bobs)          # his own: allowed
    answer = await _send(b, a, [forged, across, own])
    assert all(result == {} for result in answer["pdus"].values())

    async def content_of(room: str, event_id: str) -> dict[str, Any]:
        _, event = await alice.request("GET", f"/_matrix/client/v3/rooms/{room}/event/{event_id}")
        return event["content"]

    own_id = await _event_id(a, room_id, own)
    await alice.wait_for(lambda s: any(e.get("event_id") == own_id
                                       for e in s["rooms"]["join"].get(room_id, {}).get("timeline", {})
                                       .get("events", [])))
    assert await content_of(room_id, bobs) == {}
    assert await content_of(room_id, alices) == {"msgtype": "m.text", "body": "alice's words"}
    assert await content_of(other_room, elsewhere) == {"msgtype": "m.text", "body": "in the other room"}
    stored = await a.services.events._rooms.events._events.get_events(
        [await _event_id(a, room_id, p) for p in (forged, across, own)])
    assert [stored[await _event_id(a, room_id, p)].soft_failed for p in (forged, across, own)] == [True, True, False]


async def test_pushed_event_whose_prev_events_its_server_withholds_is_refused(homeservers, tls_files):
    """get_missing_events brings nothing: the event is refused, and the state at its made-up
    prev event is never asked for (that would let the sender choose the state, as Synapse
    guards against)."""
    from homeserver.core.hashing import compute_content_hash

    a, b, alice, bob, room_id = await _shared_room(homeservers, tls_files)
    version = (await a.services.events._rooms.snapshot(room_id)).version
    pdu = await _built_on_b(b, room_id, bob.user_id, "built on nothing")
    pdu = {k: v for k, v in pdu.items() if k not in ("hashes", "signatures")}
    pdu["prev_events"] = ["$" + "A" * 43]
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    pdu = sign_event(pdu, b.name, b.signing_key, version)

    asked: list[str] = []
    client = a.services.federation_intake._client

    class Recording:
        def __getattr__(self, name):
            return getattr(client, name)

        async def get_json(self, destination, request_path, *args, **kw):
            asked.append(request_path)
            return await client.get_json(destination, request_path, *args, **kw)

        async def post_json(self, destination, request_path, *args, **kw):
            asked.append(request_path)
            return await client.post_json(destination, request_path, *args, **kw)

    a.services.federation_intake._client = Recording()
    answer = await _send(b, a, [pdu])
    assert "prev events" in answer["pdus"][await _event_id(a, room_id, pdu)]["error"]
    assert any(p.startswith("/_matrix/federation/v1/get_missing_events/") for p in asked)
    assert not any("/state_ids/" in p or "/state/" in p for p in asked)
    assert await a.services.events._rooms.events._events.get_event(await _event_id(a, room_id, pdu)) is None
