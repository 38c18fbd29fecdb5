"""The appservices' room directories (PUT /directory/list/appservice/{networkId}/{roomId}) and
publicRooms with `third_party_instance_id` / `include_all_networks`."""

from __future__ import annotations

import pytest

from tests.api.appservices.conftest import V3, write_registration


@pytest.fixture
def registrations(tmp_path, bridge, plain) -> list[str]:
    return [str(write_registration(tmp_path / "bridge.yaml", bridge.registration(protocols=["ymca"]))),
            str(write_registration(tmp_path / "plain.yaml", plain.registration()))]


async def room_ids(client, body: dict) -> list[str]:
    status, answer = await client.post(f"{V3}/publicRooms", body)
    assert status == 200, answer
    return [r["room_id"] for r in answer["chunk"]]


async def test_an_appservice_publishes_rooms_per_network(alice, as_bridge, as_plain):
    _, bridged = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "name": "Bridged"})
    _, main = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "visibility": "public", "name": "Main"})
    bridged, main = bridged["room_id"], main["room_id"]

    status, body = await as_bridge.put(f"{V3}/directory/list/appservice/net1/{bridged}", {"visibility": "public"})
    assert (status, body) == (200, {})
    # Not in the server's own directory, in its network's only, in everything.
    assert await room_ids(alice, {}) == [main]
    status, body = await alice.post(f"{V3}/publicRooms", {"third_party_instance_id": "bridge|net1"})
    assert status == 200 and [r["room_id"] for r in body["chunk"]] == [bridged]
    assert body["total_room_count_estimate"] == 1
    assert body["chunk"][0]["name"] == "Bridged" and body["chunk"][0]["num_joined_members"] == 1
    assert await room_ids(alice, {"third_party_instance_id": "bridge|net2"}) == []
    assert await room_ids(alice, {"third_party_instance_id": "plain|net1"}) == []
    assert sorted(await room_ids(alice, {"include_all_networks": True})) == sorted([bridged, main])
    # The server's directory and a network's are separate lists: a room may be in both, and
    # is listed once with everything.
    status, _ = await as_bridge.put(f"{V3}/directory/list/appservice/net1/{main}", {"visibility": "public"})
    assert status == 200
    assert sorted(await room_ids(alice, {"third_party_instance_id": "bridge|net1"})) == sorted([bridged, main])
    assert sorted(await room_ids(alice, {"include_all_networks": True})) == sorted([bridged, main])
    # Publishing again changes nothing; another appservice's network of the same name is its own.
    status, _ = await as_bridge.put(f"{V3}/directory/list/appservice/net1/{bridged}", {"visibility": "public"})
    assert status == 200
    status, _ = await as_plain.put(f"{V3}/directory/list/appservice/net1/{bridged}", {"visibility": "public"})
    assert status == 200
    assert await room_ids(alice, {"third_party_instance_id": "plain|net1"}) == [bridged]
    # Paging through a network's list.
    status, page = await alice.post(f"{V3}/publicRooms", {"third_party_instance_id": "bridge|net1", "limit": 1})
    assert status == 200 and len(page["chunk"]) == 1 and page["total_room_count_estimate"] == 2
    status, rest = await alice.post(f"{V3}/publicRooms", {"third_party_instance_id": "bridge|net1", "limit": 1,
                                                          "since": page["next_batch"]})
    assert {page["chunk"][0]["room_id"], rest["chunk"][0]["room_id"]} == {bridged, main}

    # Unpublished with "private", or with DELETE (as Synapse); the server's directory keeps `main`.
    status, _ = await as_bridge.put(f"{V3}/directory/list/appservice/net1/{main}", {"visibility": "private"})
    assert status == 200
    status, body = await as_bridge.delete(f"{V3}/directory/list/appservice/net1/{bridged}")
    assert (status, body) == (200, {})
    assert await room_ids(alice, {"third_party_instance_id": "bridge|net1"}) == []
    assert await room_ids(alice, {}) == [main]
    assert sorted(await room_ids(alice, {"include_all_networks": True})) == sorted([bridged, main])  # plain's


async def test_the_instance_id_of_the_protocol_lookups_lists_the_network(alice, as_bridge, bridge):
    bridge.thirdparty["protocol/ymca"] = {"user_fields": [], "location_fields": [], "icon": "", "field_types": {},
                                          "instances": [{"desc": "YMCA", "network_id": "ymca-net", "fields": {}}]}
    _, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    status, _ = await as_bridge.put(f"{V3}/directory/list/appservice/ymca-net/{room['room_id']}",
                                    {"visibility": "public"})
    assert status == 200
    status, protocols = await alice.get(f"{V3}/thirdparty/protocols")
    assert status == 200, protocols
    instance_id = protocols["ymca"]["instances"][0]["instance_id"]
    assert await room_ids(alice, {"third_party_instance_id": instance_id}) == [room["room_id"]]


async def test_bad_network_directory_requests(alice, as_bridge):
    _, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    path = f"{V3}/directory/list/appservice/net1/{room['room_id']}"
    # Only appservices (with their as_token).
    for method in (alice.put, alice.delete):
        status, body = await method(path, {"visibility": "public"})
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    for body, expected in (({}, (400, "M_MISSING_PARAM")), ({"visibility": "hidden"}, (400, "M_INVALID_PARAM")),
                           ({"visibility": 1}, (400, "M_INVALID_PARAM"))):
        status, answer = await as_bridge.put(path, body)
        assert (status, answer["errcode"]) == expected, body
    status, answer = await as_bridge.put(path, raw=b"not json")
    assert (status, answer["errcode"]) == (400, "M_NOT_JSON")
    status, answer = await as_bridge.put(f"{V3}/directory/list/appservice/net1/!nowhere:test.local",
                                         {"visibility": "public"})
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")
    status, answer = await as_bridge.put(f"{V3}/directory/list/appservice/net1/!nowhere:test.local",
                                         {"visibility": "private"})
    assert status == 200  # nothing to unpublish is no error

    for body in ({"third_party_instance_id": "no-separator"}, {"third_party_instance_id": "|net"},
                 {"third_party_instance_id": "bridge|"}, {"third_party_instance_id": 5},
                 {"include_all_networks": True, "third_party_instance_id": "bridge|net1"},
                 {"include_all_networks": "yes"}):
        status, answer = await alice.post(f"{V3}/publicRooms", body)
        assert status == 400 and answer["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON"), body


async def test_a_room_deleted_by_an_admin_leaves_the_network_directories(admin, alice, as_bridge, db):
    _, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room = room["room_id"]
    status, _ = await as_bridge.put(f"{V3}/directory/list/appservice/net1/{room}", {"visibility": "public"})
    assert status == 200 and await room_ids(alice, {"third_party_instance_id": "bridge|net1"}) == [room]
    status, body = await admin.delete(f"/_synapse/admin/v1/rooms/{room}", {"purge": True})
    assert status == 200, body
    assert await room_ids(alice, {"third_party_instance_id": "bridge|net1"}) == []
    assert await db.fetchval("SELECT count(*) FROM appservice_room_list WHERE room_id = $1", room) == 0
