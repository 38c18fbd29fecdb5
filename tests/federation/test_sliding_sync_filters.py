"""Sliding sync list filters over a room this server holds no state of: an invite from
another server is typed, named and known encrypted or not by the stripped state it came with."""

from __future__ import annotations

from tests.federation.matrix_client import new_user

SSS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def room_list(**filters):
    return {"ranges": [[0, 9]], "timeline_limit": 0, "required_state": [], "filters": filters}


async def test_a_remote_invite_passes_the_filters_its_stripped_state_allows(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice, bob = await new_user(a, tls_files, "alice"), await new_user(b, tls_files, "bob")
    room_id = await alice.create_room(name="Far Away Plans", initial_state=[
        {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    space_id = await alice.create_room(name="Far Space", creation_content={"type": "m.space"})
    for room in (room_id, space_id):
        await alice.membership(room, "invite", bob.user_id)
    await bob.wait_for(lambda s: {room_id, space_id} <= set(s.get("rooms", {}).get("invite", {})))

    _, body = await bob.request("POST", SSS, {"lists": {
        # Element X's room list: everything but spaces.
        "rooms": room_list(not_room_types=["m.space"]),
        "spaces": room_list(room_types=["m.space"]),
        "encrypted": room_list(is_encrypted=True),
        "clear": room_list(is_encrypted=False),
        "named": room_list(room_name_like="far away"),
    }})
    lists = {name: lst["ops"][0]["room_ids"] for name, lst in body["lists"].items()}
    assert lists == {"rooms": [room_id], "spaces": [space_id], "encrypted": [room_id], "clear": [space_id],
                     "named": [room_id]}
