"""POST /search (PostgreSQL full-text) and POST /user_directory/search."""

import uuid

import pytest

V3 = "/_matrix/client/v3"


async def send(c, room, body):
    status, resp = await c.put(f"{V3}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": body})
    assert status == 200
    return resp["event_id"]


def query(term, **criteria):
    return {"search_categories": {"room_events": {"search_term": term, **criteria}}}


async def test_search_messages(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "name": "Gardening club"})
    room = room["room_id"]
    await bob.post(f"{V3}/rooms/{room}/join", {})
    tomato = await send(alice, room, "The tomatoes are ripe today")
    await send(bob, room, "I prefer cucumbers")
    later = await send(bob, room, "tomatoes tomatoes everywhere")
    status, body = await bob.post(f"{V3}/search", query("tomatoes"))
    assert status == 200, body
    events = body["search_categories"]["room_events"]
    assert events["count"] == 2
    assert {r["result"]["event_id"] for r in events["results"]} == {tomato, later}
    assert events["results"][0]["result"]["event_id"] == later  # the higher rank first
    assert events["highlights"] == ["tomatoes"]
    status, body = await bob.post(f"{V3}/search", query("tomatoes", order_by="recent", filter={"limit": 1},
                                                         event_context={"before_limit": 1, "after_limit": 1}))
    events = body["search_categories"]["room_events"]
    assert [r["result"]["event_id"] for r in events["results"]] == [later]
    assert events["next_batch"]
    assert len(events["results"][0]["context"]["events_before"]) == 1
    status, body2 = await bob.post(f"{V3}/search?next_batch={events['next_batch']}",
                                   query("tomatoes", order_by="recent", filter={"limit": 1}))
    assert [r["result"]["event_id"] for r in body2["search_categories"]["room_events"]["results"]] == [tomato]
    status, names = await bob.post(f"{V3}/search", query("gardening", keys=["content.name"]))
    assert names["search_categories"]["room_events"]["count"] == 1
    status, none = await bob.post(f"{V3}/search", query("gardening", keys=["content.body"]))
    assert none["search_categories"]["room_events"]["count"] == 0
    status, by_sender = await bob.post(f"{V3}/search", query("tomatoes", filter={"senders": ["@alice:test.local"]}))
    assert [r["result"]["event_id"] for r in by_sender["search_categories"]["room_events"]["results"]] == [tomato]


async def test_search_only_covers_rooms_the_user_is_in_and_skips_redactions(alice, bob):
    status, private = await alice.post(f"{V3}/createRoom", {})
    secret = await send(alice, private["room_id"], "secret pineapple plans")
    status, body = await bob.post(f"{V3}/search", query("pineapple"))
    assert body["search_categories"]["room_events"]["count"] == 0
    status, body = await alice.post(f"{V3}/search", query("pineapple"))
    assert body["search_categories"]["room_events"]["count"] == 1
    await alice.put(f"{V3}/rooms/{private['room_id']}/redact/{secret}/r1", {})
    status, body = await alice.post(f"{V3}/search", query("pineapple"))
    assert body["search_categories"]["room_events"]["count"] == 0


@pytest.mark.parametrize("body", [
    {}, {"search_categories": []}, query(""), query("x", keys=["content.nope"]), query("x", order_by="best"),
    query("x", filter={"limit": 0}), query("x", filter={"senders": "x"}),
])
async def test_search_bad_input(alice, body):
    status, resp = await alice.post(f"{V3}/search", body)
    assert status == 400 and resp["errcode"] == "M_BAD_JSON"


async def test_user_directory(client, alice, bob):
    carol = client.with_token((await client.register("carol"))["access_token"])
    await client.register("dave")  # shares no room with anyone
    await alice.put(f"{V3}/profile/@alice:test.local/displayname", {"displayname": "Alice Wonder"})
    status, shared = await alice.post(f"{V3}/createRoom", {"invite": ["@bob:test.local"]})
    await bob.post(f"{V3}/rooms/{shared['room_id']}/join", {})
    status, public = await carol.post(f"{V3}/createRoom", {"preset": "public_chat"})
    status, body = await bob.post(f"{V3}/user_directory/search", {"search_term": "wonder"})
    assert status == 200
    assert body == {"results": [{"user_id": "@alice:test.local", "display_name": "Alice Wonder"}], "limited": False}
    status, body = await bob.post(f"{V3}/user_directory/search", {"search_term": "carol"})
    assert [r["user_id"] for r in body["results"]] == ["@carol:test.local"]  # in a public room
    status, body = await bob.post(f"{V3}/user_directory/search", {"search_term": "dave"})
    assert body["results"] == []
    status, body = await bob.post(f"{V3}/user_directory/search", {"search_term": "test.local", "limit": 1})
    assert len(body["results"]) == 1 and body["limited"] is True
    status, body = await bob.post(f"{V3}/user_directory/search", {"search_term": 5})
    assert status == 400
    # Bob, in no public room, does not find himself (as Synapse); Carol, in one, does.
    status, body = await bob.post(f"{V3}/user_directory/search", {"search_term": "bob"})
    assert body["results"] == []
    status, body = await carol.post(f"{V3}/user_directory/search", {"search_term": "carol"})
    assert [r["user_id"] for r in body["results"]] == ["@carol:test.local"]
    # A room with world-readable history counts as public.
    status, readable = await alice.post(f"{V3}/createRoom", {"initial_state": [
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "world_readable"}}]})
    status, body = await carol.post(f"{V3}/user_directory/search", {"search_term": "wonder"})
    assert [r["user_id"] for r in body["results"]] == ["@alice:test.local"]
