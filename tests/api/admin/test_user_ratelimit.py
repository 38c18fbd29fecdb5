"""Admins' rate limit overrides per user (Synapse's /users/{userId}/override_ratelimit) and
their effect on the limits."""

from __future__ import annotations

import uuid

import pytest

from tests.api.ratelimits import assert_limited, limits

V3 = "/_matrix/client/v3"
OVERRIDE = "/_synapse/admin/v1/users/{}/override_ratelimit"
ONE = {"per_second": 0.001, "burst_count": 1}


@pytest.fixture
def config_overrides():
    return limits({"rc_message": ONE, "rc_room_creation": ONE})


def path(user_id: str) -> str:
    return OVERRIDE.format(user_id)


async def send(user, room_id: str) -> tuple[int, dict]:
    return await user.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                          {"msgtype": "m.text", "body": "hi"})


async def test_an_override_of_zero_lifts_every_limit_until_deleted(admin, alice):
    room = (await alice.post(f"{V3}/createRoom", {}))[1]["room_id"]
    assert (await send(alice, room))[0] == 200
    await assert_limited(alice, "PUT", f"{V3}/rooms/{room}/send/m.room.message/t1", {"body": "x"})
    await assert_limited(alice, "POST", f"{V3}/createRoom", {})

    assert await admin.get(path("@alice:test.local")) == (200, {})
    status, body = await admin.post(path("@alice:test.local"), {"messages_per_second": 0, "burst_count": 0})
    assert (status, body) == (200, {"messages_per_second": 0, "burst_count": 0})
    assert await admin.get(path("@alice:test.local")) == (200, {"messages_per_second": 0, "burst_count": 0})
    for _ in range(3):
        assert (await send(alice, room))[0] == 200
    # 0 exempts from every limit, not only messages (as Synapse).
    assert (await alice.post(f"{V3}/createRoom", {}))[0] == 200

    assert await admin.delete(path("@alice:test.local")) == (200, {})
    assert await admin.get(path("@alice:test.local")) == (200, {})
    await assert_limited(alice, "PUT", f"{V3}/rooms/{room}/send/m.room.message/t2", {"body": "x"})


async def test_other_values_replace_the_message_limit(admin, alice):
    room = (await alice.post(f"{V3}/createRoom", {}))[1]["room_id"]
    # An empty body is 0/0, as Synapse.
    assert await admin.post(path("@alice:test.local")) == (200, {"messages_per_second": 0, "burst_count": 0})
    status, body = await admin.post(path("@alice:test.local"), {"messages_per_second": 1, "burst_count": 3})
    assert (status, body) == (200, {"messages_per_second": 1, "burst_count": 3})
    for _ in range(3):
        assert (await send(alice, room))[0] == 200
    await assert_limited(alice, "PUT", f"{V3}/rooms/{room}/send/m.room.message/t3", {"body": "x"}, max_retry_ms=1000)
    # Only rc_message is replaced: room creation keeps its configured limit.
    await assert_limited(alice, "POST", f"{V3}/createRoom", {})


async def test_changes_are_in_the_audit_log(admin, alice):
    await admin.post(path("@alice:test.local"), {"messages_per_second": 2, "burst_count": 5})
    await admin.delete(path("@alice:test.local"))
    status, body = await admin.get("/_synapse/admin/v1/audit_log?target=%40alice%3Atest.local")
    assert status == 200, body
    assert [(e["admin"], e["action"], e["details"]) for e in body["entries"]] == [
        ("@admin:test.local", "user.delete_ratelimit", {}),
        ("@admin:test.local", "user.set_ratelimit", {"messages_per_second": 2, "burst_count": 5}),
    ]


async def test_bad_requests(admin, alice):
    status, body = await alice.get(path("@alice:test.local"))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    for method in ("get", "post", "delete"):
        status, body = await getattr(admin, method)(path("@alice:elsewhere.test"))
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), (method, body)
        status, body = await getattr(admin, method)(path("not-a-user"))
        assert status == 400, (method, body)
        status, body = await getattr(admin, method)(path("@nobody:test.local"))
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), (method, body)
    for bad in ({"messages_per_second": -1}, {"burst_count": "3"}, {"messages_per_second": 1.5},
                {"burst_count": True}, {"messages_per_second": 2**63}):
        status, body = await admin.post(path("@alice:test.local"), bad)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), (bad, body)
    status, body = await admin.post(path("@alice:test.local"), raw=b"[1]")
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    # Nothing was written by the refused requests.
    assert await admin.get(path("@alice:test.local")) == (200, {})
