"""Figures the layers keep for /metrics: plain numbers, updated on the hot paths for the cost
of an addition, read and exported by homeserver/services/admin/metrics.py only when
Prometheus scrapes. No I/O, no dependency (not even on prometheus_client): it sits at the
bottom of the layers, so storage, the federation plumbing and every service package may keep
such figures without knowing how they are exported.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# Upper bounds (seconds) of the buckets of work that usually takes well under a second: a
# query, a persist.
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# HTTP requests: long-polls (/sync) legitimately take up to their timeout.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Latency:
    """A latency histogram: a count per bucket (the last one past every bound, +Inf) and the
    sum. `observe` is one bisection and two additions, with no allocation."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = FAST_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # Prometheus buckets are "<= bound"
        self.sum += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or under it) per bucket, +Inf last."""
        total, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            total += count
            buckets.append((bound, total))
        return buckets


class CacheStats:
    """Hits, misses and evictions of one in-memory cache, its current size in entries and in
    bytes (read through the callables the cache gives, only when scraped), and its ceiling in
    bytes (0: none). The cache adds to the counters itself."""

    __slots__ = ("hits", "misses", "evictions", "_size", "_bytes", "max_bytes")

    def __init__(self, size: Callable[[], int], bytes_: Callable[[], int] | None = None, max_bytes: int = 0) -> None:
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._size = size
        self._bytes = bytes_
        self.max_bytes = max_bytes

    def size(self) -> int:
        return self._size()

    def bytes(self) -> int | None:
        """The estimated bytes held; None for a cache that does not count them."""
        return self._bytes() if self._bytes is not None else None


@dataclass(slots=True)
class PersistStats:
    """Events written to the database, and how long each batch took to write."""
    events: int = 0
    latency: Latency = field(default_factory=Latency)


@dataclass(slots=True)
class FederationTraffic:
    """Transactions exchanged with other servers in one direction, per server: each
    transaction by its result, and the PDUs and EDUs they carried."""
    transactions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (server, result)
    pdus: Counter[str] = field(default_factory=Counter)
    edus: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class AppServiceTraffic:
    """Transactions pushed to application services, per appservice: each attempt by its result
    (`sent`, `failed`), and the events the accepted ones carried."""
    transactions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (appservice, result)
    events: Counter[str] = field(default_factory=Counter)
