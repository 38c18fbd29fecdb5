"""In-memory caches bounded in bytes: least recently used out first.

A cache's ceiling is a number of bytes (config `caches`), not of entries: entries differ a
thousandfold in size (a message event and a room's whole state), so only bytes bound the
memory. The bytes are estimates of the Python objects an entry holds, computed once when it
is stored (`json_size` costs a few microseconds: the encoded JSON, times what Python objects
take over JSON text), never measured by walking object graphs on the hot path.
No I/O: it sits at the bottom of the layers, beside `stats`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

import orjson

from homeserver.stats import CacheStats

# Python dicts, strings and lists of parsed JSON take about this many times the bytes of the
# JSON text (measured with tracemalloc on events: ~3.4x).
JSON_OBJECT_FACTOR = 4
# What an entry costs besides its value: the LRU's node, the key, a small object or two.
ENTRY_OVERHEAD = 200
# A string of an identifier in a set or tuple (user ID, server name, event ID), with its slot.
ID_BYTES = 100


def json_size(value: Any) -> int:
    """Estimated bytes of a parsed JSON value held in memory."""
    try:
        return len(orjson.dumps(value)) * JSON_OBJECT_FACTOR
    except TypeError:  # not JSON (a tuple key, a custom object): count it as a small object
        return ENTRY_OVERHEAD


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """key -> value, at most `max_bytes` of estimated entry sizes (`size_of(value)` plus an
    overhead per entry); storing past the ceiling drops the least recently used entries. An
    entry larger than the whole ceiling is not kept at all."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int],
                 on_evict: Callable[[K, V], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._on_evict = on_evict  # told of entries dropped for room (not of pop or clear)
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self.stats = CacheStats(self.__len__, lambda: self.bytes, max_bytes)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._entries))

    def get(self, key: K) -> V | None:
        """The value (now the most recently used), counted as a hit or a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        self._entries.move_to_end(key)
        return entry[0]

    def peek(self, key: K) -> V | None:
        """The value, neither counted nor moved."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value) + ENTRY_OVERHEAD
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if size > self.max_bytes:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            dropped_key, (dropped, dropped_size) = self._entries.popitem(last=False)
            self.bytes -= dropped_size
            self.stats.evictions += 1
            if self._on_evict is not None:
                self._on_evict(dropped_key, dropped)

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.bytes -= entry[1]
        return entry[0]

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
