"""Simplified sliding sync (MSC4186): lists, subscriptions, connections, extensions, errors."""

import asyncio
import time

from tests.api.test_sync import V3, send
from tests.api.test_sync_ephemeral import shared_room

SSS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
ALICE = "@alice:test.local"
BOB = "@bob:test.local"


async def sliding(c, body, pos=None, timeout=0, status=200):
    query = f"?timeout={timeout}" + (f"&pos={pos}" if pos else "")
    got_status, response = await c.post(SSS + query, body)
    assert got_status == status, response
    return response


def room_list(end=9, timeline_limit=1, required_state=(("m.room.name", ""),), **filters):
    return {"ranges": [[0, end]], "timeline_limit": timeline_limit,
            "required_state": [list(p) for p in required_state], "filters": filters}


def listed(body, name="all"):
    return body["lists"][name]["ops"][0]["room_ids"]


async def create(c, **body):
    status, created = await c.post(f"{V3}/createRoom", body)
    assert status == 200, created
    return created["room_id"]


def bodies(room):
    return [e["content"].get("body") for e in room.get("timeline", [])]


# --- lists ---------------------------------------------------------------------------------------------

async def test_lists_follow_recency_and_rooms_entering_the_range_come_whole(alice):
    a, b, c = [await create(alice, name=n) for n in "ABC"]
    for room in (a, b, c):
        await send(alice, room, f"in {room}")
    request = {"lists": {"all": room_list(end=1)}}
    body = await sliding(alice, request)
    assert body["lists"]["all"]["count"] == 3
    assert listed(body) == [c, b]
    assert set(body["rooms"]) == {c, b}
    room = body["rooms"][c]
    assert room["initial"] is True and room["name"] == "C"
    assert [e["type"] for e in room["required_state"]] == ["m.room.name"]
    assert bodies(room) == [f"in {c}"] and room["limited"] is True
    assert room["joined_count"] == 1 and room["bump_stamp"] > body["rooms"][b]["bump_stamp"]

    # A message in the oldest room moves it to the top: it enters the range whole.
    await send(alice, a, "back to the top")
    body = await sliding(alice, request, pos=body["pos"])
    assert listed(body) == [a, c]
    assert set(body["rooms"]) == {a}
    assert body["rooms"][a]["initial"] is True and body["rooms"][a]["name"] == "A"
    assert bodies(body["rooms"][a]) == ["back to the top"]

    # B was sent before: coming back into range it gets what it missed, not `initial`.
    await send(alice, b, "b again")
    body = await sliding(alice, request, pos=body["pos"])
    assert listed(body) == [b, a]
    room = body["rooms"][b]
    assert "initial" not in room and "name" not in room and "required_state" not in room
    assert bodies(room) == ["b again"] and room["num_live"] == 1

    # Nothing new: no rooms; a wider range sends only the rooms the client lacks (none here).
    request["lists"]["all"]["ranges"] = [[0, 9]]
    body = await sliding(alice, request, pos=body["pos"])
    assert body["rooms"] == {} and listed(body) == [b, a, c]


async def test_list_filters(alice, bob):
    dm = await create(alice, invite=[BOB], is_direct=True)
    encrypted = await create(alice, initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                     "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    space = await create(alice, creation_content={"type": "m.space"})
    plain = await create(alice)
    await alice.put(f"{V3}/user/{ALICE}/account_data/m.direct", {BOB: [dm]})
    invited = await create(bob, invite=[ALICE])
    body = await sliding(alice, {"lists": {
        "dms": room_list(is_dm=True), "not_dms": room_list(is_dm=False),
        "encrypted": room_list(is_encrypted=True), "spaces": room_list(room_types=["m.space"]),
        "rooms": room_list(not_room_types=["m.space"]), "untyped": room_list(room_types=[None]),
        "invites": room_list(is_invite=True), "joined": room_list(is_invite=False),
    }})
    assert listed(body, "dms") == [dm]
    assert set(listed(body, "not_dms")) == {encrypted, space, plain, invited}
    assert listed(body, "encrypted") == [encrypted]
    assert listed(body, "spaces") == [space]
    assert space not in listed(body, "rooms") and plain in listed(body, "rooms")
    assert space not in listed(body, "untyped") and encrypted in listed(body, "untyped")
    assert listed(body, "invites") == [invited]
    assert invited not in listed(body, "joined")
    assert body["rooms"][dm]["is_dm"] is True and "is_dm" not in body["rooms"][plain]


async def add_child(c, space, child, via=("test.local",)):
    status, body = await c.put(f"{V3}/rooms/{space}/state/m.space.child/{child}",
                               {"via": list(via)} if via else {})
    assert status == 200, body


async def test_spaces_filter_keeps_children_of_joined_spaces_only(alice, bob):
    space = await create(alice, name="Space", creation_content={"type": "m.space"})
    sub = await create(alice, name="Sub", creation_content={"type": "m.space"})
    a, b, removed, grandchild, outside = [await create(alice, name=n) for n in ("A", "B", "Gone", "Deep", "Out")]
    for child in (a, b, sub):
        await add_child(alice, space, child)
    await add_child(alice, space, removed, via=())  # a child event without `via` is no child
    await add_child(alice, sub, grandchild)
    # A space Alice is not in names `outside`: it is ignored.
    foreign = await create(bob, creation_content={"type": "m.space"})
    await add_child(bob, foreign, outside)
    body = await sliding(alice, {"lists": {
        "space": room_list(spaces=[space]),
        "both": room_list(spaces=[space, sub]),
        "foreign": room_list(spaces=[foreign, "!unknown:test.local"]),
        "rooms_in_space": room_list(spaces=[space], not_room_types=["m.space"]),
        "named_b": room_list(spaces=[space], room_name_like="b"),
    }})
    assert set(listed(body, "space")) == {a, b, sub}  # not the sub-space's child, not the removed one
    assert set(listed(body, "both")) == {a, b, sub, grandchild}
    assert listed(body, "foreign") == [] and body["lists"]["foreign"]["count"] == 0
    assert set(listed(body, "rooms_in_space")) == {a, b}
    assert set(listed(body, "named_b")) == {b, sub}  # "B" and "Sub"
    # Once Alice joins Bob's space, its children count.
    await bob.post(f"{V3}/rooms/{foreign}/invite", {"user_id": ALICE})
    status, joined = await alice.post(f"{V3}/rooms/{foreign}/join", {})
    assert status == 200, joined
    body = await sliding(alice, {"lists": {"foreign": room_list(spaces=[foreign])}})
    assert listed(body, "foreign") == [outside]


async def tag(c, room, name, order=0.5):
    status, body = await c.put(f"{V3}/user/{ALICE}/rooms/{room}/tags/{name}", {"order": order})
    assert status == 200, body


async def test_tags_and_not_tags_filters(alice):
    favourite, low, both, plain = [await create(alice, name=n) for n in ("Fav", "Low", "Both", "Plain")]
    await tag(alice, favourite, "m.favourite")
    await tag(alice, low, "m.lowpriority")
    await tag(alice, both, "m.favourite")
    await tag(alice, both, "u.work")
    await tag(alice, both, "m.lowpriority")
    request = {"lists": {
        "favourites": room_list(tags=["m.favourite"]),
        "work_or_low": room_list(tags=["u.work", "m.lowpriority"]),
        "not_low": room_list(not_tags=["m.lowpriority"]),
        "fav_not_low": room_list(tags=["m.favourite"], not_tags=["m.lowpriority"]),
        "untagged_named_p": room_list(not_tags=["m.favourite", "m.lowpriority"], room_name_like="P"),
    }}
    body = await sliding(alice, request)
    assert set(listed(body, "favourites")) == {favourite, both}
    assert set(listed(body, "work_or_low")) == {low, both}
    assert set(listed(body, "not_low")) == {favourite, plain}
    assert listed(body, "fav_not_low") == [favourite]  # not_tags wins over tags
    assert listed(body, "untagged_named_p") == [plain]
    # Removing a tag moves the room between lists on the connection's next response.
    status, _ = await alice.delete(f"{V3}/user/{ALICE}/rooms/{both}/tags/m.lowpriority")
    assert status == 200
    body = await sliding(alice, request, pos=body["pos"])
    assert set(listed(body, "fav_not_low")) == {favourite, both}
    assert set(listed(body, "not_low")) == {favourite, both, plain}


async def test_room_name_like_filter(alice, bob):
    alpha, team, beta = [await create(alice, name=n) for n in ("Project Alpha", "alpha-team", "Beta")]
    unnamed = await create(alice)
    encrypted = await create(alice, name="Secret ALPHA", initial_state=[
        {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    invited = await create(bob, name="Alphabet soup", invite=[ALICE])
    body = await sliding(alice, {"lists": {
        "alpha": room_list(room_name_like="ALPHA"),
        "any_name": room_list(room_name_like=""),
        "nothing": room_list(room_name_like="gamma"),
        "alpha_clear": room_list(room_name_like="alpha", is_encrypted=False),
        "alpha_invites": room_list(room_name_like="Alpha", is_invite=True),
        "alpha_rooms": room_list(room_name_like="alpha", room_types=[None], not_tags=["m.lowpriority"]),
    }})
    assert set(listed(body, "alpha")) == {alpha, team, encrypted, invited}
    assert set(listed(body, "any_name")) == {alpha, team, beta, encrypted, invited}  # unnamed rooms never match
    assert unnamed not in listed(body, "any_name")
    assert listed(body, "nothing") == []
    assert set(listed(body, "alpha_clear")) == {alpha, team, invited}
    assert listed(body, "alpha_invites") == [invited]
    assert set(listed(body, "alpha_rooms")) == {alpha, team, encrypted, invited}
    # Renaming a room moves it in or out.
    status, _ = await alice.put(f"{V3}/rooms/{beta}/state/m.room.name", {"name": "Beta, formerly alpha"})
    assert status == 200
    body = await sliding(alice, {"lists": {"alpha": room_list(room_name_like="ALPHA")}})
    assert beta in listed(body, "alpha")


async def test_invite_in_a_list_with_stripped_state(alice, bob):
    body = await sliding(alice, {"lists": {"invites": room_list(is_invite=True)}})
    assert body["rooms"] == {}
    room = await create(bob, name="Come in", invite=[ALICE])
    body = await sliding(alice, {"lists": {"invites": room_list(is_invite=True)}}, pos=body["pos"])
    invite = body["rooms"][room]
    assert invite["initial"] is True
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Come in"}, "sender": BOB} \
        in invite["invite_state"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == ALICE for e in invite["invite_state"])
    assert "timeline" not in invite and "required_state" not in invite
    # Joining turns it into a joined room, sent whole.
    await alice.post(f"{V3}/rooms/{room}/join", {})
    body = await sliding(alice, {"lists": {"all": room_list()}}, pos=body["pos"])
    joined = body["rooms"][room]
    assert joined["initial"] is True and joined["name"] == "Come in" and "invite_state" not in joined


async def test_knocks_come_with_stripped_state(alice, bob):
    room = await create(bob, name="Knock first", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    status, knocked = await alice.post(f"{V3}/knock/{room}", {})
    assert status == 200, knocked
    body = await sliding(alice, {"lists": {"all": room_list()}})
    knock = body["rooms"][room]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Knock first"}, "sender": BOB} \
        in knock["invite_state"]
    assert [e["content"]["membership"] for e in knock["invite_state"] if e["state_key"] == ALICE] == ["knock"]


async def test_heroes_for_unnamed_rooms_and_leaving(alice, bob):
    room = await shared_room(alice, bob)
    request = {"lists": {"all": room_list(required_state=[["m.room.member", "$ME"]])}}
    body = await sliding(alice, request)
    assert body["rooms"][room]["heroes"] == [{"user_id": BOB, "displayname": "bob"}]
    assert body["rooms"][room]["joined_count"] == 2
    await alice.post(f"{V3}/rooms/{room}/leave", {})
    body = await sliding(alice, request, pos=body["pos"])
    left = body["rooms"][room]
    assert [(e["state_key"], e["content"]["membership"]) for e in left["required_state"]] == [(ALICE, "leave")]
    assert left["timeline"][-1]["content"]["membership"] == "leave"
    # A room the user left stays listed on this connection, and a new one never lists it.
    body = await sliding(alice, request, pos=body["pos"])
    assert room in listed(body)
    assert room not in listed(await sliding(alice, request))


async def test_kicked_rooms_are_listed_and_the_later_msc_shapes_are_understood(alice, bob):
    room = await shared_room(bob, alice, name="Strict")
    await send(alice, room, "before the kick")
    assert (await bob.post(f"{V3}/rooms/{room}/kick", {"user_id": ALICE}))[0] == 200
    await send(bob, room, "after the kick")
    body = await sliding(alice, {"lists": {"all": {
        "range": [0, 9], "timeline_limit": 5,
        "required_state": {"include": [{"type": "m.room.member"}, {"type": "m.room.name"}],
                           "exclude": [{"state_key": BOB}]}}}})
    kicked = body["rooms"][room]
    assert kicked["initial"] is True and kicked["name"] == "Strict"
    assert bodies(kicked)[-2:] == ["before the kick", None]  # up to the kick, nothing after
    assert kicked["timeline"][-1]["content"]["membership"] == "leave"
    members = {e["state_key"]: e["content"]["membership"] for e in kicked["required_state"]
               if e["type"] == "m.room.member"}
    assert members == {ALICE: "leave"}  # bob's member event is excluded


async def test_unread_counts_come_from_the_push_service(alice, bob, services):
    room = await shared_room(alice, bob)

    async def counts(user_id, room_ids):
        return {r: {"notification_count": 3, "highlight_count": 1, "threads": {}} for r in room_ids}

    services.sync.unread_counts = counts
    body = await sliding(alice, {"lists": {"all": room_list()}})
    assert (body["rooms"][room]["notification_count"], body["rooms"][room]["highlight_count"]) == (3, 1)

    # Reading the room (on any device) changes its counts: the room comes again, counts only.
    async def counts(user_id, room_ids):
        read_upto = await services.receipts.read_upto(user_id, room_ids)
        return {r: {"notification_count": 0 if r in read_upto else 3, "highlight_count": 0, "threads": {}}
                for r in room_ids}

    services.sync.unread_counts = counts
    event_id = await send(bob, room, "unread")
    body = await sliding(alice, {"lists": {"all": room_list()}}, pos=body["pos"])
    assert body["rooms"][room]["notification_count"] == 3
    assert (await alice.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", {}))[0] == 200
    body = await sliding(alice, {"lists": {"all": room_list()}}, pos=body["pos"], timeout=2000)
    assert body["rooms"][room]["notification_count"] == 0 and "timeline" not in body["rooms"][room]


async def test_thread_notifications_count_in_the_room(alice, bob, services):
    # Sliding sync has no per-thread counts: a room's counts include its threads' (as v3 /sync
    # without unread_thread_notifications).
    room = await shared_room(alice, bob)

    async def counts(user_id, room_ids):
        return {r: {"notification_count": 1, "highlight_count": 0,
                    "threads": {"$root": {"notification_count": 2, "highlight_count": 1}}} for r in room_ids}

    services.sync.unread_counts = counts
    body = await sliding(alice, {"lists": {"all": room_list()}})
    assert (body["rooms"][room]["notification_count"], body["rooms"][room]["highlight_count"]) == (3, 1)


# --- subscriptions, timelines, required_state --------------------------------------------------------------

async def test_room_subscription_timeline_limit_and_prev_batch(alice):
    quiet = await create(alice, name="Quiet")
    ids = [await send(alice, quiet, f"m{i}") for i in range(6)]
    await create(alice, name="Busy")
    subscription = {"timeline_limit": 3, "required_state": [["m.room.create", ""]]}
    body = await sliding(alice, {"lists": {"all": room_list(end=0)}, "room_subscriptions": {quiet: subscription}})
    room = body["rooms"][quiet]
    assert [e["event_id"] for e in room["timeline"]] == ids[-3:] and room["limited"] is True
    assert [e["type"] for e in room["required_state"]] == ["m.room.create"]
    status, page = await alice.get(f"{V3}/rooms/{quiet}/messages?dir=b&limit=2&from={room['prev_batch']}")
    assert [e["event_id"] for e in page["chunk"]] == [ids[2], ids[1]]
    # pos works as a /messages token too (like a /sync next_batch).
    status, page = await alice.get(f"{V3}/rooms/{quiet}/messages?dir=b&limit=1&from={body['pos']}")
    assert status == 200 and page["chunk"][0]["event_id"] == ids[-1]
    # Rooms the user has nothing to do with are ignored.
    body = await sliding(alice, {"room_subscriptions": {"!nowhere:test.local": subscription}}, pos=body["pos"])
    assert body["rooms"] == {}


async def test_raising_the_timeline_limit_expands_the_timeline(alice):
    room = await create(alice)
    ids = [await send(alice, room, f"m{i}") for i in range(4)]
    body = await sliding(alice, {"lists": {"all": room_list(timeline_limit=1)}})
    assert [e["event_id"] for e in body["rooms"][room]["timeline"]] == ids[-1:]
    body = await sliding(alice, {"lists": {"all": room_list(timeline_limit=1)}, "room_subscriptions": {
        room: {"timeline_limit": 3, "required_state": []}}}, pos=body["pos"])
    expanded = body["rooms"][room]
    assert [e["event_id"] for e in expanded["timeline"]] == ids[-3:]
    assert expanded["unstable_expanded_timeline"] is True and "initial" not in expanded


async def test_required_state_wildcards_me_and_growing_config(alice, bob):
    room = await shared_room(alice, bob, name="Topics", topic="first")
    request = {"lists": {"all": room_list(required_state=[["m.room.member", "$ME"], ["m.room.topic", "*"]])}}
    body = await sliding(alice, request)
    state = {(e["type"], e["state_key"]) for e in body["rooms"][room]["required_state"]}
    assert state == {("m.room.member", ALICE), ("m.room.topic", "")}
    # A changed entry comes as a delta; other state changes do not.
    await alice.put(f"{V3}/rooms/{room}/state/m.room.topic/", {"topic": "second"})
    await alice.put(f"{V3}/rooms/{room}/state/m.room.name/", {"name": "Renamed"})
    body = await sliding(alice, request, pos=body["pos"])
    delta = body["rooms"][room]
    assert [(e["type"], e["content"]) for e in delta["required_state"]] == [("m.room.topic", {"topic": "second"})]
    assert delta["name"] == "Renamed"
    # Asking for more state sends what now matches, at once.
    request["lists"]["all"]["required_state"] = [["*", "*"]]
    body = await sliding(alice, request, pos=body["pos"])
    grown = {(e["type"], e["state_key"]) for e in body["rooms"][room]["required_state"]}
    assert ("m.room.member", BOB) in grown and ("m.room.create", "") in grown
    assert ("m.room.topic", "") not in grown  # the client has it already


async def test_lazy_members(alice, bob, client):
    carol = client.with_token((await client.register("carol"))["access_token"])
    room = await shared_room(alice, bob)
    await send(bob, room, "from bob")
    lazy = {"lists": {"all": room_list(timeline_limit=1, required_state=[["m.room.member", "$LAZY"]])}}
    body = await sliding(alice, lazy)
    members = [e["state_key"] for e in body["rooms"][room]["required_state"]]
    assert members == [BOB]  # the sender of the timeline only
    await send(bob, room, "bob again")
    body = await sliding(alice, lazy, pos=body["pos"])
    assert "required_state" not in body["rooms"][room]  # bob's member event was sent already
    await carol.post(f"{V3}/rooms/{room}/join", {})
    await send(carol, room, "hello from carol")
    body = await sliding(alice, lazy, pos=body["pos"])
    assert [e["state_key"] for e in body["rooms"][room]["required_state"]] == ["@carol:test.local"]


# --- connections and long-polls ----------------------------------------------------------------------------

async def test_long_poll_wakes_on_a_message_and_waits_out_its_timeout(alice, bob):
    room = await shared_room(alice, bob)
    request = {"lists": {"all": room_list()}}
    pos = (await sliding(bob, request))["pos"]
    started = time.monotonic()
    waiting = asyncio.create_task(sliding(bob, request, pos=pos, timeout=10000))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await send(alice, room, "wake up")
    body = await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 5
    assert bodies(body["rooms"][room]) == ["wake up"]
    started = time.monotonic()
    idle = await sliding(bob, request, pos=body["pos"], timeout=700)
    assert time.monotonic() - started >= 0.65
    assert idle["rooms"] == {} and idle["pos"] != body["pos"]


async def test_unknown_pos_and_connections(alice):
    room = await create(alice)
    request = {"lists": {"all": room_list()}}
    body = await sliding(alice, request)
    for pos in ("s1_2_3_999", "garbage", "s1_2_3"):
        error = await sliding(alice, request, pos=pos, status=400)
        assert error["errcode"] == "M_UNKNOWN_POS"
    # A pos belongs to its conn_id.
    other = await sliding(alice, {**request, "conn_id": "other"})
    assert room in other["rooms"]
    error = await sliding(alice, {**request, "conn_id": "other"}, pos=body["pos"], status=400)
    assert error["errcode"] == "M_UNKNOWN_POS"
    # The same pos may be retried (the client never got the first answer); once the client
    # moves on to a newer pos, the older ones are gone.
    lost = await sliding(alice, request, pos=body["pos"])
    retried = await sliding(alice, request, pos=body["pos"])
    assert lost["rooms"] == retried["rooms"] == {}
    assert (await sliding(alice, request, pos=retried["pos"]))["rooms"] == {}
    for pos in (body["pos"], lost["pos"]):
        error = await sliding(alice, request, pos=pos, status=400)
        assert error["errcode"] == "M_UNKNOWN_POS"


# --- extensions ------------------------------------------------------------------------------------------------

async def test_to_device_delivered_then_acknowledged(alice, bob):
    status, devices = await bob.get(f"{V3}/devices")
    bob_device = devices["devices"][0]["device_id"]
    request = {"extensions": {"to_device": {"enabled": True}}}
    body = await sliding(bob, request)
    assert body["extensions"]["to_device"]["events"] == []
    message = {"messages": {BOB: {bob_device: {"secret": 1}}}}
    assert (await alice.put(f"{V3}/sendToDevice/m.test/txn1", message))[0] == 200
    body = await sliding(bob, request, pos=body["pos"])
    to_device = body["extensions"]["to_device"]
    assert to_device["events"] == [{"type": "m.test", "sender": ALICE, "content": {"secret": 1}}]
    # Not acknowledged: sent again; acknowledged with `since`: gone.
    again = await sliding(bob, request, pos=body["pos"])
    assert again["extensions"]["to_device"]["events"] == to_device["events"]
    request["extensions"]["to_device"]["since"] = to_device["next_batch"]
    acked = await sliding(bob, request, pos=again["pos"])
    assert acked["extensions"]["to_device"]["events"] == []


async def test_e2ee_device_lists_after_a_room_mate_deletes_a_device(alice, bob, client):
    await shared_room(alice, bob)
    request = {"extensions": {"e2ee": {"enabled": True}}}
    body = await sliding(alice, request)
    assert body["extensions"]["e2ee"]["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert "device_lists" not in body["extensions"]["e2ee"]
    login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "s3cret-pass"}
    device = (await client.post(f"{V3}/login", login))[1]["device_id"]
    status, deleted = await bob.delete(f"{V3}/devices/{device}", {"auth": login})
    assert status == 200, deleted
    body = await sliding(alice, request, pos=body["pos"], timeout=2000)
    assert BOB in body["extensions"]["e2ee"]["device_lists"]["changed"]


async def test_account_data_global_and_per_room(alice):
    room = await create(alice)
    other = await create(alice)
    await alice.put(f"{V3}/user/{ALICE}/account_data/org.example.cfg", {"theme": "dark"})
    await alice.put(f"{V3}/user/{ALICE}/rooms/{room}/account_data/org.example.r", {"n": 1})
    request = {"lists": {"all": room_list()}, "extensions": {"account_data": {"enabled": True, "rooms": []}}}
    body = await sliding(alice, request)
    account_data = body["extensions"]["account_data"]
    assert {"type": "org.example.cfg", "content": {"theme": "dark"}} in account_data["global"]
    assert account_data["rooms"] == {room: [{"type": "org.example.r", "content": {"n": 1}}]}
    await alice.put(f"{V3}/user/{ALICE}/rooms/{other}/account_data/org.example.r", {"n": 2})
    body = await sliding(alice, request, pos=body["pos"], timeout=2000)
    assert body["extensions"]["account_data"] == {
        "global": [], "rooms": {other: [{"type": "org.example.r", "content": {"n": 2}}]}}
    # Scoped to no list and no room: room account data is not sent (global still is).
    request["extensions"]["account_data"]["lists"] = []
    await alice.put(f"{V3}/user/{ALICE}/rooms/{other}/account_data/org.example.r", {"n": 3})
    await alice.put(f"{V3}/user/{ALICE}/account_data/org.example.cfg", {"theme": "light"})
    body = await sliding(alice, request, pos=body["pos"])
    assert body["extensions"]["account_data"] == {
        "global": [{"type": "org.example.cfg", "content": {"theme": "light"}}], "rooms": {}}


async def test_receipts_and_typing(alice, bob):
    room = await shared_room(alice, bob)
    event_id = await send(alice, room, "read me")
    request = {"lists": {"all": room_list()},
               "extensions": {"receipts": {"enabled": True}, "typing": {"enabled": True}}}
    body = await sliding(alice, request)
    assert body["extensions"]["receipts"]["rooms"] == {} and body["extensions"]["typing"]["rooms"] == {}
    waiting = asyncio.create_task(sliding(alice, request, pos=body["pos"], timeout=5000))
    await asyncio.sleep(0.1)
    assert (await bob.post(f"{V3}/rooms/{room}/receipt/m.read/{event_id}", {}))[0] == 200
    body = await asyncio.wait_for(waiting, 5)
    receipt = body["extensions"]["receipts"]["rooms"][room]
    assert receipt["type"] == "m.receipt" and BOB in receipt["content"][event_id]["m.read"]
    await bob.put(f"{V3}/rooms/{room}/typing/{BOB}", {"typing": True, "timeout": 10000})
    body = await sliding(alice, request, pos=body["pos"], timeout=2000)
    assert body["extensions"]["typing"]["rooms"][room] == {"type": "m.typing", "content": {"user_ids": [BOB]}}
    assert body["extensions"]["receipts"]["rooms"] == {}
    # Scoped to another list: nothing for this room.
    request["extensions"]["typing"] = {"enabled": True, "lists": ["elsewhere"], "rooms": []}
    await bob.put(f"{V3}/rooms/{room}/typing/{BOB}", {"typing": False})
    body = await sliding(alice, request, pos=body["pos"])
    assert body["extensions"]["typing"]["rooms"] == {}


# --- bad input ------------------------------------------------------------------------------------------------

async def test_bad_input_is_a_matrix_error(alice):
    status, body = await alice.post(SSS, raw=b"[1]")
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await alice.post(SSS, raw=b"{not json")
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    bad_bodies = [
        ({"lists": []}, "M_BAD_JSON"),
        ({"lists": {"a": {"ranges": [[0, 1]], "timeline_limit": "1", "required_state": []}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"ranges": [[0, 1]], "required_state": []}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"ranges": [[0, 1]], "timeline_limit": 1, "required_state": [["a"]]}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"ranges": [[5, 1]], "timeline_limit": 1, "required_state": []}}}, "M_INVALID_PARAM"),
        ({"lists": {"a": {"ranges": [[-1, 1]], "timeline_limit": 1, "required_state": []}}}, "M_INVALID_PARAM"),
        ({"lists": {"a": {"ranges": "all", "timeline_limit": 1, "required_state": []}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"timeline_limit": 1, "required_state": [], "filters": {"is_dm": "yes"}}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"timeline_limit": 1, "required_state": [], "filters": {"spaces": "!s:x"}}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"timeline_limit": 1, "required_state": [], "filters": {"tags": [1]}}}}, "M_BAD_JSON"),
        ({"lists": {"a": {"timeline_limit": 1, "required_state": [], "filters": {"not_tags": [None]}}}},
         "M_BAD_JSON"),
        ({"lists": {"a": {"timeline_limit": 1, "required_state": [], "filters": {"room_name_like": 5}}}},
         "M_BAD_JSON"),
        ({"lists": {"x" * 65: {"timeline_limit": 1, "required_state": []}}}, "M_INVALID_PARAM"),
        ({"room_subscriptions": {"not-a-room": {"timeline_limit": 1, "required_state": []}}}, "M_INVALID_PARAM"),
        ({"room_subscriptions": {f"!r{i}:test.local": {"timeline_limit": 1, "required_state": []}
                                 for i in range(101)}}, "M_INVALID_PARAM"),
        ({"extensions": {"to_device": {"enabled": True, "since": "abc"}}}, "M_INVALID_PARAM"),
        ({"extensions": {"receipts": {"enabled": True, "lists": "all"}}}, "M_BAD_JSON"),
        ({"extensions": {"typing": {"enabled": "yes"}}}, "M_BAD_JSON"),
        ({"conn_id": 5}, "M_BAD_JSON"),
    ]
    for bad, errcode in bad_bodies:
        status, body = await alice.post(SSS, bad)
        assert (status, body.get("errcode")) == (400, errcode), bad
    status, body = await alice.post(f"{SSS}?timeout=-1", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.post(f"{SSS}?timeout=soon", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.post(f"{SSS}?set_presence=dancing", {})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await alice.post(SSS, {}, token="nope")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # Unknown extensions and unknown filters are ignored; an empty body is an empty sync.
    status, body = await alice.post(SSS, {"extensions": {"org.example.x": {"enabled": True}}})
    assert status == 200 and body["extensions"] == {}
    status, body = await alice.post(SSS)
    assert status == 200 and body["rooms"] == {} and "pos" in body
