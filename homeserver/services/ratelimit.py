"""Per-key token-bucket rate limiting, in memory.

Each key (a user ID, or a client IP for unauthenticated requests) has a bucket of `burst`
tokens refilled at `per_second`; a request takes one. Idle keys cost nothing: a bucket is
refilled lazily when next used, and full buckets are dropped by `prune()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from homeserver.config import RateLimitConfig
from homeserver.errors import Codes, MatrixError


class RateLimiter:
    def __init__(self, config: RateLimitConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    def check(self, key: str) -> None:
        """Take a token for `key`, or raise 429 M_LIMIT_EXCEEDED with `retry_after_ms`."""
        if not self._config.enabled:
            return
        now = self._monotonic()
        rate, burst = self._config.per_second, float(self._config.burst)
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            retry_after_ms = int((1.0 - tokens) / rate * 1000) + 1
            raise MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many requests", retry_after_ms=retry_after_ms)
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self.prune()

    def prune(self) -> None:
        now = self._monotonic()
        rate, burst = self._config.per_second, float(self._config.burst)
        self._buckets = {
            k: (t, last) for k, (t, last) in self._buckets.items() if t + (now - last) * rate < burst
        }
