"""Join time of a 1,000-member room over federation, with and without `omit_members`
(faster joins, MSC3706). Run by hand, never in CI:

    CHATGO_PERF=1 python -m pytest tests/perf/test_join_time.py -s

The members are made by direct service calls on the resident server (accounts without a
password, joins without rate limiting): no HTTP, no argon2, so setting up takes seconds. What is
timed is over real HTTPS between servers of the test network (tests/federation/conftest.py):
the send_join v2 round trip (the resident server's work plus the transfer) with and without
`omit_members=true`, a whole ChatGO-to-ChatGO /join (the joining side asks for the full state),
and a Synapse user's /join (Synapse asks for partial state) until Synapse lists every member.
Figures are printed; tests/perf/README.md keeps them.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from federation.client import path
from tests.federation.conftest import homeservers, shared_synapse, synapse, synapse_interpreter, synapses, tls_files  # noqa: F401
from tests.federation.matrix_client import new_user
from tests.federation.test_faster_joins_joining import wait_until_full
from tests.federation.synapse import wait_for

pytestmark = pytest.mark.skipif(os.environ.get("CHATGO_PERF") != "1", reason="benchmark: CHATGO_PERF=1 to run")

MEMBERS = int(os.environ.get("CHATGO_PERF_MEMBERS", "1000"))
ROUNDS = 5


async def _big_room(server, tls_files) -> tuple[object, str]:
    alice = await new_user(server, tls_files, "alice")
    room_id = await alice.create_room(preset="public_chat", name="Big room")
    accounts, membership = server.services.accounts, server.services.membership
    started = time.perf_counter()
    for i in range(MEMBERS - 1):
        user_id = await accounts.create_user(f"member{i}", None)
        await membership.join(user_id, room_id, ratelimited=False)
    print(f"\nset-up: {MEMBERS} members joined in {time.perf_counter() - started:.1f} s")
    return alice, room_id


async def test_send_join_with_and_without_omit_members(homeservers, tls_files):  # noqa: F811
    a, b = await homeservers(), await homeservers(federation={"faster_joins": False})
    _, room_id = await _big_room(a, tls_files)
    membership, client = b.services.federation_membership, b.services.federation_client
    for omit in (False, True, False, True):  # interleaved: a warm-up pair, then the measured pair
        times, size, counts = [], 0, (0, 0)
        for i in range(ROUNDS):
            user_id = await b.services.accounts.create_user(f"joiner{int(omit)}{i}{time.monotonic_ns()}", None)
            template, version, _ = await membership._make(user_id, room_id, [a.name], "join")
            join = membership._complete(template, version, user_id, {}, "join")
            started = time.perf_counter()
            answer = await client.put_json(a.name, path("/_matrix/federation/v2/send_join/{}/{}", room_id,
                                                        join.event_id), join.pdu,
                                           query={"omit_members": "true"} if omit else None)
            times.append((time.perf_counter() - started) * 1000)
            size = len(json.dumps(answer))
            counts = (len(answer["state"]), len(answer["auth_chain"]))
            assert answer["members_omitted"] is omit
        print(f"send_join omit_members={str(omit).lower()}: median {statistics.median(times):.0f} ms "
              f"(min {min(times):.0f}, max {max(times):.0f}), answer {size / 1024:.0f} KiB, "
              f"{counts[0]} state events, {counts[1]} auth chain events")

    bob = await new_user(b, tls_files, "bob")
    started = time.perf_counter()
    await bob.join(room_id, via=[a.name])
    print(f"ChatGO /join (full state, {MEMBERS} members): {(time.perf_counter() - started) * 1000:.0f} ms")


async def test_chatgo_join_with_and_without_faster_joins(homeservers, tls_files):  # noqa: F811
    """The joining side: a ChatGO user's /join through another ChatGO server, asking for the
    whole state (faster_joins: false) and for the state without members (the default), and
    with it how long the resync takes until /joined_members lists every member."""
    a = await homeservers()
    _, room_id = await _big_room(a, tls_files)
    for round_, faster in enumerate((False, True, False, True)):  # a warm-up pair, then the measured pair
        b = await homeservers(federation={"faster_joins": faster})
        bob = await new_user(b, tls_files, "bob")
        started = time.perf_counter()
        await bob.join(room_id, via=[a.name])
        joined_ms = (time.perf_counter() - started) * 1000
        await wait_until_full(b, room_id, timeout_s=300)
        _, body = await bob.request("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
        full_ms = (time.perf_counter() - started) * 1000
        assert len(body["joined"]) == MEMBERS + 1 + round_  # each round's Bob stays in
        print(f"ChatGO /join faster_joins={str(faster).lower()} ({MEMBERS} members): {joined_ms:.0f} ms; "
              f"every member listed after {full_ms:.0f} ms")


async def test_synapse_joins_with_partial_state(homeservers, tls_files, synapse):  # noqa: F811
    a = await homeservers()
    _, room_id = await _big_room(a, tls_files)
    bob = await synapse.register("bob")
    started = time.perf_counter()
    await bob.join(room_id, via=[a.name])
    joined_ms = (time.perf_counter() - started) * 1000

    async def all_members() -> bool:
        # Synapse holds this request until its resync is over.
        body = await bob.call("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
        return len(body["joined"]) == MEMBERS + 1
    await wait_for(all_members, timeout_s=300, what="every member on Synapse")
    print(f"Synapse /join (omit_members): {joined_ms:.0f} ms; every member listed after "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
