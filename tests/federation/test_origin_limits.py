"""Inbound federation requests per origin (rate_limiting.rc_federation) between two ChatGO
servers over TLS: past `concurrent` they queue, past `reject_limit` waiting ones they are
refused with 429 M_LIMIT_EXCEEDED; transactions (PUT /send) are never held back. And the
limits a resident server applies to other servers' users: invites per invitee, joins per room."""

from __future__ import annotations

import asyncio
import types

import pytest
from aiohttp import web

from federation.client import RemoteError
from homeserver.api.http import FEDERATION_V1, Auth, json_response, origin_of, route
from tests.api.ratelimits import limits
from tests.federation.matrix_client import new_user

SLOW = "/_matrix/federation/v1/test/slow"


class Gate:
    """What the slow endpoint does: count itself running, wait to be let go."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.release = asyncio.Event()


GATE = types.SimpleNamespace(current=None)


@route("GET", "/test/slow", auth=Auth.SERVER, prefixes=FEDERATION_V1)
async def slow(request: web.Request) -> web.Response:
    """GET /_matrix/federation/v1/test/slow"""
    gate: Gate = GATE.current
    gate.running.append(origin_of(request))
    await gate.release.wait()
    return json_response({"origin": origin_of(request)})


SLOW_MODULE = types.ModuleType("slow_module")
SLOW_MODULE.slow = slow
slow.__module__ = "slow_module"


async def until(condition, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def servers(homeservers):
    a = await homeservers()
    b = await homeservers(extra_modules=[SLOW_MODULE], rate_limiting={
        "enabled": True, "rc_federation": {"concurrent": 1, "reject_limit": 0, "sleep_limit": 100}})
    GATE.current = Gate()
    yield a, b
    GATE.current.release.set()


async def test_requests_of_one_origin_queue_then_are_refused(servers):
    a, b = servers
    gate: Gate = GATE.current
    client = a.services.federation_client
    first = asyncio.create_task(client.get_json(b.name, SLOW))
    await until(lambda: len(gate.running) == 1)
    second = asyncio.create_task(client.get_json(b.name, SLOW))
    await asyncio.sleep(0.3)
    assert len(gate.running) == 1 and not second.done()  # waiting for the first to finish
    with pytest.raises(RemoteError) as err:
        await client.get_json(b.name, SLOW)  # one is already waiting: reject_limit 0
    assert (err.value.status, err.value.errcode) == (429, "M_LIMIT_EXCEEDED")
    assert err.value.body["retry_after_ms"] == 10  # window_size / sleep_limit, as Synapse

    # Transactions are not held back by the gate.
    answer = await client.put_json(b.name, "/_matrix/federation/v1/send/t1",
                                   {"origin": a.name, "origin_server_ts": 1, "pdus": [], "edus": []})
    assert answer == {"pdus": {}}

    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 10) == [{"origin": a.name}] * 2
    assert gate.running == [a.name, a.name]


@pytest.fixture
async def limited_b(homeservers):
    """`a`, and `b` allowing one invite per user and one join per room at a time."""
    a = await homeservers()
    one = {"per_second": 0.001, "burst_count": 1}
    b = await homeservers(**limits({"rc_invites": {"per_user": one}, "rc_joins_per_room": one}))
    return a, b


async def test_invites_over_federation_count_per_invitee(limited_b, tls_files):
    a, b = limited_b
    alice = await new_user(a, tls_files, "alice")
    await new_user(b, tls_files, "bob")
    bob_id = f"@bob:{b.name}"
    first, second = await alice.create_room(), await alice.create_room()
    await alice.membership(first, "invite", bob_id)
    status, body = await alice.membership(second, "invite", bob_id, expect=None)
    assert body["errcode"] == "M_LIMIT_EXCEEDED", (status, body)


async def test_a_room_with_a_burst_of_joins_refuses_joins_through_it(limited_b, tls_files):
    a, b = limited_b
    alice = await new_user(a, tls_files, "alice")
    carol, dave = await new_user(b, tls_files, "carol"), await new_user(b, tls_files, "dave")
    room_id = await carol.create_room(preset="public_chat")
    await dave.join(room_id)  # the room's one join for now
    status, body = await alice.join(room_id, via=[b.name], expect=None)
    assert body["errcode"] == "M_LIMIT_EXCEEDED", (status, body)
    _, member = await carol.state(room_id, "m.room.member", alice.user_id, expect=None)
    assert member.get("membership") != "join"
