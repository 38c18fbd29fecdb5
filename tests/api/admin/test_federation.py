"""Federation destinations through Synapse's admin API: listing, details, delivered rooms and
resetting a back-off (the sender's state seeded through its own store)."""

from storage.federation_queue import FederationQueueStore

DESTINATIONS = "/_synapse/admin/v1/federation/destinations"


async def seed(db) -> FederationQueueStore:
    """down.example failing since 1000 (twice), up.example delivered PDUs of two rooms."""
    store = FederationQueueStore(db)
    await store.record_failure("down.example", 1_000, 30_000)
    await store.record_failure("down.example", 31_000, 60_000)
    await store.record_success("up.example", 5_000)
    for room_id, ordering in (("!a:test.local", 7), ("!b:test.local", 9), ("!a:test.local", 12)):
        await store.enqueue(["up.example"], "pdu", {"room_id": room_id}, 6_000, room_id, ordering)
    await store.enqueue(["up.example"], "edu", {"edu_type": "m.receipt", "content": {}}, 6_000)
    items = [i.item_id for i in await store.next_batch("up.example", 50, 100)]
    await store.remove("up.example", items, delivered=True)
    return store


async def test_destinations_are_listed_with_their_back_off_and_deliveries(admin, db):
    await seed(db)
    status, body = await admin.get(DESTINATIONS)
    assert status == 200, body
    assert body == {"total": 2, "destinations": [
        {"destination": "down.example", "retry_last_ts": 31_000, "retry_interval": 60_000, "failure_ts": 1_000,
         "last_successful_stream_ordering": None},
        {"destination": "up.example", "retry_last_ts": 0, "retry_interval": 0, "failure_ts": None,
         "last_successful_stream_ordering": 12},
    ]}
    status, page = await admin.get(f"{DESTINATIONS}?order_by=retry_interval&dir=b&limit=1")
    assert [d["destination"] for d in page["destinations"]] == ["down.example"] and page["next_token"] == "1"
    status, page = await admin.get(f"{DESTINATIONS}?order_by=retry_interval&dir=b&limit=1&from=1")
    assert [d["destination"] for d in page["destinations"]] == ["up.example"] and "next_token" not in page
    status, found = await admin.get(f"{DESTINATIONS}?destination=own.ex")
    assert [d["destination"] for d in found["destinations"]] == ["down.example"] and found["total"] == 1

    status, one = await admin.get(f"{DESTINATIONS}/up.example")
    assert status == 200 and one == body["destinations"][1]
    status, rooms = await admin.get(f"{DESTINATIONS}/up.example/rooms")
    assert rooms == {"total": 2, "rooms": [{"room_id": "!a:test.local", "stream_ordering": 12},
                                           {"room_id": "!b:test.local", "stream_ordering": 9}]}
    status, rooms = await admin.get(f"{DESTINATIONS}/up.example/rooms?dir=b&limit=1")
    assert rooms["rooms"] == [{"room_id": "!b:test.local", "stream_ordering": 9}] and rooms["next_token"] == "1"
    status, rooms = await admin.get(f"{DESTINATIONS}/down.example/rooms")
    assert rooms == {"total": 0, "rooms": []}


async def test_reset_connection_forgets_the_back_off(admin, db):
    store = await seed(db)
    status, body = await admin.post(f"{DESTINATIONS}/down.example/reset_connection", {})
    assert status == 200 and body == {}
    status, one = await admin.get(f"{DESTINATIONS}/down.example")
    assert (one["retry_last_ts"], one["retry_interval"], one["failure_ts"]) == (0, 0, None)
    assert (await store.retry_state("down.example")).retry_interval == 0
    # Nothing to reset any more, nor on a healthy destination; unknown ones are 404.
    for name in ("down.example", "up.example"):
        status, body = await admin.post(f"{DESTINATIONS}/{name}/reset_connection", {})
        assert status == 400 and body["errcode"] == "M_UNKNOWN", name
    status, body = await admin.post(f"{DESTINATIONS}/nowhere.example/reset_connection", {})
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, audit = await admin.get("/_synapse/admin/v1/audit_log?action=destination.")
    assert [(e["action"], e["target"]) for e in audit["entries"]] == [("destination.reset_connection", "down.example")]


async def test_errors(admin, alice, db):
    await seed(db)
    for path in (f"{DESTINATIONS}/nowhere.example", f"{DESTINATIONS}/nowhere.example/rooms"):
        status, body = await admin.get(path)
        assert status == 404 and body["errcode"] == "M_NOT_FOUND", path
    for query in ("order_by=name", "dir=x", "from=-1", "limit=abc"):
        status, body = await admin.get(f"{DESTINATIONS}?{query}")
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM", query
    status, body = await admin.get(f"{DESTINATIONS}/up.example/rooms?dir=sideways")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    for method, path in (("GET", DESTINATIONS), ("GET", f"{DESTINATIONS}/up.example"),
                         ("POST", f"{DESTINATIONS}/down.example/reset_connection")):
        status, body = await alice.request(method, path, {})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
