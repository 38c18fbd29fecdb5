"""The rate limiter's arithmetic and memory (services/ratelimit), with a clock the test moves,
and the per-origin gate of inbound federation requests."""

from __future__ import annotations

import asyncio

import pytest

from homeserver.config import FederationRateLimits, RateLimit, RateLimitConfig
from homeserver.errors import MatrixError
from homeserver.services.ratelimit import Action, OriginLimiter, RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(time: FakeTime, **limits) -> RateLimiter:
    config = RateLimitConfig(**{name: RateLimit(*value) for name, value in limits.items()})
    return RateLimiter(config, None, None, monotonic=time)


async def refused(coro) -> int:
    with pytest.raises(MatrixError) as err:
        await coro
    assert (err.value.status, err.value.errcode) == (429, "M_LIMIT_EXCEEDED")
    return err.value.extra["retry_after_ms"]


async def test_a_burst_then_the_rate():
    time = FakeTime()
    rl = limiter(time, rc_room_creation=(0.5, 3))
    for _ in range(3):
        await rl.check(Action.ROOM_CREATION, "@a:x")
    assert await refused(rl.check(Action.ROOM_CREATION, "@a:x")) == 2000
    time.now += 1.5
    assert await refused(rl.check(Action.ROOM_CREATION, "@a:x")) == 500  # rounded up to the ms
    time.now += 0.5
    await rl.check(Action.ROOM_CREATION, "@a:x")
    # Keys and actions have buckets of their own.
    await rl.check(Action.ROOM_CREATION, "@b:x")
    await rl.check(Action.MEDIA_CREATE, "@a:x")


async def test_look_without_counting_and_record_past_the_limit():
    time = FakeTime()
    rl = limiter(time, rc_joins_per_room=(1, 2))
    for _ in range(5):
        await rl.check(Action.JOINS_PER_ROOM, "!r", update=False)
    rl.record(Action.JOINS_PER_ROOM, "!r", cost=3)  # three joins seen over federation
    assert await refused(rl.check(Action.JOINS_PER_ROOM, "!r", update=False)) == 2000
    assert not await rl.allows(Action.JOINS_PER_ROOM, "!r")


async def test_a_limit_off_and_the_global_switch():
    time = FakeTime()
    config = RateLimitConfig(rc_message=RateLimit(1, 1, enabled=False), rc_reports=RateLimit(1, 1))
    rl = RateLimiter(config, None, None, monotonic=time)
    for _ in range(5):
        await rl.check_message("@a:x", is_admin=False)
    await rl.check(Action.REPORT, "@a:x")
    await refused(rl.check(Action.REPORT, "@a:x"))
    off = RateLimiter(RateLimitConfig(enabled=False, rc_reports=RateLimit(1, 1)), None, None, monotonic=time)
    for _ in range(5):
        await off.check(Action.REPORT, "@a:x")
    assert not off.enabled(Action.REPORT) and rl.enabled(Action.REPORT)


async def test_exemptions():
    time = FakeTime()
    config = RateLimitConfig(rc_message=RateLimit(1, 1), rc_reports=RateLimit(1, 1))
    rl = RateLimiter(config, None, None, monotonic=time, is_exempt=lambda user_id: user_id == "@bridge:x")
    for _ in range(3):
        await rl.check_message("@admin:x", is_admin=True)
        await rl.check_message("@bridge:x", is_admin=False)
        await rl.check(Action.REPORT, "@bridge:x", user_id="@bridge:x")
    await rl.check_message("@a:x", is_admin=False)
    await refused(rl.check_message("@a:x", is_admin=False))


async def test_empty_buckets_are_dropped():
    time = FakeTime()
    rl = limiter(time, rc_media_create=(10, 5))
    for n in range(5000):
        await rl.check(Action.MEDIA_CREATE, f"@u{n}:x")
        time.now += 0.01
    # Each bucket empties 0.1 s after its use: only the last few are left.
    assert len(rl._buckets) < 1100
    time.now += 1
    rl.prune()
    assert rl._buckets == {}


def origins(time: FakeTime, **settings) -> OriginLimiter:
    return OriginLimiter(FederationRateLimits(**settings), monotonic=time)


async def test_origin_concurrency_queue_and_reject():
    time = FakeTime()
    gate = origins(time, concurrent=1, reject_limit=1, sleep_limit=100)
    running, release = [], asyncio.Event()

    async def request(n: int) -> int:
        async with gate.request("peer.example"):
            running.append(n)
            await release.wait()
        return n

    first = asyncio.create_task(request(1))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(request(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    assert running == [1]  # one at a time; the others wait in order
    retry = await refused(request(4))  # a third waiter is past reject_limit
    assert retry == 10  # window_size / sleep_limit
    async with gate.request("other.example"):  # another origin is not held back
        pass
    release.set()
    assert await asyncio.gather(first, *queued) == [1, 2, 3]
    assert running == [1, 2, 3]
    assert set(gate._origins) == {"peer.example", "other.example"}
    time.now += 2  # both quiet now: swept when the table grows
    for n in range(300):
        async with gate.request(f"s{n}.example"):
            pass
    assert "peer.example" not in gate._origins and "other.example" not in gate._origins


async def test_origin_requests_past_the_sleep_limit_wait():
    time = FakeTime()
    gate = origins(time, sleep_limit=2, sleep_delay=50, window_size=1000)
    loop = asyncio.get_running_loop()
    took = []
    for _ in range(3):
        start = loop.time()
        async with gate.request("peer.example"):
            took.append(loop.time() - start)
    assert took[0] < 0.04 and took[1] < 0.04 and took[2] >= 0.045


async def test_a_cancelled_waiter_passes_its_slot_on():
    time = FakeTime()
    gate = origins(time, concurrent=1, sleep_limit=100)
    release = asyncio.Event()

    async def hold():
        async with gate.request("peer.example"):
            await release.wait()

    async def quick():
        async with gate.request("peer.example"):
            return True

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    gone, waiting = asyncio.create_task(quick()), asyncio.create_task(quick())
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await holder
    assert await asyncio.wait_for(waiting, 1) is True
    assert gone.cancelled()
    state = gate._origins["peer.example"]
    assert (state.running, len(state.queue)) == (0, 0)
