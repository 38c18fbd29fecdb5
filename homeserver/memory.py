"""Keeping the resident memory of `chatgo run` down: glibc's allocator, tuned at start.

Two glibc defaults keep freed memory in the process for good:
- every thread that meets contention gets its own malloc arena (up to 8 per core), and an
  arena keeps what was freed in it; `M_ARENA_MAX` caps them (MALLOC_ARENA_MAX set in the
  environment would come too late: glibc reads it at the first malloc, before Python runs);
- a freed large block raises the mmap threshold to its size (up to 32 MiB), so the next
  blocks that size come from the heap, which rarely shrinks: argon2id's 19 MiB per password
  hash stayed resident once a few had run side by side. A fixed `M_MMAP_THRESHOLD` keeps
  big blocks in their own mappings, given back to the kernel on free.
No-ops where the C library is not glibc.

And Python's cyclic garbage collector, whose default thresholds (700, 10, 10) run a young
collection every 700 new objects and a full one, walking the whole heap (20-80 ms with the
caches full), every few such batches: in a fan-out to thousands of waiting /syncs the full
collections came several times a second. `tune_gc` makes young collections rarer and
`freeze_startup` keeps what start-up made (modules, configuration, services) out of every
later collection. Memory is still freed at once by reference counting; only cycles wait longer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 1 << 20


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def tune_malloc(*, arena_max: int = ARENA_MAX, mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Cap glibc's arenas and fix its mmap threshold; call before threads start. True when
    applied."""
    libc = _libc()
    if libc is None:
        return False
    applied = libc.mallopt(M_ARENA_MAX, arena_max) == 1 and libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
    if not applied:
        logger.warning("could not tune glibc malloc (mallopt refused)")
    return applied


def tune_gc(thresholds: tuple[int, ...]) -> None:
    """The collector's thresholds (config tuning.gc_thresholds: 50,000, 20, 10 by default). A
    full collection also waits, by Python's own rule, until the objects that survived into the
    old generation grew by a quarter."""
    gc.set_threshold(*thresholds)


def freeze_startup() -> None:
    """Once the server is up: what exists now is never collected again (nor walked)."""
    gc.collect()
    gc.freeze()
