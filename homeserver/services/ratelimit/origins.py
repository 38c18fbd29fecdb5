"""Inbound federation requests per origin server, as Synapse's `rc_federation`.

Each origin has a sliding window of its recent requests: past `sleep_limit` requests in
`window_size` ms, a request first waits `sleep_delay` ms. At most `concurrent` requests of
an origin are processed at once; the others queue in arrival order. When more than
`reject_limit` requests are already waiting (sleeping or queued), the next is refused with
429. Origins that went quiet are swept from the table when it has doubled since the last sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from homeserver.config import FederationRateLimits
from homeserver.services.ratelimit.limiter import limit_exceeded


_MIN_SWEEP_AT = 256


class _Origin:
    __slots__ = ("times", "running", "sleeping", "queue")

    def __init__(self) -> None:
        self.times: deque[float] = deque()  # when recent requests arrived (monotonic seconds)
        self.running = 0
        self.sleeping = 0
        self.queue: deque[asyncio.Future[None]] = deque()


class OriginLimiter:
    def __init__(self, config: FederationRateLimits, *, enabled: bool = True,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._enabled = enabled and config.enabled
        self._window_s = config.window_size / 1000
        self._sleep_limit = config.sleep_limit
        self._sleep_s = config.sleep_delay / 1000
        self._reject_limit = config.reject_limit
        self._concurrent = config.concurrent
        self._monotonic = monotonic
        self._origins: dict[str, _Origin] = {}
        self._sweep_at = _MIN_SWEEP_AT

    @contextlib.asynccontextmanager
    async def request(self, origin: str) -> AsyncIterator[None]:
        """Hold one of `origin`'s processing slots for the body of the `async with`."""
        if not self._enabled:
            yield
            return
        now = self._monotonic()
        state = self._origins.get(origin)
        if state is None:
            if len(self._origins) >= self._sweep_at:
                self._sweep(now)
            state = self._origins[origin] = _Origin()
        while state.times and now - state.times[0] >= self._window_s:
            state.times.popleft()
        if len(state.queue) + state.sleeping > self._reject_limit:
            raise limit_exceeded(self._window_s / self._sleep_limit)
        state.times.append(now)
        if len(state.times) > self._sleep_limit:
            state.sleeping += 1
            try:
                await asyncio.sleep(self._sleep_s)
            finally:
                state.sleeping -= 1
        await self._acquire(state)
        try:
            yield
        finally:
            self._release(state)

    async def _acquire(self, state: _Origin) -> None:
        if state.running < self._concurrent and not state.queue:
            state.running += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.queue.append(waiter)
        try:
            await waiter  # a finishing request hands its slot over (running stays counted)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(state)  # handed a slot, then cancelled: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    state.queue.remove(waiter)
            raise

    def _release(self, state: _Origin) -> None:
        while state.queue:
            waiter = state.queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        state.running -= 1

    def _idle(self, state: _Origin, now: float) -> bool:
        return not (state.running or state.sleeping or state.queue) \
            and (not state.times or now - state.times[-1] >= self._window_s)

    def _sweep(self, now: float) -> None:
        """Forget the origins that went quiet: nothing running or waiting, nothing in the window."""
        self._origins = {o: s for o, s in self._origins.items() if not self._idle(s, now)}
        self._sweep_at = max(_MIN_SWEEP_AT, 2 * len(self._origins))
