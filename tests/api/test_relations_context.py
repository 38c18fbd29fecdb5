"""Relations (edits, reactions, threads, references), bundled aggregations, /context, /timestamp_to_event."""

import uuid

import pytest

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


@pytest.fixture
async def room(alice, bob):
    status, body = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    await bob.post(f"{V3}/rooms/{body['room_id']}/join", {})
    return body["room_id"]


async def send(c, room, content, event_type="m.room.message"):
    status, body = await c.put(f"{V3}/rooms/{room}/send/{event_type}/{uuid.uuid4().hex}", content)
    assert status == 200, body
    return body["event_id"]


def text(body, **extra):
    return {"msgtype": "m.text", "body": body, **extra}


async def test_edits_and_reactions_end_to_end(alice, bob, room):
    original = await send(alice, room, text("helo"))
    edit1 = await send(alice, room, text("* hello", **{"m.new_content": text("hello"),
                                                       "m.relates_to": {"rel_type": "m.replace", "event_id": original}}))
    edit2 = await send(alice, room, text("* hello!", **{"m.new_content": text("hello!"),
                                                        "m.relates_to": {"rel_type": "m.replace", "event_id": original}}))
    # Bob's "edit" of Alice's message is not an edit (only the original sender's count).
    await send(bob, room, text("* hacked", **{"m.new_content": text("hacked"),
                                              "m.relates_to": {"rel_type": "m.replace", "event_id": original}}))
    like = await send(bob, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "👍"}},
                      "m.reaction")
    status, event = await bob.get(f"{V3}/rooms/{room}/event/{original}")
    replace = event["unsigned"]["m.relations"]["m.replace"]
    assert replace["event_id"] == edit2 and replace["content"]["m.new_content"] == text("hello!")
    assert event["content"] == text("helo")  # the original content is left as it was
    # /relations lists every child, newest first; filters by type and event type.
    status, rel = await bob.get(f"{V1}/rooms/{room}/relations/{original}")
    assert status == 200 and len(rel["chunk"]) == 4
    status, rel = await bob.get(f"{V1}/rooms/{room}/relations/{original}/m.annotation")
    assert [e["event_id"] for e in rel["chunk"]] == [like]
    status, rel = await bob.get(f"{V1}/rooms/{room}/relations/{original}/m.replace/m.room.message?limit=1")
    assert len(rel["chunk"]) == 1 and rel["next_batch"]
    status, rel2 = await bob.get(f"{V1}/rooms/{room}/relations/{original}/m.replace/m.room.message?limit=10&from={rel['next_batch']}")
    assert edit1 in [e["event_id"] for e in rel2["chunk"]]
    # Redacting the newest edit brings back the previous one.
    await alice.put(f"{V3}/rooms/{room}/redact/{edit2}/x1", {})
    status, event = await bob.get(f"{V3}/rooms/{room}/event/{original}")
    assert event["unsigned"]["m.relations"]["m.replace"]["event_id"] == edit1


async def test_threads_and_summaries(alice, bob, room):
    root = await send(alice, room, text("thread root"))
    other_root = await send(bob, room, text("bob's root"))
    reply1 = await send(bob, room, text("reply 1", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    reply2 = await send(alice, room, text("reply 2", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    await send(bob, room, text("in bob's", **{"m.relates_to": {"rel_type": "m.thread", "event_id": other_root}}))
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{root}")
    thread = event["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 2 and thread["current_user_participated"] is True
    assert thread["latest_event"]["event_id"] == reply2
    status, threads = await alice.get(f"{V1}/rooms/{room}/threads")
    assert [e["event_id"] for e in threads["chunk"]] == [other_root, root]  # by latest activity
    status, mine = await alice.get(f"{V1}/rooms/{room}/threads?include=participated")
    assert [e["event_id"] for e in mine["chunk"]] == [root]
    status, page = await alice.get(f"{V1}/rooms/{room}/threads?limit=1")
    status, page2 = await alice.get(f"{V1}/rooms/{room}/threads?limit=1&from={page['next_batch']}")
    assert [e["event_id"] for e in page2["chunk"]] == [root]
    status, body = await alice.get(f"{V1}/rooms/{room}/threads?include=some")
    assert status == 400
    status, rel = await alice.get(f"{V1}/rooms/{room}/relations/{root}/m.thread")
    assert [e["event_id"] for e in rel["chunk"]] == [reply2, reply1]


async def test_references_are_bundled(alice, room):
    parent = await send(alice, room, text("question"))
    ref = await send(alice, room, text("see above", **{"m.relates_to": {"rel_type": "m.reference", "event_id": parent}}))
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{parent}")
    assert event["unsigned"]["m.relations"]["m.reference"] == {"chunk": [{"event_id": ref}]}


async def test_relations_errors(alice, bob, client, room):
    status, body = await alice.get(f"{V1}/rooms/{room}/relations/$unknown")
    assert status == 404
    status, private = await alice.post(f"{V3}/createRoom", {})
    parent = await send(alice, private["room_id"], text("secret"))
    status, body = await bob.get(f"{V1}/rooms/{private['room_id']}/relations/{parent}")
    assert status == 404
    status, body = await alice.get(f"{V1}/rooms/{room}/relations/{parent}")
    assert status == 404  # wrong room
    status, body = await alice.get(f"{V1}/rooms/{room}/relations/x?limit=abc")
    assert status == 400
    here = await send(alice, room, text("visible parent"))
    status, body = await alice.get(f"{V1}/rooms/{room}/relations/{here}?from=bogus")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"


async def test_context(alice, bob, room):
    ids = [await send(alice, room, text(f"m{i}")) for i in range(6)]
    status, ctx = await bob.get(f"{V3}/rooms/{room}/context/{ids[3]}?limit=4")
    assert status == 200, ctx
    assert ctx["event"]["event_id"] == ids[3]
    assert [e["event_id"] for e in ctx["events_before"]] == [ids[2], ids[1]]
    assert [e["event_id"] for e in ctx["events_after"]] == [ids[4], ids[5]]
    assert {e["type"] for e in ctx["state"]} >= {"m.room.create", "m.room.member", "m.room.power_levels"}
    status, page = await bob.get(f"{V3}/rooms/{room}/messages?dir=b&limit=1&from={ctx['start']}")
    assert [e["event_id"] for e in page["chunk"]] == [ids[0]]
    status, lazy = await bob.get(f"{V3}/rooms/{room}/context/{ids[3]}?limit=2&filter=" + '{"lazy_load_members":true}')
    assert {e["state_key"] for e in lazy["state"] if e["type"] == "m.room.member"} == {"@alice:test.local"}
    status, body = await bob.get(f"{V3}/rooms/{room}/context/$nope")
    assert status == 404


async def test_timestamp_to_event(alice, room, services):
    first = await send(alice, room, text("first"))
    status, event = await alice.get(f"{V3}/rooms/{room}/event/{first}")
    ts = event["origin_server_ts"]
    status, body = await alice.get(f"{V1}/rooms/{room}/timestamp_to_event?ts={ts}&dir=f")
    assert status == 200 and body["origin_server_ts"] >= ts
    status, body = await alice.get(f"{V1}/rooms/{room}/timestamp_to_event?ts={ts + 10**9}&dir=b")
    assert status == 200 and body["event_id"] == first
    status, body = await alice.get(f"{V1}/rooms/{room}/timestamp_to_event?ts=1&dir=b")
    assert status == 404
    status, body = await alice.get(f"{V1}/rooms/{room}/timestamp_to_event?dir=b")
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await alice.get(f"{V1}/rooms/{room}/timestamp_to_event?ts=5&dir=x")
    assert status == 400
