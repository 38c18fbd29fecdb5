"""Spaces across two ChatGO servers: GET /_matrix/federation/v1/hierarchy served to a peer, and
a client's /hierarchy walking into rooms only the other server is in."""

from __future__ import annotations

import pytest

from federation.client import RemoteError
from tests.federation.matrix_client import new_user


async def put_child(client, space: str, child: str, via: str, **content) -> None:
    status, body = await client.request("PUT", f"/_matrix/client/v3/rooms/{space}/state/m.space.child/{child}",
                                        {"via": [via], **content})
    assert status == 200, body


async def test_hierarchy_over_federation(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    space = await alice.create_room(preset="public_chat", name="Space", creation_content={"type": "m.space"})
    lobby = await alice.create_room(preset="public_chat", name="Lobby")
    secret = await alice.create_room(preset="private_chat", name="Secret")
    sub = await alice.create_room(preset="public_chat", name="Sub", creation_content={"type": "m.space"})
    leaf = await alice.create_room(preset="public_chat", name="Leaf")
    for child, order in ((lobby, "a"), (secret, "b"), (sub, "c")):
        await put_child(alice, space, child, a.name, order=order)
    await put_child(alice, sub, leaf, a.name)

    # What a peer gets: the room, its direct children it may see, and the ones it may not.
    fed = b.services.federation_client
    body = await fed.get_json(a.name, f"/_matrix/federation/v1/hierarchy/{space}")
    assert body["room"]["room_id"] == space and body["room"]["room_type"] == "m.space"
    assert [c["state_key"] for c in body["room"]["children_state"]] == [lobby, secret, sub]
    assert sorted(c["room_id"] for c in body["children"]) == sorted([lobby, sub])
    assert body["inaccessible_children"] == [secret]
    with pytest.raises(RemoteError) as err:
        await fed.get_json(a.name, f"/_matrix/federation/v1/hierarchy/{secret}")
    assert err.value.status == 404

    # Bob's server is in the space only: the children come from alice's server.
    status, _ = await bob.join(space, via=[a.name])
    status, tree = await bob.request("GET", f"/_matrix/client/v1/rooms/{space}/hierarchy")
    assert status == 200, tree
    assert [r["room_id"] for r in tree["rooms"]] == [space, lobby, sub, leaf]
    assert {r["room_id"]: r.get("name") for r in tree["rooms"]}[leaf] == "Leaf"
