"""Spaces: GET /_matrix/client/v1/rooms/{roomId}/hierarchy and GET /room_summary/{roomIdOrAlias}."""

from urllib.parse import quote

V1, V3 = "/_matrix/client/v1", "/_matrix/client/v3"


async def create(client, **body) -> str:
    status, created = await client.post(f"{V3}/createRoom", body)
    assert status == 200, created
    return created["room_id"]


async def add_child(client, space: str, child: str, **content) -> None:
    status, body = await client.put(f"{V3}/rooms/{space}/state/m.space.child/{child}",
                                    {"via": ["test.local"], **content})
    assert status == 200, body


async def hierarchy(client, space: str, query: str = ""):
    return await client.get(f"{V1}/rooms/{space}/hierarchy{query}")


async def test_the_tree_in_order_with_what_each_user_may_see(alice, bob):
    space = await create(alice, preset="public_chat", name="Space", creation_content={"type": "m.space"})
    await bob.post(f"{V3}/join/{space}", {})
    public = await create(alice, preset="public_chat", name="Public", topic="open to all")
    private = await create(alice, preset="private_chat", name="Private")
    restricted = await create(alice, room_version="10", name="Members of the space", initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    sub = await create(alice, preset="public_chat", name="Sub", creation_content={"type": "m.space"})
    leaf = await create(alice, preset="public_chat", name="Leaf")
    await add_child(alice, space, public, order="b")
    await add_child(alice, space, private, order="a")
    await add_child(alice, space, restricted, suggested=True)
    await add_child(alice, space, sub, order="c")
    await add_child(alice, sub, leaf)
    status, body = await alice.put(f"{V3}/rooms/{space}/state/m.space.child/!gone:test.local", {})  # no via: ignored
    assert status == 200

    status, body = await hierarchy(bob, space)
    assert status == 200, body
    # Depth first; `order` before none; the private room hidden from bob.
    assert [r["room_id"] for r in body["rooms"]] == [space, public, sub, leaf, restricted]
    top = body["rooms"][0]
    assert top["room_type"] == "m.space" and top["name"] == "Space" and top["num_joined_members"] == 2
    assert top["join_rule"] == "public" and top["world_readable"] is False and top["guest_can_join"] is False
    assert [c["state_key"] for c in top["children_state"]] == [private, public, sub, restricted]
    assert all(c["type"] == "m.space.child" and isinstance(c["origin_server_ts"], int) for c in top["children_state"])
    by_id = {r["room_id"]: r for r in body["rooms"]}
    assert by_id[public]["topic"] == "open to all" and by_id[public]["children_state"] == []
    assert by_id[restricted]["join_rule"] == "restricted" and by_id[restricted]["allowed_room_ids"] == [space]
    assert by_id[restricted]["room_version"] == "10"

    status, body = await hierarchy(alice, space)  # alice is in every room
    assert [r["room_id"] for r in body["rooms"]] == [space, private, public, sub, leaf, restricted]

    status, body = await hierarchy(bob, space, "?suggested_only=true")
    assert [r["room_id"] for r in body["rooms"]] == [space, restricted]
    status, body = await hierarchy(bob, space, "?max_depth=1")
    assert [r["room_id"] for r in body["rooms"]] == [space, public, sub, restricted]
    status, body = await hierarchy(bob, space, "?max_depth=0")
    assert [r["room_id"] for r in body["rooms"]] == [space]


async def test_paging_and_bad_requests(alice, bob):
    space = await create(alice, preset="public_chat", creation_content={"type": "m.space"})
    children = [await create(alice, preset="public_chat") for _ in range(3)]
    for n, child in enumerate(children):
        await add_child(alice, space, child, order=str(n))
    seen, token = [], None
    while True:
        status, page = await hierarchy(alice, space, "?limit=2" + (f"&from={token}" if token else ""))
        assert status == 200, page
        seen += [r["room_id"] for r in page["rooms"]]
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == [space, *children]

    status, page = await hierarchy(alice, space, "?limit=1")
    status, body = await hierarchy(alice, space, f"?limit=1&suggested_only=true&from={page['next_batch']}")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"  # parameters changed mid-way
    for query in ("?limit=0", "?limit=x", "?max_depth=-1", "?suggested_only=yes", "?from=nonsense"):
        status, body = await hierarchy(alice, space, query)
        assert status == 400 and body["errcode"] in ("M_INVALID_PARAM",), (query, body)

    private = await create(alice, preset="private_chat", creation_content={"type": "m.space"})
    status, body = await hierarchy(bob, private)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await hierarchy(bob, "!unknown:test.local")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_room_summary(client, alice, bob):
    public = await create(alice, preset="public_chat", name="Lobby", room_alias_name="lobby")
    private = await create(alice, preset="private_chat", name="Hidden")

    status, body = await bob.get(f"{V1}/room_summary/{quote('#lobby:test.local')}")
    assert status == 200, body
    assert body["room_id"] == public and body["name"] == "Lobby" and body["canonical_alias"] == "#lobby:test.local"
    assert body["join_rule"] == "public" and body["num_joined_members"] == 1 and "membership" not in body
    assert "children_state" not in body and body["room_version"]
    status, body = await alice.get(f"{V1}/room_summary/{public}")
    assert body["membership"] == "join"
    status, body = await client.get(f"{V1}/room_summary/{public}")  # no token: a public room may be previewed
    assert status == 200 and "membership" not in body

    status, body = await bob.get(f"{V1}/room_summary/{private}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    await alice.post(f"{V3}/rooms/{private}/invite", {"user_id": "@bob:test.local"})
    status, body = await bob.get(f"{V1}/room_summary/{private}")
    assert status == 200 and body["membership"] == "invite" and body["name"] == "Hidden"
    status, body = await client.get(f"{V1}/room_summary/{private}")
    assert status == 404
    status, body = await bob.get(f"{V1}/room_summary/not-a-room")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
