"""The admin rooms API (Synapse's rooms.md and room_membership.md) through real HTTP, as an admin
tool calls it: the room list, details, members, state, messages, context, blocking, forward
extremities, make_room_admin and joining a user to a room."""

import json
from urllib.parse import quote

import pytest

from homeserver.errors import MatrixError
from tests.api.admin.rooms_helpers import ADMIN_V1, ADMIN_V2, V3, create_room, join, q, send_text

ROOMS = f"{ADMIN_V1}/rooms"


@pytest.fixture
async def charlie(client):
    return client.with_token((await client.register("charlie"))["access_token"])


async def listing(admin, query: str = "") -> dict:
    status, body = await admin.get(f"{ROOMS}?{query}")
    assert status == 200, body
    return body


async def test_the_room_endpoints_need_a_server_admin(client, alice):
    room = await create_room(alice)
    calls = [("GET", ROOMS), ("GET", f"{ROOMS}/{q(room)}"), ("GET", f"{ROOMS}/{q(room)}/members"),
             ("PUT", f"{ROOMS}/{q(room)}/block"), ("DELETE", f"{ADMIN_V2}/rooms/{q(room)}"),
             ("POST", f"{ADMIN_V1}/purge_history/{q(room)}"), ("POST", f"{ADMIN_V1}/join/{q(room)}")]
    for method, path in calls:
        status, body = await alice.request(method, path, {})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", (path, body)
        status, body = await client.request(method, path, {})
        assert status == 401 and body["errcode"] == "M_MISSING_TOKEN", (path, body)


async def test_the_room_list_shows_each_room_as_synapse_does(admin, alice, bob):
    space = await create_room(alice, name="Space", creation_content={"type": "m.space"}, preset="public_chat",
                              room_alias_name="the-space", visibility="public")
    secret = await create_room(alice, name="Secret", room_version="10", topic="t", initial_state=[
        {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        creation_content={"m.federate": False})
    await join(bob, space)

    body = await listing(admin)
    assert body["total_rooms"] == 2 and body["offset"] == 0 and "next_batch" not in body
    rooms = {r["room_id"]: r for r in body["rooms"]}
    assert rooms[space] == {
        "room_id": space, "name": "Space", "canonical_alias": "#the-space:test.local", "joined_members": 2,
        "joined_local_members": 2, "version": "12", "creator": "@alice:test.local", "encryption": None,
        "federatable": True, "public": True, "join_rules": "public", "guest_access": None,
        "history_visibility": "shared", "state_events": 8, "room_type": "m.space"}
    assert rooms[secret]["encryption"] == "m.megolm.v1.aes-sha2" and rooms[secret]["federatable"] is False
    assert rooms[secret]["version"] == "10" and rooms[secret]["public"] is False
    assert rooms[secret]["join_rules"] == "invite" and rooms[secret]["guest_access"] == "can_join"
    assert rooms[secret]["joined_members"] == 1 and rooms[secret]["room_type"] is None


async def test_the_room_list_sorts_searches_filters_and_pages(admin, alice, bob, charlie):
    names = ["Delta", "alpha", "Charlie", "bravo"]
    rooms = {name: await create_room(alice, name=name, preset="public_chat") for name in names}
    for member in (bob, charlie):
        await join(member, rooms["Charlie"])
    await join(bob, rooms["bravo"])
    unnamed = await create_room(bob)
    status, _ = await bob.post(f"{V3}/rooms/{q(unnamed)}/leave", {})
    assert status == 200
    status, _ = await admin.put(f"{V3}/directory/list/room/{q(rooms['alpha'])}", {"visibility": "public"})
    assert status == 200

    # Names sort as Synapse's do (byte order, rooms without a name last); `dir=b` reverses.
    by_name = [r["name"] for r in (await listing(admin))["rooms"]]
    assert by_name == ["Charlie", "Delta", "alpha", "bravo", None]
    assert [r["name"] for r in (await listing(admin, "dir=b"))["rooms"]] == [None, "bravo", "alpha", "Delta", "Charlie"]
    members = [(r["name"], r["joined_members"]) for r in (await listing(admin, "order_by=joined_members"))["rooms"]]
    assert [m for _, m in members] == [3, 2, 1, 1, 0] and members[0] == ("Charlie", 3)
    assert [r["joined_members"] for r in (await listing(admin, "order_by=size&dir=b"))["rooms"]] == [0, 1, 1, 2, 3]
    state_events = [r["state_events"] for r in (await listing(admin, "order_by=state_events"))["rooms"]]
    assert state_events == sorted(state_events, reverse=True)

    page = await listing(admin, "limit=2")
    assert [r["name"] for r in page["rooms"]] == ["Charlie", "Delta"]
    assert page["next_batch"] == 2 and page["total_rooms"] == 5 and "prev_batch" not in page
    page = await listing(admin, f"limit=2&from={page['next_batch']}")
    assert [r["name"] for r in page["rooms"]] == ["alpha", "bravo"] and page["prev_batch"] == 0
    last = await listing(admin, "limit=2&from=4")
    assert [r["name"] for r in last["rooms"]] == [None] and "next_batch" not in last and last["prev_batch"] == 2
    assert (await listing(admin, "from=50"))["rooms"] == [] and (await listing(admin, "from=50"))["total_rooms"] == 5

    assert [r["room_id"] for r in (await listing(admin, "search_term=ALP"))["rooms"]] == [rooms["alpha"]]
    assert [r["room_id"] for r in (await listing(admin, f"search_term={quote(unnamed)}"))["rooms"]] == [unnamed]
    searched = await listing(admin, "search_term=zzz")
    assert searched["rooms"] == [] and searched["total_rooms"] == 0
    assert [r["room_id"] for r in (await listing(admin, "public_rooms=true"))["rooms"]] == [rooms["alpha"]]
    assert (await listing(admin, "public_rooms=false"))["total_rooms"] == 4
    assert [r["room_id"] for r in (await listing(admin, "empty_rooms=true"))["rooms"]] == [unnamed]
    assert (await listing(admin, "empty_rooms=false&search_term=a"))["total_rooms"] == 4


async def test_the_room_list_searches_the_local_part_of_the_canonical_alias(admin, alice):
    room = await create_room(alice, room_alias_name="kitchen-sink")
    await create_room(alice, name="test.local")
    assert [r["room_id"] for r in (await listing(admin, "search_term=sink"))["rooms"]] == [room]
    assert [r["name"] for r in (await listing(admin, "search_term=test.local"))["rooms"]] == ["test.local"]


async def test_bad_room_list_parameters_get_matrix_errors(admin):
    for query in ("order_by=bogus", "dir=x", "from=-1", "limit=-5", "limit=abc", "from=99999999999999",
                  "search_term=", "public_rooms=maybe", "empty_rooms=1"):
        status, body = await admin.get(f"{ROOMS}?{query}")
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM", (query, body)


async def test_room_figures_follow_the_state_as_it_changes(admin, alice, bob, db):
    """room_stats, kept by the event pipeline, always equals what current_state says."""
    room = await create_room(alice, name="One", preset="public_chat")
    await join(bob, room)
    await alice.put(f"{V3}/rooms/{q(room)}/state/m.room.name/", {"name": "Two"})
    await alice.put(f"{V3}/rooms/{q(room)}/state/m.room.topic/", {"topic": "Things"})
    await alice.post(f"{V3}/rooms/{q(room)}/invite", {"user_id": "@remote:elsewhere.example"})
    await alice.post(f"{V3}/rooms/{q(room)}/ban", {"user_id": "@bob:test.local"})
    status, details = await admin.get(f"{ROOMS}/{q(room)}")
    assert status == 200, details
    assert (details["name"], details["topic"], details["joined_members"], details["joined_local_members"]) == \
        ("Two", "Things", 1, 1)
    await alice.put(f"{V3}/rooms/{q(room)}/state/m.room.name/", {})
    rows = await db.fetch("""SELECT s.room_id, s.state_events, s.joined_members, s.joined_local_members,
                                    s.state->>'name' AS name,
                                    (SELECT count(*) FROM current_state c WHERE c.room_id = s.room_id) AS expected_state,
                                    (SELECT count(*) FROM current_state c WHERE c.room_id = s.room_id
                                       AND c.type = 'm.room.member' AND c.membership = 'join') AS expected_joined
                             FROM room_stats s""")
    assert len(rows) == 1
    row = rows[0]
    assert row["state_events"] == row["expected_state"] == 8 and row["joined_members"] == row["expected_joined"] == 1
    assert row["name"] is None  # an emptied name is no name


async def test_room_details_members_and_state(admin, alice, bob):
    room = await create_room(alice, name="Lounge", topic="Chat", preset="public_chat", room_alias_name="lounge",
                             initial_state=[{"type": "m.room.avatar", "content": {"url": "mxc://test.local/abc"}}])
    await join(bob, room)
    status, details = await admin.get(f"{ROOMS}/{q(room)}")
    assert status == 200, details
    assert {k: details[k] for k in ("name", "topic", "avatar", "canonical_alias", "joined_members",
                                    "joined_local_members", "joined_local_devices", "forgotten", "tombstoned",
                                    "replacement_room", "public", "creator")} == {
        "name": "Lounge", "topic": "Chat", "avatar": "mxc://test.local/abc", "canonical_alias": "#lounge:test.local",
        "joined_members": 2, "joined_local_members": 2, "joined_local_devices": 2, "forgotten": False,
        "tombstoned": False, "replacement_room": None, "public": False, "creator": "@alice:test.local"}

    status, members = await admin.get(f"{ROOMS}/{q(room)}/members")
    assert status == 200 and members == {"members": ["@alice:test.local", "@bob:test.local"], "total": 2}
    status, state = await admin.get(f"{ROOMS}/{q(room)}/state")
    assert status == 200
    assert {(e["type"], e["state_key"]) for e in state["state"]} >= {
        ("m.room.create", ""), ("m.room.name", ""), ("m.room.member", "@bob:test.local")}
    status, names = await admin.get(f"{ROOMS}/{q(room)}/state?type=m.room.member")
    assert {e["state_key"] for e in names["state"]} == {"@alice:test.local", "@bob:test.local"}

    # Everyone leaves and forgets the room: it is forgotten.
    for user in (alice, bob):
        assert (await user.post(f"{V3}/rooms/{q(room)}/leave", {}))[0] == 200
        assert (await user.post(f"{V3}/rooms/{q(room)}/forget", {}))[0] == 200
    status, details = await admin.get(f"{ROOMS}/{q(room)}")
    assert details["forgotten"] is True and details["joined_members"] == 0

    for path in (f"{ROOMS}/{q('!nope:test.local')}", f"{ROOMS}/{q('!nope:test.local')}/members",
                 f"{ROOMS}/{q('!nope:test.local')}/state", f"{ROOMS}/not-a-room"):
        status, body = await admin.get(path)
        assert status == 404 and body["errcode"] == "M_NOT_FOUND", (path, body)


async def test_a_tombstoned_room_names_its_replacement(admin, alice):
    room = await create_room(alice, room_version="11")
    status, upgraded = await alice.post(f"{V3}/rooms/{q(room)}/upgrade", {"new_version": "12"})
    assert status == 200, upgraded
    status, details = await admin.get(f"{ROOMS}/{q(room)}")
    assert details["tombstoned"] is True and details["replacement_room"] == upgraded["replacement_room"]


async def test_an_admin_reads_messages_and_context_of_a_room_they_are_not_in(admin, alice):
    room = await create_room(alice, preset="private_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    sent = [await send_text(alice, room, f"m{n}") for n in range(5)]

    status, page = await admin.get(f"{ROOMS}/{q(room)}/messages?dir=b&limit=3")
    assert status == 200, page
    assert [e["content"].get("body") for e in page["chunk"]] == ["m4", "m3", "m2"] and "end" in page
    status, rest = await admin.get(f"{ROOMS}/{q(room)}/messages?dir=b&limit=3&from={page['end']}")
    assert [e["content"].get("body") for e in rest["chunk"]][:2] == ["m1", "m0"]
    messages_only = quote(json.dumps({"types": ["m.room.message"]}))
    status, forward = await admin.get(f"{ROOMS}/{q(room)}/messages?filter={messages_only}")
    assert [e["event_id"] for e in forward["chunk"]] == sent  # dir defaults to f, as Synapse
    status, body = await admin.get(f"{ROOMS}/{q(room)}/messages?filter=nope")
    assert status == 400 and body["errcode"] == "M_NOT_JSON"

    status, context = await admin.get(f"{ROOMS}/{q(room)}/context/{q(sent[2])}?limit=2")
    assert status == 200, context
    assert context["event"]["event_id"] == sent[2]
    assert [e["event_id"] for e in context["events_before"]] == [sent[1]]
    assert [e["event_id"] for e in context["events_after"]] == [sent[3]]
    assert {e["type"] for e in context["state"]} >= {"m.room.create", "m.room.member"}
    status, body = await admin.get(f"{ROOMS}/{q(room)}/context/{q('$missing')}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    # The same reads as a client outside the room are refused.
    status, _ = await admin.get(f"{V3}/rooms/{q(room)}/messages")
    assert status == 403


async def test_a_blocked_room_cannot_be_joined_invited_to_or_knocked_on(admin, alice, bob, services):
    room = await create_room(alice, preset="public_chat")
    path = f"{ROOMS}/{q(room)}/block"
    assert await admin.get(path) == (200, {"block": False})
    assert await admin.put(path, {"block": True}) == (200, {"block": True})
    assert await admin.get(path) == (200, {"block": True, "user_id": "@admin:test.local"})

    status, body = await bob.post(f"{V3}/join/{q(room)}", {})
    assert status == 403 and body == {"errcode": "M_FORBIDDEN", "error": "This room has been blocked on this server"}
    status, body = await alice.post(f"{V3}/rooms/{q(room)}/invite", {"user_id": "@bob:test.local"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await bob.post(f"{V3}/knock/{q(room)}", {})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"

    assert await admin.put(path, {"block": False}) == (200, {"block": False})
    assert (await bob.post(f"{V3}/join/{q(room)}", {}))[0] == 200
    # Leaving a blocked room is always possible.
    assert await admin.put(path, {"block": True}) == (200, {"block": True})
    assert (await bob.post(f"{V3}/rooms/{q(room)}/leave", {}))[0] == 200
    entries = (await admin.get(f"{ADMIN_V1}/audit_log?target={q(room)}"))[1]["entries"]
    assert [e["action"] for e in entries] == ["room.block", "room.unblock", "room.block"]

    # A room not known here yet may be blocked too, and then cannot be created here.
    future = "!future:test.local"
    assert await admin.put(f"{ROOMS}/{q(future)}/block", {"block": True}) == (200, {"block": True})
    with pytest.raises(MatrixError) as refused:
        await services.rooms.create_room("@alice:test.local", {"room_version": "11"}, room_id=future)
    assert refused.value.status == 403 and refused.value.message == "This room has been blocked on this server"


async def test_bad_block_requests_get_matrix_errors(admin, alice):
    room = await create_room(alice)
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"block": "yes"}, "M_BAD_JSON")):
        status, answer = await admin.put(f"{ROOMS}/{q(room)}/block", body)
        assert status == 400 and answer["errcode"] == errcode, answer
    status, answer = await admin.put(f"{ROOMS}/not-a-room/block", {"block": True})
    assert status == 400 and answer["errcode"] == "M_INVALID_PARAM"
    status, answer = await admin.request("PUT", f"{ROOMS}/{q(room)}/block", raw=b"not json")
    assert status == 400 and answer["errcode"] == "M_NOT_JSON"


async def test_forward_extremities_are_listed_and_cut_to_the_newest(admin, alice, db):
    room = await create_room(alice, room_alias_name="forked")
    first = await send_text(alice, room, "one")
    newest = await send_text(alice, room, "two")
    path = f"{ROOMS}/{q('#forked:test.local')}/forward_extremities"
    status, body = await admin.get(path)
    assert status == 200 and body["count"] == 1 and body["results"][0]["event_id"] == newest
    assert set(body["results"][0]) == {"event_id", "state_group", "depth", "received_ts"}

    # A fork, as federation can leave one: the older event is an extremity again.
    await db.execute("INSERT INTO forward_extremities (room_id, event_id) VALUES ($1, $2)", room, first)
    assert (await admin.get(path))[1]["count"] == 2
    assert await admin.delete(path) == (200, {"deleted": 1})
    status, body = await admin.get(f"{ROOMS}/{q(room)}/forward_extremities")
    assert [r["event_id"] for r in body["results"]] == [newest]
    # The room goes on from what is left.
    after = await send_text(alice, room, "three")
    assert (await admin.get(path))[1]["results"][0]["event_id"] == after
    status, body = await admin.get(f"{ROOMS}/{q('!nope:test.local')}/forward_extremities")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("version", ["10", "12"])
async def test_make_room_admin_grants_the_top_local_power_and_invites(admin, alice, bob, version):
    room = await create_room(alice, preset="private_chat", room_version=version)
    status, body = await admin.post(f"{ROOMS}/{q(room)}/make_room_admin", {})
    assert (status, body) == (200, {})
    status, levels = await alice.get(f"{V3}/rooms/{q(room)}/state/m.room.power_levels/")
    assert levels["users"]["@admin:test.local"] == 100
    # Not in the private room: invited, and can join and then act as its admin.
    assert (await admin.post(f"{V3}/join/{q(room)}", {}))[0] == 200
    status, _ = await admin.put(f"{V3}/rooms/{q(room)}/state/m.room.name/", {"name": "Taken over"})
    assert status == 200

    status, body = await admin.post(f"{ROOMS}/{q(room)}/make_room_admin", {"user_id": "@bob:test.local"})
    assert status == 200, body
    status, levels = await alice.get(f"{V3}/rooms/{q(room)}/state/m.room.power_levels/")
    assert levels["users"]["@bob:test.local"] == 100
    status, members = await alice.get(f"{V3}/rooms/{q(room)}/members?membership=invite")
    assert [m["state_key"] for m in members["chunk"]] == ["@bob:test.local"]
    entries = (await admin.get(f"{ADMIN_V1}/audit_log?action=room.make_room_admin"))[1]["entries"]
    assert [e["details"]["user_id"] for e in entries] == ["@bob:test.local", "@admin:test.local"]


async def test_make_room_admin_refuses_what_it_cannot_do(admin, alice):
    room = await create_room(alice, preset="public_chat")
    assert (await alice.post(f"{V3}/rooms/{q(room)}/leave", {}))[0] == 200
    status, body = await admin.post(f"{ROOMS}/{q(room)}/make_room_admin", {})
    assert status == 400 and body["error"] == "No local admin user in room"
    for target, expected in (("!nope:test.local", 400), ("#nope:test.local", 404), ("nonsense", 400)):
        status, body = await admin.post(f"{ROOMS}/{q(target)}/make_room_admin", {})
        assert status == expected and "errcode" in body, (target, body)
    status, body = await admin.post(f"{ROOMS}/{q(room)}/make_room_admin", {"user_id": "bob"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"


async def test_an_admin_joins_a_local_user_to_a_room(admin, alice, bob, charlie):
    public = await create_room(alice, preset="public_chat", room_alias_name="open")
    status, body = await admin.post(f"{ADMIN_V1}/join/{q('#open:test.local')}", {"user_id": "@bob:test.local"})
    assert (status, body) == (200, {"room_id": public})
    assert public in (await bob.get(f"{V3}/joined_rooms"))[1]["joined_rooms"]

    # A private room: the admin invites first, so they must be in it with the power to.
    private = await create_room(alice, preset="private_chat")
    status, body = await admin.post(f"{ADMIN_V1}/join/{q(private)}", {"user_id": "@charlie:test.local"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    mine = await create_room(admin, preset="private_chat")
    status, body = await admin.post(f"{ADMIN_V1}/join/{q(mine)}", {"user_id": "@charlie:test.local"})
    assert (status, body) == (200, {"room_id": mine})
    assert mine in (await charlie.get(f"{V3}/joined_rooms"))[1]["joined_rooms"]

    for body, status_, errcode in (({}, 400, "M_MISSING_PARAM"), ({"user_id": 5}, 400, "M_INVALID_PARAM"),
                                   ({"user_id": "@bob:elsewhere.example"}, 400, "M_INVALID_PARAM"),
                                   ({"user_id": "@ghost:test.local"}, 404, "M_NOT_FOUND")):
        status, answer = await admin.post(f"{ADMIN_V1}/join/{q(public)}", body)
        assert status == status_ and answer["errcode"] == errcode, (body, answer)
    status, answer = await admin.post(f"{ADMIN_V1}/join/nonsense", {"user_id": "@bob:test.local"})
    assert status == 400 and answer["errcode"] == "M_INVALID_PARAM"
    entries = (await admin.get(f"{ADMIN_V1}/audit_log?action=room.join_user"))[1]["entries"]
    assert [(e["target"], e["details"]["user_id"]) for e in entries] == [
        (mine, "@charlie:test.local"), (public, "@bob:test.local")]


async def test_other_servers_invites_into_a_blocked_room_are_refused(admin, services):
    blocked = "!bad:elsewhere.example"
    assert await admin.put(f"{ROOMS}/{q(blocked)}/block", {"block": True}) == (200, {"block": True})
    with pytest.raises(MatrixError) as refused:
        await services.federation_membership.on_invite("elsewhere.example", blocked, "$invite", {"event": {}})
    assert refused.value.status == 403 and refused.value.message == "This room has been blocked on this server"


async def test_null_characters_in_paths_and_queries_are_matrix_errors(admin, alice):
    """PostgreSQL cannot store NUL: refused up front, for the admin API as for the client API."""
    room = await create_room(alice)
    for method, path in (("GET", f"{ROOMS}?search_term=%00"), ("GET", f"{ROOMS}/%21a%00b%3Atest.local"),
                         ("GET", f"{ROOMS}/{q(room)}/state?type=%00"), ("PUT", f"{ROOMS}/%21a%00%3Ax/block"),
                         ("GET", f"{ADMIN_V2}/rooms/delete_status/%00"), ("DELETE", f"{ADMIN_V2}/rooms/%21a%00%3Ax"),
                         ("POST", f"{ADMIN_V1}/purge_history/%21a%00%3Ax/%24x"), ("POST", f"{ADMIN_V1}/join/%23a%00%3Ax"),
                         ("GET", f"{V3}/rooms/%21a%00b%3Atest.local/state")):
        status, body = await admin.request(method, path, {"block": True, "user_id": "@alice:test.local"})
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM", (path, body)
