"""Dehydrated devices (MSC3814): store, read back, replace, delete; keys in key queries; the
to-device messages sent to it, paged and acknowledged."""

from tests.api.test_e2e_keys import device_keys
from tests.api.test_sync import V3

BASE = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"
ALICE = "@alice:test.local"
DATA = {"algorithm": "org.matrix.msc3814.v1.olm", "device_pickle": "encrypted-pickle", "nonce": "n0"}


def dehydrated_body(device_id, *, data=DATA, one_time=2):
    keys, _ = device_keys(ALICE, device_id)
    keys["dehydrated"] = True  # the client marks (and signs) its dehydrated device's keys
    return {
        "device_id": device_id, "device_data": data, "initial_device_display_name": "Dehydrated device",
        "device_keys": keys,
        "one_time_keys": {f"signed_curve25519:OTK{i}": {"key": f"otk{i}"} for i in range(one_time)},
        "fallback_keys": {"signed_curve25519:FB": {"key": "fb", "fallback": True}},
    }


async def put_device(c, device_id, **kw):
    status, body = await c.put(BASE, dehydrated_body(device_id, **kw))
    assert status == 200, body
    assert body == {"device_id": device_id}


async def device_ids(c):
    status, body = await c.get(f"{V3}/devices")
    assert status == 200, body
    return {d["device_id"]: d.get("display_name") for d in body["devices"]}


async def test_create_read_back_replace_and_delete(alice, bob):
    status, body = await alice.get(BASE)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    await put_device(alice, "DEHYDRATED1")
    status, body = await alice.get(BASE)
    assert status == 200 and body == {"device_id": "DEHYDRATED1", "device_data": DATA}
    assert (await device_ids(alice))["DEHYDRATED1"] == "Dehydrated device"

    # Its keys are anyone's to query (marked dehydrated) and its one-time keys to claim.
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {ALICE: []}})
    got = body["device_keys"][ALICE]["DEHYDRATED1"]
    assert got["dehydrated"] is True and got["device_id"] == "DEHYDRATED1"
    status, body = await bob.post(f"{V3}/keys/claim", {"one_time_keys": {ALICE: {"DEHYDRATED1": "signed_curve25519"}}})
    assert next(iter(body["one_time_keys"][ALICE]["DEHYDRATED1"])).startswith("signed_curve25519:OTK")

    # A new one replaces it: the old device goes, with its keys.
    data = {**DATA, "device_pickle": "newer"}
    await put_device(alice, "DEHYDRATED2", data=data)
    status, body = await alice.get(BASE)
    assert body == {"device_id": "DEHYDRATED2", "device_data": data}
    devices = await device_ids(alice)
    assert "DEHYDRATED2" in devices and "DEHYDRATED1" not in devices
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {ALICE: []}})
    assert set(body["device_keys"][ALICE]) >= {"DEHYDRATED2"} and "DEHYDRATED1" not in body["device_keys"][ALICE]
    # Bob has none: his requests see nothing of Alice's.
    status, body = await bob.get(BASE)
    assert status == 404

    status, body = await alice.delete(BASE)
    assert status == 200 and body == {"device_id": "DEHYDRATED2"}
    status, body = await alice.get(BASE)
    assert status == 404
    assert "DEHYDRATED2" not in await device_ids(alice)
    status, body = await bob.post(f"{V3}/keys/query", {"device_keys": {ALICE: ["DEHYDRATED2"]}})
    assert body["device_keys"][ALICE] == {}
    status, body = await alice.delete(BASE)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_events_for_the_dehydrated_device_paged_and_acknowledged(alice, bob):
    await put_device(alice, "DEHYDRATED")
    for i in range(5):
        status, body = await bob.put(f"{V3}/sendToDevice/m.room.encrypted/t{i}",
                                     {"messages": {ALICE: {"DEHYDRATED": {"n": i}}}})
        assert status == 200, body
    events = f"{BASE}/DEHYDRATED/events"
    status, page1 = await alice.post(events + "?limit=2", {})
    assert status == 200, page1
    assert [e["content"]["n"] for e in page1["events"]] == [0, 1]
    assert page1["events"][0]["sender"] == "@bob:test.local" and page1["events"][0]["type"] == "m.room.encrypted"
    status, page2 = await alice.post(events + "?limit=2", {"next_batch": page1["next_batch"]})
    assert [e["content"]["n"] for e in page2["events"]] == [2, 3]
    # Asking again from page 1's token: those up to it were deleted, page 2 is sent again.
    status, again = await alice.post(events + "?limit=2", {"next_batch": page1["next_batch"]})
    assert again["events"] == page2["events"]
    status, page3 = await alice.post(events, {"next_batch": page2["next_batch"]})
    assert [e["content"]["n"] for e in page3["events"]] == [4]
    status, done = await alice.post(events, {"next_batch": page3["next_batch"]})
    assert done["events"] == [] and "next_batch" in done
    # The GET form: `from` in the query, next_batch only while more are waiting.
    await bob.put(f"{V3}/sendToDevice/m.room.encrypted/t9", {"messages": {ALICE: {"*": {"n": 9}}}})
    status, got = await alice.get(f"{events}?from={done['next_batch']}")
    assert status == 200 and [e["content"]["n"] for e in got["events"]] == [9] and "next_batch" not in got
    status, got = await alice.get(f"{events}?from={done['next_batch']}&limit=1")
    assert [e["content"]["n"] for e in got["events"]] == [9] and got["next_batch"].startswith("d")
    # Replacing the device drops its inbox with it.
    await put_device(alice, "FRESH")
    status, got = await alice.post(f"{BASE}/FRESH/events", {})
    assert got["events"] == []


async def test_events_only_for_ones_own_dehydrated_device(alice, bob):
    status, body = await alice.post(f"{BASE}/NONE/events", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    await put_device(alice, "DEHYDRATED")
    status, whoami = await alice.get(f"{V3}/account/whoami")
    for device_id in (whoami["device_id"], "OTHER"):
        status, body = await alice.post(f"{BASE}/{device_id}/events", {})
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await bob.post(f"{BASE}/DEHYDRATED/events", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    for bad in ("x5", "d", "d-1", "d²"):
        status, body = await alice.post(f"{BASE}/DEHYDRATED/events", {"next_batch": bad})
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), bad
    status, body = await alice.post(f"{BASE}/DEHYDRATED/events", {"next_batch": 5})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.post(f"{BASE}/DEHYDRATED/events?limit=0", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_bad_uploads_write_nothing(alice):
    status, whoami = await alice.get(f"{V3}/account/whoami")
    good = dehydrated_body("DEHYDRATED")
    bad_bodies = [
        ({**good, "device_id": None}, "M_BAD_JSON"),
        ({**good, "device_id": ""}, "M_BAD_JSON"),
        ({**good, "device_data": "pickle"}, "M_BAD_JSON"),
        ({**good, "device_data": {"no": "algorithm"}}, "M_BAD_JSON"),
        ({**good, "initial_device_display_name": 5}, "M_BAD_JSON"),
        ({k: v for k, v in good.items() if k != "device_keys"}, "M_BAD_JSON"),
        ({**good, "device_keys": {**good["device_keys"], "device_id": "OTHER"}}, "M_INVALID_PARAM"),
        ({**good, "one_time_keys": {"no-colon": "k"}}, "M_BAD_JSON"),
        # The ID of one of the user's ordinary devices is not theirs to take.
        ({**dehydrated_body(whoami["device_id"])}, "M_INVALID_PARAM"),
    ]
    for bad, errcode in bad_bodies:
        status, body = await alice.put(BASE, bad)
        assert (status, body.get("errcode")) == (400, errcode), bad
    status, body = await alice.put(BASE, raw=b"[]")
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert set(await device_ids(alice)) == {whoami["device_id"]}
    status, _ = await alice.get(BASE)
    assert status == 404
    # Uploading the same device again keeps it (and it is still the dehydrated one).
    await put_device(alice, "DEHYDRATED")
    await put_device(alice, "DEHYDRATED")
    assert set(await device_ids(alice)) == {whoami["device_id"], "DEHYDRATED"}
    status, body = await alice.get(BASE)
    assert body["device_id"] == "DEHYDRATED"


async def test_versions_advertises_msc3814(client):
    status, body = await client.get("/_matrix/client/versions")
    assert status == 200 and body["unstable_features"]["org.matrix.msc3814"] is True
