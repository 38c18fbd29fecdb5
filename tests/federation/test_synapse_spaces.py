"""Spaces between ChatGO and a real Synapse, both ways (the `hosting` fixture of
test_synapse_rooms): the home server's user builds a space whose child rooms only the home
server is in; the peer's user joins the space and walks it with GET /hierarchy, so the peer
server fetches the children over GET /_matrix/federation/v1/hierarchy from the home server."""

from __future__ import annotations

import asyncio

from tests.federation.test_synapse_rooms import hosting, users  # noqa: F401 (fixture)


async def test_hierarchy_across_servers(hosting):  # noqa: F811
    home, _ = hosting
    alice, bob = await users(hosting)
    space = await alice.create_room(preset="public_chat", name="Space", creation_content={"type": "m.space"})
    lobby = await alice.create_room(preset="public_chat", name="Lobby")
    secret = await alice.create_room(preset="private_chat", name="Secret")
    for child, order in ((lobby, "a"), (secret, "b")):
        await alice.call("PUT", f"/_matrix/client/v3/rooms/{space}/state/m.space.child/{child}",
                         {"via": [home.name], "order": order})
    assert await bob.join(space, via=[home.name]) == space

    # The peer's copy of the space gets the m.space.child events with the join; then the walk.
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        tree = await bob.call("GET", f"/_matrix/client/v1/rooms/{space}/hierarchy")
        rooms = [r["room_id"] for r in tree["rooms"]]
        if lobby in rooms or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert rooms == [space, lobby]  # the private room is not shown to bob
    by_id = {r["room_id"]: r for r in tree["rooms"]}
    assert by_id[lobby]["name"] == "Lobby" and by_id[lobby]["join_rule"] == "public"
    assert by_id[space]["room_type"] == "m.space"
    assert {c["state_key"] for c in by_id[space]["children_state"]} == {lobby, secret}
