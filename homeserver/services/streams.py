"""Stream positions that become visible in order.

Positions are allocated before a write and may commit out of order (two rooms persisting at
once). Readers must never see position N+1 while N is still in flight, or an incremental
sync could skip N forever; `current` is the highest position with nothing in flight below it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class StreamTracker:
    def __init__(self, current: int = 0) -> None:
        self._current = current
        self._in_flight: set[int] = set()
        self._done: list[int] = []  # finished positions above `current`, as a heap
        self._waiting: list[tuple[int, int, Callable[[], None]]] = []  # (position, seq, callback) heap
        self._seq = 0

    @property
    def current(self) -> int:
        return self._current

    def start(self, positions: list[int]) -> None:
        self._in_flight.update(positions)

    def finish(self, positions: list[int]) -> None:
        """Mark positions committed (or abandoned); advance `current` past contiguous ones."""
        for position in positions:
            self._in_flight.discard(position)
            heapq.heappush(self._done, position)
        floor = min(self._in_flight) if self._in_flight else None
        while self._done and (floor is None or self._done[0] < floor):
            self._current = max(self._current, heapq.heappop(self._done))
        while self._waiting and self._waiting[0][0] <= self._current:
            heapq.heappop(self._waiting)[2]()

    def when_visible(self, position: int, callback: Callable[[], None]) -> None:
        """Call `callback` once `current` has reached `position` (now, if it has)."""
        if position <= self._current:
            callback()
            return
        self._seq += 1
        heapq.heappush(self._waiting, (position, self._seq, callback))
