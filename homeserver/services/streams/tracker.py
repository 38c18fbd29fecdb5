"""Stream positions that become visible in order.

Positions are allocated before a write and may commit out of order (two rooms persisting at
once, or two server processes on one database). Readers must never see position N+1 while N
is still in flight, or an incremental sync could skip N forever; `current` is the highest
position below which every position is known to be committed (or abandoned).

A position is known when this process wrote it (`start`/`finish`) or another process
announced it (`finish_remote`, over LISTEN/NOTIFY). A gap of unknown positions is waited for:
another process may be writing them. A gap that stays unknown for `gap_timeout` seconds (a
process died mid-write, a sequence skipped values) is passed, so a stream never stalls.

`foreign_upto` is the highest position this process did not write itself (announced by
another process, or passed as an unknown gap): what this process saw written up to a
position is the whole stream only above it (in-memory views of recent changes rely on it).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable

DEFAULT_GAP_TIMEOUT_S = 2.0


class StreamTracker:
    def __init__(self, current: int = 0, *, gap_timeout: float = DEFAULT_GAP_TIMEOUT_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._current = current
        self._in_flight: set[int] = set()
        self._done: list[int] = []  # finished positions above `current`, as a heap
        self._waiting: list[tuple[int, int, Callable[[], None]]] = []  # (position, seq, callback) heap
        self._seq = 0
        self._gap_timeout = gap_timeout
        self._monotonic = monotonic
        self._gap_since: tuple[int, float] | None = None  # (first missing position, when seen)
        self._gap_timer: asyncio.TimerHandle | None = None
        self._foreign_upto = current
        # Called with the positions this process finished (replication announces them).
        self.on_local_finish: Callable[[list[int]], None] | None = None

    @property
    def current(self) -> int:
        return self._current

    @property
    def foreign_upto(self) -> int:
        """The highest position known or passed that this process did not write (the start
        position at first)."""
        return self._foreign_upto

    def start(self, positions: list[int]) -> None:
        self._in_flight.update(positions)

    def finish(self, positions: list[int], *, announce: bool = True) -> None:
        """Mark positions committed (or abandoned); advance `current` past contiguous ones.
        `announce=False`: other processes are told later (`announce`), once rows derived from
        them are written too."""
        for position in positions:
            self._in_flight.discard(position)
        self._add_done(positions)
        if announce and self.on_local_finish is not None:
            self.on_local_finish(positions)

    def announce(self, positions: list[int]) -> None:
        """Tell the other processes of positions finished without announcing them."""
        if positions and self.on_local_finish is not None:
            self.on_local_finish(positions)

    def finish_remote(self, positions: list[int]) -> None:
        """Positions another process committed (or abandoned)."""
        self._foreign_upto = max(self._foreign_upto, *positions) if positions else self._foreign_upto
        self._add_done(positions)

    def when_visible(self, position: int, callback: Callable[[], None]) -> None:
        """Call `callback` once `current` has reached `position` (now, if it has)."""
        if position <= self._current:
            callback()
            return
        self._seq += 1
        heapq.heappush(self._waiting, (position, self._seq, callback))

    # --- internals ---------------------------------------------------------------------------

    def _add_done(self, positions: list[int]) -> None:
        for position in positions:
            if position > self._current:
                heapq.heappush(self._done, position)
        self._advance()

    def _advance(self) -> None:
        done = self._done
        while done:
            if done[0] <= self._current:  # a duplicate announcement
                heapq.heappop(done)
                continue
            missing = self._current + 1
            if done[0] == missing:
                self._current = heapq.heappop(done)
                continue
            # A gap before the next finished position: ours in flight, or unknown.
            if missing in self._in_flight or not self._gap_expired(missing):
                break
            own = [p for p in self._in_flight if p < done[0]]
            self._current = (min(own) - 1) if own else done[0] - 1
            self._foreign_upto = max(self._foreign_upto, self._current)
            self._gap_since = None
        while self._waiting and self._waiting[0][0] <= self._current:
            heapq.heappop(self._waiting)[2]()

    def _gap_expired(self, missing: int) -> bool:
        now = self._monotonic()
        if self._gap_since is None or self._gap_since[0] != missing:
            self._gap_since = (missing, now)
            self._schedule_gap_check()
            return self._gap_timeout <= 0
        return now - self._gap_since[1] >= self._gap_timeout

    def _schedule_gap_check(self) -> None:
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (unit tests): the next finish re-checks
        self._gap_timer = loop.call_later(self._gap_timeout, self._advance)
