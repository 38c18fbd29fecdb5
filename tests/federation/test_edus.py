"""EDUs both ways, and our users' events going out as PDUs.

Out: a local action (a message, typing, a receipt, presence, a device or key change, a
to-device message) reaches a stub peer over TLS as the spec's PDU or EDU. In: EDUs handed to
`services.federation_edus.receive` (what the /send handler calls) show up in a local user's
/sync; EDUs from a server that may not speak for the user are ignored.

A remote user's membership is written straight into `current_state`: the join itself is
federation's remote-join code, tested elsewhere; here only "who is in the room" matters.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.api.test_e2e_keys import PASSWORD_AUTH, cross_signing_key, device_keys, device_of
from tests.api.test_sync import V3, send, sync
from tests.api.test_sync_ephemeral import ephemeral
from tests.federation.conftest import federation_overrides
from tests.federation.test_sender import Receiver

REMOTE = "remote.test"
CAROL = f"@carol:{REMOTE}"
# The spec's data, next to the repository as for tests/test_conventions.py (or named by
# MATRIX_SPEC_DIR); EDU schema checks are skipped without it.
SPEC = Path(os.environ.get("MATRIX_SPEC_DIR") or Path(__file__).resolve().parents[3] / "shared" / "matrix-spec")
EDU_SCHEMAS = SPEC / "data" / "api" / "server-server" / "definitions" / "event-schemas"


def _inline_refs(node: Any, base: Path) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = (base / node["$ref"]).resolve()
            return _inline_refs(yaml.safe_load(target.read_text()), target.parent)
        return {k: _inline_refs(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, base) for v in node]
    return node


def assert_valid_edus(edus: list[dict[str, Any]]) -> None:
    """Each EDU against the spec's schema for its type (when the spec's data is present)."""
    for edu in edus:
        path = EDU_SCHEMAS / f"{edu['edu_type']}.yaml"
        if path.exists():
            jsonschema.validate(edu, _inline_refs(yaml.safe_load(path.read_text()), path.parent))


@pytest.fixture
def device_names() -> bool:
    """allow_device_name_lookup_over_federation (a test parametrizes it to change it)."""
    return False


@pytest.fixture
def config_overrides(tls_files, device_names) -> dict:
    return {"federation": federation_overrides(tls_files, retry_min_interval_ms=200,
                                               allow_device_name_lookup_over_federation=device_names)}


@pytest.fixture
async def sender(services):
    services.federation_sender.start()
    yield services.federation_sender
    await services.federation_sender.stop()
    await services.federation_client.close()


@pytest.fixture
async def peer(stubs, sender):
    """A stub peer in the test's rooms; every EDU it received is checked against the spec."""
    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    yield receiver
    assert_valid_edus(receiver.edus())


async def add_remote_member(db, room_id: str, user_id: str) -> None:
    await db.execute(
        """INSERT INTO current_state (room_id, type, state_key, event_id, membership)
           VALUES ($1, 'm.room.member', $2, $3, 'join')""",
        room_id, user_id, f"$join-{uuid.uuid4().hex}",
    )


@pytest.fixture(autouse=True)
def _faked_members_reach_the_room_servers_cache(services, monkeypatch):
    """add_remote_member writes member rows behind the services' back, without the new state
    snapshot a real membership change makes; the per-snapshot cache of a room's servers
    (services.room_servers) must forget what it read before."""
    real = add_remote_member

    async def add_and_forget(db, room_id: str, user_id: str) -> None:
        await real(db, room_id, user_id)
        services.room_servers.forget(room_id)
    monkeypatch.setitem(globals(), "add_remote_member", add_and_forget)


async def room_with(alice, db, *remote_users: str) -> str:
    status, body = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    assert status == 200, body
    for user_id in remote_users:
        await add_remote_member(db, body["room_id"], user_id)
    return body["room_id"]


# --- out ---------------------------------------------------------------------------------------

async def test_a_local_message_goes_to_the_servers_in_the_room(alice, db, peer):
    room = await room_with(alice, db, f"@carol:{peer.stub.name}")
    await send(alice, room, "hello")
    await peer.wait_for(lambda: any(p["type"] == "m.room.message" for p in peer.pdus()))
    [message] = [p for p in peer.pdus() if p["type"] == "m.room.message"]
    assert message["content"]["body"] == "hello" and message["room_id"] == room
    assert "test.local" in message["signatures"] and "hashes" in message
    assert "unsigned" not in message  # the stored PDU, without our clients' transaction IDs


async def test_broadcast_adds_the_membership_target_and_skips_excluded(services, alice, db, peer, stubs):
    other = stubs()
    other_receiver = Receiver(other)
    await other.start()
    room = await room_with(alice, db, f"@carol:{peer.stub.name}")
    persisted = []
    services.events.on_persisted(lambda published: persisted.extend(e for e, _ in published))
    event_id = await send(alice, room, "relay me")
    [event] = persisted
    await peer.wait_for(lambda: len(peer.pdus()) == 1)
    # What the lead's send_join/leave relays: a membership whose target is on another server
    # goes there too; the excluded server (the event's origin) gets nothing.
    member = replace(event, type="m.room.member", state_key=f"@dan:{other.name}")
    await services.pdu_broadcaster.broadcast([member], exclude=[peer.stub.name])
    await other_receiver.wait_for(lambda: len(other_receiver.pdus()) == 1)
    await services.federation_sender.idle()
    assert [p["content"]["body"] for p in peer.pdus()] == ["relay me"]  # room v12: no event_id field
    assert event_id == event.event_id


async def test_typing_goes_out_as_m_typing(alice, db, peer):
    room = await room_with(alice, db, f"@carol:{peer.stub.name}")
    status, body = await alice.put(f"{V3}/rooms/{room}/typing/@alice:test.local", {"typing": True, "timeout": 20000})
    assert status == 200, body
    await peer.wait_for(lambda: peer.edus("m.typing"))
    assert peer.edus("m.typing") == [{"edu_type": "m.typing", "content": {
        "room_id": room, "user_id": "@alice:test.local", "typing": True}}]


async def test_public_receipts_go_out_private_ones_do_not(alice, db, peer):
    room = await room_with(alice, db, f"@carol:{peer.stub.name}")
    first = await send(alice, room, "one")
    second = await send(alice, room, "two")
    assert (await alice.post(f"{V3}/rooms/{room}/receipt/m.read.private/{first}", {}))[0] == 200
    assert (await alice.post(f"{V3}/rooms/{room}/receipt/m.read/{second}", {"thread_id": "main"}))[0] == 200
    await peer.wait_for(lambda: peer.edus("m.receipt"))
    [edu] = peer.edus("m.receipt")
    read = edu["content"][room]["m.read"]["@alice:test.local"]
    assert read["event_ids"] == [second]
    assert read["data"]["thread_id"] == "main" and isinstance(read["data"]["ts"], int)


async def test_presence_goes_to_servers_sharing_a_room(alice, db, peer):
    await room_with(alice, db, f"@carol:{peer.stub.name}")
    status, body = await alice.put(f"{V3}/presence/@alice:test.local/status",
                                   {"presence": "online", "status_msg": "here"})
    assert status == 200, body
    await peer.wait_for(lambda: peer.edus("m.presence"))
    [update] = peer.edus("m.presence")[-1]["content"]["push"]
    assert update["user_id"] == "@alice:test.local" and update["presence"] == "online"
    assert update["status_msg"] == "here" and isinstance(update["last_active_ago"], int)


@pytest.mark.parametrize("device_names", [False, True])
async def test_device_and_key_changes_go_out_as_device_list_and_signing_key_updates(alice, db, peer, device_names):
    await room_with(alice, db, f"@carol:{peer.stub.name}")
    user_id, device_id = await device_of(alice)
    keys, device_key = device_keys(user_id, device_id)
    assert (await alice.post(f"{V3}/keys/upload", {"device_keys": keys}))[0] == 200
    await peer.wait_for(lambda: len(peer.edus("m.device_list_update")) == 1)
    first = peer.edus("m.device_list_update")[0]["content"]
    assert (first["user_id"], first["device_id"]) == (user_id, device_id)
    assert first["keys"]["keys"] == keys["keys"] and isinstance(first["stream_id"], int)
    assert first["prev_id"] == []  # the device's creation was before anyone else could hear of it
    assert "deleted" not in first
    assert (await alice.put(f"{V3}/devices/{device_id}", {"display_name": "phone"}))[0] == 200
    await peer.wait_for(lambda: len(peer.edus("m.device_list_update")) == 2)
    second = peer.edus("m.device_list_update")[1]["content"]
    # The device's name only when allow_device_name_lookup_over_federation says so.
    assert second.get("device_display_name") == ("phone" if device_names else None)
    assert second["prev_id"] == [first["stream_id"]] and second["stream_id"] > first["stream_id"]

    master, master_key, master_public = cross_signing_key(user_id, "master")
    self_signing, _, _ = cross_signing_key(user_id, "self_signing", master_key)
    status, body = await alice.post(f"{V3}/keys/device_signing/upload",
                                    {"master_key": master, "self_signing_key": self_signing})
    assert status == 200, body
    await peer.wait_for(lambda: peer.edus("m.signing_key_update"))
    update = peer.edus("m.signing_key_update")[0]["content"]
    assert update["user_id"] == user_id
    assert update["master_key"]["keys"] == master["keys"]
    assert update["self_signing_key"]["keys"] == self_signing["keys"]
    assert "user_signing_key" not in update

    status, body = await alice.post(f"{V3}/delete_devices", {"devices": [device_id], "auth": {
        **PASSWORD_AUTH, "identifier": {"type": "m.id.user", "user": user_id}}})
    assert status == 200, body
    await peer.wait_for(lambda: any(e["content"].get("deleted") for e in peer.edus("m.device_list_update")))


async def test_to_device_messages_for_remote_users_go_out_grouped_by_server(services, alice, peer):
    server = peer.stub.name
    status, body = await alice.put(f"{V3}/sendToDevice/m.room_key_request/txn1", {"messages": {
        f"@carol:{server}": {"DEV1": {"a": 1}}, f"@dan:{server}": {"*": {"a": 2}}}})
    assert status == 200, body
    # A retried client transaction sends nothing twice.
    assert (await alice.put(f"{V3}/sendToDevice/m.room_key_request/txn1", {"messages": {
        f"@carol:{server}": {"DEV1": {"a": 1}}}}))[0] == 200
    await peer.wait_for(lambda: peer.edus("m.direct_to_device"))
    await services.federation_sender.idle()
    [edu] = peer.edus("m.direct_to_device")
    content = edu["content"]
    assert content["sender"] == "@alice:test.local" and content["type"] == "m.room_key_request"
    assert isinstance(content["message_id"], str) and content["message_id"]
    assert content["messages"] == {f"@carol:{server}": {"DEV1": {"a": 1}}, f"@dan:{server}": {"*": {"a": 2}}}


# --- in ----------------------------------------------------------------------------------------

def edu(edu_type: str, content: Any) -> dict[str, Any]:
    return {"edu_type": edu_type, "content": content}


async def test_remote_typing_shows_in_sync_and_forgeries_do_not(services, alice, db):
    room = await room_with(alice, db, CAROL)
    receive = services.federation_edus.receive
    await receive("evil.test", [edu("m.typing", {"room_id": room, "user_id": CAROL, "typing": True})])
    await receive(REMOTE, [edu("m.typing", {"room_id": room, "user_id": f"@dan:{REMOTE}", "typing": True})])
    body = await sync(alice)
    assert ephemeral(body, room, "m.typing") == []
    await receive(REMOTE, [edu("m.typing", {"room_id": room, "user_id": CAROL, "typing": True})])
    body = await sync(alice, body["next_batch"])
    assert ephemeral(body, room, "m.typing")[0]["content"]["user_ids"] == [CAROL]
    await receive(REMOTE, [edu("m.typing", {"room_id": room, "user_id": CAROL, "typing": False})])
    body = await sync(alice, body["next_batch"])
    assert ephemeral(body, room, "m.typing")[0]["content"]["user_ids"] == []


async def test_remote_receipts_show_in_sync(services, alice, db):
    room = await room_with(alice, db, CAROL)
    event_id = await send(alice, room, "read me")
    body = await sync(alice)
    await services.federation_edus.receive(REMOTE, [edu("m.receipt", {room: {"m.read": {
        CAROL: {"event_ids": [event_id], "data": {"ts": 1234}},
        "@mallory:evil.test": {"event_ids": [event_id], "data": {"ts": 1}},  # not REMOTE's user
    }}})])
    body = await sync(alice, body["next_batch"])
    [receipt] = ephemeral(body, room, "m.receipt")
    assert receipt["content"] == {event_id: {"m.read": {CAROL: {"ts": 1234}}}}


async def test_remote_presence_shows_in_sync(services, alice, db):
    await room_with(alice, db, CAROL)
    body = await sync(alice)
    await services.federation_edus.receive(REMOTE, [edu("m.presence", {"push": [
        {"user_id": CAROL, "presence": "online", "last_active_ago": 5000, "currently_active": True,
         "status_msg": "away from keyboard"},
        {"user_id": "@x:evil.test", "presence": "online", "last_active_ago": 1},
        {"user_id": f"@stranger:{REMOTE}", "presence": "online", "last_active_ago": 1},  # shares no room
        {"user_id": CAROL, "presence": "bogus"},
    ]})])
    body = await sync(alice, body["next_batch"])
    presence = [e for e in body["presence"]["events"] if e["sender"] != "@alice:test.local"]
    assert [(e["sender"], e["content"]["presence"], e["content"]["status_msg"]) for e in presence] == [
        (CAROL, "online", "away from keyboard")]


async def test_remote_device_list_and_signing_key_updates_mark_the_user_changed(services, alice, db):
    await room_with(alice, db, CAROL)
    body = await sync(alice)
    receive = services.federation_edus.receive
    # A forged origin, and a user no one here shares a room with: nobody is told.
    await receive("evil.test", [edu("m.device_list_update", {"user_id": CAROL, "device_id": "D", "stream_id": 1})])
    await receive(REMOTE, [edu("m.device_list_update", {"user_id": f"@dave:{REMOTE}", "device_id": "D",
                                                        "stream_id": 1})])
    body = await sync(alice, body["next_batch"])
    assert "device_lists" not in body
    # Carol's list is kept at stream 1: the update that follows it is applied and told at once.
    await db.execute("INSERT INTO remote_device_lists (user_id, stream_id, updated_ts) VALUES ($1, 1, 0)", CAROL)
    await receive(REMOTE, [edu("m.device_list_update", {"user_id": CAROL, "device_id": "D", "stream_id": 2,
                                                        "prev_id": [1]})])
    body = await sync(alice, body["next_batch"])
    assert body["device_lists"]["changed"] == [CAROL]
    # After a gap the whole list is fetched again first; remote.test does not answer, and the
    # change is told all the same (a client's query tries again).
    await receive(REMOTE, [edu("m.device_list_update", {"user_id": CAROL, "device_id": "D", "stream_id": 4,
                                                        "prev_id": [3]})])
    body = await sync(alice, body["next_batch"], timeout=20_000)
    assert body["device_lists"]["changed"] == [CAROL]
    await receive(REMOTE, [edu("m.signing_key_update", {"user_id": CAROL, "master_key": {}})])
    body = await sync(alice, body["next_batch"])
    assert CAROL in body["device_lists"]["changed"]


async def test_a_failed_fetch_that_a_query_started_tells_nobody(services, alice, db):
    # Telling would make clients query again, and fail again, in a loop while the server is down.
    await room_with(alice, db, CAROL)
    body = await sync(alice)
    status, keys = await alice.post(f"{V3}/keys/query", {"device_keys": {CAROL: []}, "timeout": 5000})
    assert status == 200 and REMOTE in keys["failures"]
    body = await sync(alice, body["next_batch"], timeout=1000)
    assert "device_lists" not in body


async def test_remote_to_device_messages_reach_local_devices_once(services, alice, db):
    user_id, device_id = await device_of(alice)
    body = await sync(alice)
    receive = services.federation_edus.receive
    message = {"sender": CAROL, "type": "m.room_key", "message_id": "abc",
               "messages": {user_id: {"*": {"k": 1}}, "@nobody:elsewhere.test": {"*": {}}}}
    await receive(REMOTE, [edu("m.direct_to_device", message)])
    await receive(REMOTE, [edu("m.direct_to_device", message)])  # a retried transaction
    await receive("evil.test", [edu("m.direct_to_device", {**message, "message_id": "forged"})])
    await receive(REMOTE, [edu("m.direct_to_device", {**message, "message_id": "second",
                                                      "messages": {user_id: {device_id: {"k": 2}}}})])
    body = await sync(alice, body["next_batch"])
    assert body["to_device"]["events"] == [
        {"type": "m.room_key", "sender": CAROL, "content": {"k": 1}},
        {"type": "m.room_key", "sender": CAROL, "content": {"k": 2}},
    ]


async def test_junk_edus_are_skipped_without_raising(services, alice, db):
    room = await room_with(alice, db, CAROL)
    await services.federation_edus.receive(REMOTE, [
        None, 5, "x", {}, {"edu_type": "m.typing"}, {"edu_type": "m.typing", "content": []},
        edu("m.typing", {"room_id": 5, "user_id": CAROL, "typing": True}),
        edu("m.typing", {"room_id": room, "user_id": "not a user", "typing": True}),
        edu("m.receipt", {room: {"m.read": {CAROL: {"event_ids": "nope"}}}, "junk": 1}),
        edu("m.receipt", {room: {"m.read": {CAROL: {"event_ids": ["$unknown"], "data": {"ts": 1}}}}}),
        edu("m.presence", {"push": "x"}), edu("m.presence", {"push": [None, {"user_id": CAROL}]}),
        edu("m.device_list_update", {"user_id": CAROL}),
        edu("m.signing_key_update", {"user_id": 7}),
        edu("m.direct_to_device", {"sender": CAROL, "type": "t", "message_id": 1, "messages": {}}),
        edu("m.direct_to_device", {"sender": CAROL, "type": "t", "message_id": "m", "messages": {"@a:test.local": 5}}),
        edu("m.something_new", {"anything": True}),
    ])
    await services.federation_edus.receive(REMOTE, "not a list")  # type: ignore[arg-type]
    # Still working afterwards.
    await services.federation_edus.receive(REMOTE, [edu("m.typing", {"room_id": room, "user_id": CAROL,
                                                                     "typing": True})])
    body = await sync(alice)
    assert ephemeral(body, room, "m.typing")[0]["content"]["user_ids"] == [CAROL]


@pytest.mark.parametrize("device_names", [False, True])
async def test_a_new_device_goes_out_as_a_device_list_update(client, alice, db, peer, device_names):
    await room_with(alice, db, f"@carol:{peer.stub.name}")
    status, body = await client.post(f"{V3}/login", {
        **PASSWORD_AUTH, "identifier": {"type": "m.id.user", "user": "alice"}, "device_id": "NEWPHONE",
        "initial_device_display_name": "new phone"})
    assert status == 200, body
    await peer.wait_for(lambda: peer.edus("m.device_list_update"))
    [update] = [e["content"] for e in peer.edus("m.device_list_update")]
    assert (update["device_id"], update.get("device_display_name")) == \
        ("NEWPHONE", "new phone" if device_names else None)
    assert "keys" not in update and "deleted" not in update
    # Deleting two devices at once: two updates, each with its own stream_id, chained by prev_id.
    assert (await client.post(f"{V3}/login", {**PASSWORD_AUTH, "identifier": {"type": "m.id.user", "user": "alice"},
                                              "device_id": "TABLET"}))[0] == 200
    status, body = await alice.post(f"{V3}/delete_devices", {"devices": ["NEWPHONE", "TABLET"], "auth": {
        **PASSWORD_AUTH, "identifier": {"type": "m.id.user", "user": "alice"}}})
    assert status == 200, body
    await peer.wait_for(lambda: len(peer.edus("m.device_list_update")) == 4)
    updates = [e["content"] for e in peer.edus("m.device_list_update")]
    assert [u.get("deleted", False) for u in updates] == [False, False, True, True]
    assert {updates[2]["device_id"], updates[3]["device_id"]} == {"NEWPHONE", "TABLET"}
    for before, after in zip(updates, updates[1:]):
        assert after["stream_id"] > before["stream_id"] and after["prev_id"] == [before["stream_id"]]


async def test_typing_and_receipts_from_a_server_the_room_acl_bans_are_skipped(services, alice, db):
    from homeserver.errors import Codes, MatrixError
    from homeserver.services.federation.edus import FederationEduService
    from storage.events import EventStore

    room = await room_with(alice, db, CAROL)
    event_id = await send(alice, room, "hi")

    async def banned(room_id: str, server: str) -> None:
        if server == REMOTE:
            raise MatrixError(403, Codes.FORBIDDEN, "server ACL")

    edus = FederationEduService(EventStore(db), services.typing, services.receipts, services.presence,
                                services.to_device, services.device_lists, "test.local", check_acl=banned)
    await edus.receive(REMOTE, [edu("m.typing", {"room_id": room, "user_id": CAROL, "typing": True}),
                                edu("m.receipt", {room: {"m.read": {CAROL: {"event_ids": [event_id],
                                                                            "data": {"ts": 1}}}}})])
    body = await sync(alice)
    assert ephemeral(body, room, "m.typing") == []
    assert all(CAROL not in str(r) for r in ephemeral(body, room, "m.receipt"))


async def test_remote_edus_show_in_sliding_sync(services, alice, db):
    from tests.api.test_sliding_sync import room_list, sliding

    room = await room_with(alice, db, CAROL)
    user_id, device_id = await device_of(alice)
    request = {"lists": {"all": room_list()},
               "extensions": {"typing": {"enabled": True}, "to_device": {"enabled": True},
                              "e2ee": {"enabled": True}}}
    body = await sliding(alice, request)
    receive = services.federation_edus.receive
    # Carol's list is kept at stream 4: the update that follows is applied (and told) at once.
    await db.execute("INSERT INTO remote_device_lists (user_id, stream_id, updated_ts) VALUES ($1, 4, 0)", CAROL)
    await receive(REMOTE, [
        edu("m.typing", {"room_id": room, "user_id": CAROL, "typing": True}),
        edu("m.direct_to_device", {"sender": CAROL, "type": "m.room_key", "message_id": "s1",
                                   "messages": {user_id: {device_id: {"k": 1}}}}),
        edu("m.device_list_update", {"user_id": CAROL, "device_id": "D", "stream_id": 5, "prev_id": [4]}),
    ])
    body = await sliding(alice, request, pos=body["pos"])
    extensions = body["extensions"]
    assert extensions["typing"]["rooms"][room]["content"]["user_ids"] == [CAROL]
    assert extensions["to_device"]["events"] == [{"type": "m.room_key", "sender": CAROL, "content": {"k": 1}}]
    assert CAROL in extensions["e2ee"]["device_lists"]["changed"]
