"""The outbound federation queue (federation/sender.py): persisted per destination, delivered
in transactions of at most 50 PDUs and 100 EDUs over real TLS to a stub peer, with back-off
while the peer is down, catch-up when it returns, and nothing lost across a restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from federation.sender import FederationSender
from homeserver.services.clock import Clock
from storage.federation_queue import FederationQueueStore
from tests.federation.conftest import backing_off, make_federation_client


class Receiver:
    """PUT /send/{txnId} on a stub server: records each transaction; `answer` may be changed."""

    def __init__(self, stub) -> None:
        self.stub = stub
        self.transactions: list[tuple[str, dict[str, Any]]] = []
        self.answer: Any = None  # None: 200 {"pdus": {}}; an int: that status; a dict: that body
        stub.route("PUT", "/_matrix/federation/v1/send/{txnId}", self._handle)

    async def _handle(self, request: web.Request) -> Any:
        body = await request.json()
        assert request.headers["Authorization"].startswith("X-Matrix ")
        if isinstance(self.answer, int):
            return web.json_response({"errcode": "M_UNKNOWN", "error": "no"}, status=self.answer)
        self.transactions.append((request.match_info["txnId"], body))
        return self.answer if isinstance(self.answer, dict) else {"pdus": {}}

    def pdus(self) -> list[dict[str, Any]]:
        return [p for _, t in self.transactions for p in t["pdus"]]

    def edus(self, edu_type: str | None = None) -> list[dict[str, Any]]:
        return [e for _, t in self.transactions for e in t["edus"] if edu_type is None or e["edu_type"] == edu_type]

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {self.transactions!r}")
            await asyncio.sleep(0.02)


def pdu(n: int) -> dict[str, Any]:
    return {"event_id": f"$e{n}", "type": "m.room.message", "content": {"n": n}}


@pytest.fixture
async def make_sender(db, tls_files):
    made: list[FederationSender] = []
    clients = []

    def make(**kw: Any) -> FederationSender:
        client, _ = make_federation_client(tls_files, "sender.test")
        clients.append(client)
        kw.setdefault("retry_min_interval_ms", 200)
        sender = FederationSender(db, FederationQueueStore(db), client, Clock(), "sender.test", **kw)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.stop()
    for client in clients:
        await client.close()


async def test_queued_items_are_delivered_in_order_and_leave_the_queue(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    sender = make_sender()
    sender.start()
    await sender.send_pdu(pdu(1), [stub.name, "sender.test"])  # never to ourselves
    await sender.send_edu([stub.name], "m.receipt", {"n": 1})
    await receiver.wait_for(lambda: len(receiver.pdus()) == 1 and len(receiver.edus()) == 1)
    await sender.send_pdu(pdu(2), [stub.name])
    await receiver.wait_for(lambda: len(receiver.pdus()) == 2)
    await sender.idle()
    txn_id, body = receiver.transactions[0]
    assert body["origin"] == "sender.test" and isinstance(body["origin_server_ts"], int)
    assert [p["event_id"] for p in receiver.pdus()] == ["$e1", "$e2"]
    assert receiver.edus() == [{"edu_type": "m.receipt", "content": {"n": 1}}]
    assert len({t for t, _ in receiver.transactions}) == len(receiver.transactions)  # unique txn IDs
    store = FederationQueueStore(db)
    assert await store.queued_count(stub.name) == 0
    assert await db.fetchval("SELECT count(*) FROM federation_outbox") == 0


async def test_transactions_hold_at_most_50_pdus_and_100_edus(make_sender, stubs):
    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    sender = make_sender()
    for n in range(120):  # queued before start: delivered by start, in batches
        await sender.send_pdu(pdu(n), [stub.name])
    for n in range(230):
        await sender.send_edu([stub.name], "m.device_list_update", {"n": n})
    sender.start()
    await receiver.wait_for(lambda: len(receiver.pdus()) == 120 and len(receiver.edus()) == 230)
    assert all(len(t["pdus"]) <= 50 and len(t["edus"]) <= 100 for _, t in receiver.transactions)
    assert max(len(t["pdus"]) for _, t in receiver.transactions) == 50
    assert max(len(t["edus"]) for _, t in receiver.transactions) == 100
    assert [p["content"]["n"] for p in receiver.pdus()] == list(range(120))
    assert [e["content"]["n"] for e in receiver.edus()] == list(range(230))


async def test_back_off_while_down_then_catch_up_in_order(make_sender, stubs, db):
    stub = stubs()  # bound, not listening yet: connections are refused
    receiver = Receiver(stub)
    sender = make_sender(retry_min_interval_ms=300)
    store = FederationQueueStore(db)
    sender.start()
    await sender.send_pdu(pdu(1), [stub.name])
    retry = await backing_off(store, stub.name)
    assert retry.retry_interval == 300
    await sender.send_pdu(pdu(2), [stub.name])  # queued while backing off
    await sender.send_edu([stub.name], "m.typing", {"room_id": "!r:x", "user_id": "@u:sender.test", "typing": True})
    # A second failure doubles the interval.
    retry = await backing_off(store, stub.name, 600)
    assert retry.retry_interval == 600
    assert await store.queued_count(stub.name) == 2
    await stub.start()
    await receiver.wait_for(lambda: len(receiver.pdus()) == 2)
    assert [p["event_id"] for p in receiver.pdus()] == ["$e1", "$e2"]
    assert receiver.edus("m.typing") == []  # ephemeral: stale after a back-off, dropped
    await sender.idle()
    assert (await store.retry_state(stub.name)).retry_interval == 0
    assert await store.queued_count(stub.name) == 0


async def test_wake_retries_a_backing_off_destination_at_once(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    sender = make_sender(retry_min_interval_ms=3_600_000)
    store = FederationQueueStore(db)
    sender.start()
    await sender.send_pdu(pdu(1), [stub.name])
    await backing_off(store, stub.name)
    await stub.start()
    await asyncio.sleep(0.3)
    assert receiver.transactions == []  # still backing off (an hour)
    sender.wake(stub.name)  # the peer sent us a transaction: it is up
    await receiver.wait_for(lambda: len(receiver.pdus()) == 1, timeout=5)


async def test_a_restarted_sender_delivers_what_was_queued(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    first = make_sender(retry_min_interval_ms=3_600_000)
    first.start()
    await first.send_pdu(pdu(1), [stub.name])
    await first.send_edu([stub.name], "m.direct_to_device", {"message_id": "m1"})
    await asyncio.sleep(0.3)
    await first.stop()
    assert await FederationQueueStore(db).queued_count(stub.name) == 2
    await stub.start()
    # A new process over the same database: its back-off state is persisted too, so the
    # peer (up again) is retried when it wakes us, as after a restart of the peer.
    second = make_sender(retry_min_interval_ms=3_600_000)
    second.start()
    await asyncio.sleep(0.3)
    assert receiver.transactions == []
    second.wake(stub.name)
    await receiver.wait_for(lambda: len(receiver.pdus()) == 1 and len(receiver.edus()) == 1)
    assert receiver.edus()[0]["content"] == {"message_id": "m1"}


async def test_a_restart_resumes_delivery_without_waiting_when_not_backing_off(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    first = make_sender()  # never started: the items only sit in the queue
    await first.send_pdu(pdu(7), [stub.name])
    await stub.start()
    second = make_sender()
    second.start()
    await receiver.wait_for(lambda: [p["event_id"] for p in receiver.pdus()] == ["$e7"])


async def test_per_pdu_errors_and_refused_transactions_are_not_retried(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    receiver.answer = {"pdus": {"$e1": {"error": "You are not allowed to send a message to this room."}}}
    sender = make_sender()
    sender.start()
    await sender.send_pdu(pdu(1), [stub.name])
    await receiver.wait_for(lambda: len(receiver.transactions) == 1)
    await sender.idle()
    store = FederationQueueStore(db)
    assert await store.queued_count(stub.name) == 0
    retry = await store.retry_state(stub.name)
    assert retry is None or retry.retry_interval == 0  # a per-PDU error is not a failure
    # A 400 means the peer will never take this body: dropped, not retried forever.
    receiver.answer = 400
    await sender.send_pdu(pdu(2), [stub.name])
    for _ in range(100):
        if await store.queued_count(stub.name) == 0:
            break
        await asyncio.sleep(0.02)
    assert await store.queued_count(stub.name) == 0
    # A 500 is the peer's trouble: kept and retried.
    receiver.answer = 500
    await sender.send_pdu(pdu(3), [stub.name])
    await backing_off(store, stub.name)
    assert await store.queued_count(stub.name) == 1
    receiver.answer = None
    await receiver.wait_for(lambda: [p["event_id"] for p in receiver.pdus()] == ["$e1", "$e3"])


async def test_destinations_outside_the_allowlist_are_never_queued(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    sender = make_sender(domain_allowlist=["other.test"])
    sender.start()
    await sender.send_pdu(pdu(1), [stub.name])
    await sender.send_edu([stub.name], "m.receipt", {})
    await sender.send_edu([stub.name], "m.typing", {})
    await sender.idle()
    assert await FederationQueueStore(db).queued_count(stub.name) == 0
    assert receiver.transactions == []


async def test_a_homeserver_sends_its_users_events_to_a_peer_in_the_room(homeservers, stubs):
    """The whole wiring: a server of the test network (its sender started by the fixture, and
    stopped by it) queues a local user's message for the room's other server."""
    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    a = await homeservers()
    alice = await a.services.accounts.create_user("alice", "password-1")
    room_id = await a.services.rooms.create_room(alice, {"preset": "public_chat"})
    await a.db.execute(
        """INSERT INTO current_state (room_id, type, state_key, event_id, membership)
           VALUES ($1, 'm.room.member', $2, '$remote-join', 'join')""",
        room_id, f"@carol:{stub.name}",
    )
    # A member row written behind the services' back comes with no new state snapshot: the
    # per-snapshot cache of the room's servers must be told.
    a.services.room_servers.forget(room_id)
    await a.services.events.send(room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "hi"})
    await receiver.wait_for(lambda: len(receiver.pdus()) == 1)
    _, body = receiver.transactions[0]
    assert body["origin"] == a.name and body["pdus"][0]["content"]["body"] == "hi"


async def test_two_processes_on_one_database_deliver_each_item_once_in_order(make_sender, stubs, db):
    """Two senders over one queue (two processes of one server): one holds the destination's
    lease and delivers both processes' items; the other waits for the queue to empty."""
    store = FederationQueueStore(db)
    assert await store.acquire_lease("x.test", "a", 1000, 2000)
    assert not await store.acquire_lease("x.test", "b", 1500, 2500)
    assert await store.acquire_lease("x.test", "a", 1500, 2500)  # renewed by its holder
    assert await store.acquire_lease("x.test", "b", 2500, 3500)  # expired: taken over
    await store.release_lease("x.test", "a")  # not the holder: no effect
    assert not await store.acquire_lease("x.test", "a", 3000, 4000)
    await store.release_lease("x.test", "b")
    assert await store.acquire_lease("x.test", "a", 3000, 4000)

    stub = stubs()
    receiver = Receiver(stub)
    await stub.start()
    first, second = make_sender(), make_sender()
    first.start()
    second.start()
    for n in range(40):
        await (first if n % 2 else second).send_pdu(pdu(n), [stub.name])
    await receiver.wait_for(lambda: len(receiver.pdus()) >= 40)
    await first.idle()
    await second.idle()
    assert [p["content"]["n"] for p in receiver.pdus()] == list(range(40))


async def test_a_long_dead_destination_keeps_only_the_latest_pdu_per_room(make_sender, stubs, db):
    stub = stubs()
    receiver = Receiver(stub)
    sender = make_sender(retry_min_interval_ms=3_600_000, catch_up_max_pdus=5)
    store = FederationQueueStore(db)
    for n in range(10):
        await sender.send_pdu({**pdu(n), "room_id": f"!room{n % 2}:x"}, [stub.name])
    await sender.send_edu([stub.name], "m.direct_to_device", {"message_id": "kept"})
    sender.start()
    for _ in range(200):
        if await store.queued_count(stub.name, "pdu") == 2:
            break
        await asyncio.sleep(0.02)
    assert await store.queued_count(stub.name, "pdu") == 2
    assert await store.queued_count(stub.name, "edu") == 1  # EDUs are not compacted
    await stub.start()
    sender.wake(stub.name)
    await receiver.wait_for(lambda: len(receiver.pdus()) == 2)
    assert [p["event_id"] for p in receiver.pdus()] == ["$e8", "$e9"]
    assert receiver.edus()[0]["content"] == {"message_id": "kept"}
