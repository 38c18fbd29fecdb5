"""The wall clock, as a dependency so tests can move time."""

from __future__ import annotations

import time


class Clock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)
