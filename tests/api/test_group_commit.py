"""Group commit over real HTTP: sends into one room that queue while a batch commits are
built on the room's head in order and committed together, each answered on its own.

A `gate` holds every persist until the test opens it, so a test can fill the room's queue
behind a commit in flight and know exactly which sends form the next batch.
"""

import asyncio
import time
import uuid

import pytest

from storage.events import EventStore
from storage.room_heads import RoomHeadQueries

V3 = "/_matrix/client/v3"


class Gate:
    """Every persist waits for `opened`; `sizes` records each batch's event count."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.opened.set()
        self.sizes: list[int] = []


@pytest.fixture
def gate(monkeypatch) -> Gate:
    gate = Gate()
    original = EventStore.persist

    async def persist(store, batch):
        gate.sizes.append(len(batch.events))
        await gate.opened.wait()
        return await original(store, batch)

    monkeypatch.setattr(EventStore, "persist", persist)
    return gate


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def send(c, room, body, txn=None):
    return await c.put(f"{V3}/rooms/{room}/send/m.room.message/{txn or uuid.uuid4().hex}",
                       {"msgtype": "m.text", "body": body})


async def public_room(alice, bob) -> str:
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    assert status == 200, created
    room = created["room_id"]
    status, joined = await bob.post(f"{V3}/rooms/{room}/join", {})
    assert status == 200, joined
    return room


async def hold_first_commit(gate: Gate, services, alice, room) -> asyncio.Task:
    """Close the gate and send one message: it waits in persist, so later sends queue."""
    gate.opened.clear()
    gate.sizes.clear()
    first = asyncio.create_task(send(alice, room, "first"))
    await until(lambda: len(gate.sizes) == 1)
    return first


async def queue_in_order(services, room, coros) -> list[asyncio.Task]:
    """Start each request once the previous one is queued, so the queue holds them in order."""
    tasks = []
    for coro in coros:
        tasks.append(asyncio.create_task(coro))
        await until(lambda: services.events.queued(room) == len(tasks))
    return tasks


async def bodies(c, room) -> list[str]:
    status, page = await c.get(f"{V3}/rooms/{room}/messages?dir=f&limit=1000")
    assert status == 200, page
    return [e["content"]["body"] for e in page["chunk"] if e["type"] == "m.room.message"]


async def assert_linear(db, room) -> list[str]:
    """The room's history is one chain (each event's only prev_event is the one before it,
    depth one more) ending in its single forward extremity; returns its event IDs in order."""
    rows = await db.fetch(
        """SELECT e.event_id, e.depth, coalesce(array_agg(p.prev_event_id) FILTER (WHERE p.prev_event_id IS NOT NULL),
                                                '{}') AS prevs
           FROM events e LEFT JOIN event_edges p USING (event_id)
           WHERE e.room_id = $1 AND NOT e.outlier GROUP BY e.event_id, e.depth, e.stream_ordering
           ORDER BY e.stream_ordering""", room)
    for before, row in zip(rows, rows[1:]):
        assert list(row["prevs"]) == [before["event_id"]], row["event_id"]
        assert row["depth"] == before["depth"] + 1
    extremities = await db.fetch("SELECT event_id FROM forward_extremities WHERE room_id = $1", room)
    assert [r["event_id"] for r in extremities] == [rows[-1]["event_id"]]
    return [r["event_id"] for r in rows]


async def test_sends_queued_behind_a_commit_are_one_batch_on_a_linear_history(alice, bob, services, db, gate):
    room = await public_room(alice, bob)
    first = await hold_first_commit(gate, services, alice, room)
    texts = [f"m{i}" for i in range(59)]
    tasks = [asyncio.create_task(send(alice if i % 2 else bob, room, text)) for i, text in enumerate(texts)]
    await until(lambda: services.events.queued(room) == 59)
    gate.opened.set()
    results = await asyncio.gather(first, *tasks)
    assert all(status == 200 for status, _ in results), results
    ids = [body["event_id"] for _, body in results]
    assert len(set(ids)) == 60
    # The 59 sends that queued behind the first commit went in one statement.
    assert gate.sizes == [1, 59]
    order = await assert_linear(db, room)
    assert order[-60:] == [ids[0]] + sorted(ids[1:], key=order.index)  # every answer is in the chain
    assert sorted(await bodies(alice, room)) == sorted(["first", *texts])


async def test_concurrent_senders_keep_their_order_and_the_room_stays_linear(alice, bob, client, services, db):
    room = await public_room(alice, bob)
    users = [alice, bob]
    for i in range(3):
        token = (await client.register(f"user{i}"))["access_token"]
        user = client.with_token(token)
        assert (await user.post(f"{V3}/rooms/{room}/join", {}))[0] == 200
        users.append(user)

    async def sender(k: int) -> list[str]:
        ids = []
        for n in range(8):  # each sender's messages one after the other
            status, body = await send(users[k % len(users)], room, f"s{k}-{n}")
            assert status == 200, body
            ids.append(body["event_id"])
        return ids

    sent = await asyncio.gather(*(sender(k) for k in range(10)))
    order = await assert_linear(db, room)
    for ids in sent:  # a sender's messages appear in the order it sent them
        assert sorted(ids, key=order.index) == ids
    texts = await bodies(alice, room)
    assert sorted(texts) == sorted(f"s{k}-{n}" for k in range(10) for n in range(8))


async def test_concurrent_retries_of_one_transaction_send_one_event(alice, bob, services, db, gate):
    room = await public_room(alice, bob)
    first = await hold_first_commit(gate, services, alice, room)
    # Five copies of one transaction queued among other sends: one batch, one event.
    coros = [send(alice, room, "retried", txn="t-1") for _ in range(3)]
    coros.insert(1, send(alice, room, "other"))
    coros.append(send(bob, room, "bob's"))
    coros += [send(alice, room, "retried", txn="t-1") for _ in range(2)]
    tasks = await queue_in_order(services, room, coros)
    gate.opened.set()
    results = [await t for t in tasks]
    assert (await first)[0] == 200
    assert all(status == 200 for status, _ in results), results
    retried = {results[i][1]["event_id"] for i in (0, 2, 3, 5, 6)}
    assert len(retried) == 1
    assert gate.sizes == [1, 3]  # "retried", "other", "bob's"

    # Retried again while another send holds the room: the persist finds the transaction
    # already stored and writes nothing; the batch is rebuilt without it and answered with
    # the stored event.
    first = await hold_first_commit(gate, services, alice, room)
    tasks = await queue_in_order(services, room, [send(alice, room, "retried", txn="t-1") for _ in range(3)]
                                 + [send(alice, room, "later")])
    gate.opened.set()
    again = [await t for t in tasks]
    await first
    assert {body["event_id"] for _, body in again[:3]} == retried
    assert again[3][0] == 200
    assert gate.sizes == [1, 2, 1]  # "retried" and "later" refused, then "later" alone
    # The same transaction ID from another user is another transaction.
    status, other = await send(bob, room, "retried", txn="t-1")
    assert status == 200 and other["event_id"] not in retried
    assert (await bodies(alice, room)).count("retried") == 2
    await assert_linear(db, room)


async def test_a_refused_send_in_a_batch_fails_alone(alice, bob, services, db, gate):
    room = await public_room(alice, bob)
    first = await hold_first_commit(gate, services, alice, room)
    # bob (power 0) may not set the room's name (state_default 50): refused in mid-batch.
    a, refused, b = await queue_in_order(services, room, [
        send(alice, room, "a"),
        bob.put(f"{V3}/rooms/{room}/state/m.room.name/", {"name": "bob's name"}),
        send(alice, room, "b"),
    ])
    gate.opened.set()
    (status_a, sent_a), (status, error), (status_b, sent_b) = await a, await refused, await b
    await first
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    assert status_a == status_b == 200
    assert gate.sizes == [1, 2]
    order = await assert_linear(db, room)
    assert order[-2:] == [sent_a["event_id"], sent_b["event_id"]]  # b follows a directly
    assert (await alice.get(f"{V3}/rooms/{room}/state/m.room.name/"))[0] == 404


async def test_state_events_in_one_batch_each_see_the_state_before_them(alice, bob, services, db, gate):
    room = await public_room(alice, bob)
    status, levels = await alice.get(f"{V3}/rooms/{room}/state/m.room.power_levels/")
    levels["users"] = {**levels.get("users", {}), "@bob:test.local": 50}
    first = await hold_first_commit(gate, services, alice, room)
    promote, rename, topic, message = await queue_in_order(services, room, [
        alice.put(f"{V3}/rooms/{room}/state/m.room.power_levels/", levels),
        # Allowed by the power levels sent just before it in the same batch.
        bob.put(f"{V3}/rooms/{room}/state/m.room.name/", {"name": "bob's name"}),
        bob.put(f"{V3}/rooms/{room}/state/m.room.topic/", {"topic": "bob's topic"}),
        send(alice, room, "after"),
    ])
    gate.opened.set()
    results = [await t for t in (promote, rename, topic, message)]
    await first
    assert all(status == 200 for status, _ in results), results
    assert gate.sizes == [1, 4]
    ids = [body["event_id"] for _, body in results]
    assert (await alice.get(f"{V3}/rooms/{room}/state/m.room.name/"))[1] == {"name": "bob's name"}
    assert (await alice.get(f"{V3}/rooms/{room}/state/m.room.topic/"))[1] == {"topic": "bob's topic"}
    rows = {r["event_id"]: r for r in await db.fetch(
        "SELECT event_id, state_before, state_after FROM events WHERE event_id = ANY($1::text[])", ids)}
    groups = [(rows[i]["state_before"], rows[i]["state_after"]) for i in ids]
    # Each state event has a state group of its own, chained through the batch.
    for (_, after), (before, _) in zip(groups, groups[1:]):
        assert before == after
    assert len({after for _, after in groups[:3]}) == 3
    assert groups[3][0] == groups[3][1] == groups[2][1]  # the message changes no state
    # The room's state is the one after the batch.
    status, state = await alice.get(f"{V3}/rooms/{room}/state")
    assert {(e["type"], e["event_id"]) for e in state} >= {
        ("m.room.power_levels", ids[0]), ("m.room.name", ids[1]), ("m.room.topic", ids[2])}
    await assert_linear(db, room)


@pytest.fixture
async def second_server(aiohttp_client, db, config_overrides, signing_key):
    """Another server on the same database, as a second process would be (without the
    LISTEN/NOTIFY announcements: its cached room snapshots go stale)."""
    from homeserver.app import build_services
    from homeserver.web_app import make_web_app
    from tests.conftest import make_test_config
    from tests.server_fixtures import MatrixClient

    services = build_services(make_test_config(**config_overrides), db, signing_key=signing_key)
    yield MatrixClient(await aiohttp_client(make_web_app(services, ["client"])))
    await services.devices.flush()
    await services.pushers.close()


async def test_a_batch_built_on_a_stale_head_is_rebuilt_and_the_room_then_takes_the_writer_lock(
        alice, second_server, db, monkeypatch):
    persisted: list[bool] = []
    locked: list[str] = []
    persist, writer_lock = EventStore.persist, RoomHeadQueries.room_writer_lock

    async def recording_persist(store, batch):
        result = await persist(store, batch)
        persisted.append(result.written)
        return result

    def recording_lock(store, room_id):
        locked.append(room_id)
        return writer_lock(store, room_id)

    monkeypatch.setattr(EventStore, "persist", recording_persist)
    monkeypatch.setattr(RoomHeadQueries, "room_writer_lock", recording_lock)
    status, created = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = created["room_id"]
    other = second_server.with_token(alice.token)
    assert (await send(other, room, "through the other server"))[0] == 200
    persisted.clear()
    # This server's cached head is stale: its batch is refused, then rebuilt on the new head.
    status, second = await send(alice, room, "after it")
    assert status == 200, second
    assert persisted == [False, True] and locked == []
    # The room now counts as shared: the next batch takes the room's writer lock first.
    status, third = await send(alice, room, "under the lock")
    assert status == 200 and locked == [room] and persisted[-1] is True
    order = await assert_linear(db, room)
    assert order[-2:] == [second["event_id"], third["event_id"]]
    assert (await bodies(alice, room))[-3:] == ["through the other server", "after it", "under the lock"]
