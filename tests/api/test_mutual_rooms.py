"""GET /_matrix/client/v1/mutual_rooms: the rooms two users are both joined to, paged."""

from homeserver.services.rooms import messaging

MUTUAL = "/_matrix/client/v1/mutual_rooms"


async def room_with(owner, *joiners) -> str:
    status, body = await owner.post("/_matrix/client/v3/createRoom", {"preset": "public_chat"})
    assert status == 200, body
    for joiner in joiners:
        status, _ = await joiner.post(f"/_matrix/client/v3/join/{body['room_id']}", {})
        assert status == 200
    return body["room_id"]


async def test_lists_shared_rooms_in_pages(alice, bob, client, monkeypatch):
    monkeypatch.setattr(messaging, "MUTUAL_ROOMS_PAGE", 2)
    shared = sorted([await room_with(alice, bob) for _ in range(3)])
    await room_with(alice)  # alice alone
    left = await room_with(bob, alice)
    status, _ = await alice.post(f"/_matrix/client/v3/rooms/{left}/leave", {})
    assert status == 200

    status, page = await alice.get(f"{MUTUAL}?user_id=@bob:test.local")
    assert status == 200, page
    assert page["joined"] == shared[:2] and page["count"] == 3 and page["next_batch"]
    status, rest = await alice.get(f"{MUTUAL}?user_id=@bob:test.local&from={page['next_batch']}")
    assert rest["joined"] == shared[2:] and rest["count"] == 3 and "next_batch" not in rest

    status, none = await alice.get(f"{MUTUAL}?user_id=@nobody:test.local")
    assert status == 200 and none == {"joined": [], "count": 0}


async def test_bad_requests(alice):
    for query, errcode in (("", "M_MISSING_PARAM"), ("?user_id=bob", "M_INVALID_PARAM"),
                           ("?user_id=@alice:test.local", "M_INVALID_PARAM"),
                           ("?user_id=@bob:test.local&from=xyz", "M_INVALID_PARAM")):
        status, body = await alice.get(MUTUAL + query)
        assert status == 400 and body["errcode"] == errcode, (query, body)
