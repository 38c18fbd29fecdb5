"""ByteLRU: a cache bounded in estimated bytes, least recently used out first."""

import random

from homeserver.caching import ENTRY_OVERHEAD, ByteLRU, json_size


def test_never_exceeds_its_ceiling_and_drops_the_least_recently_used():
    cache: ByteLRU[str, str] = ByteLRU(1_000, len)
    cache.put("a", "x" * 100)
    cache.put("b", "x" * 100)
    assert cache.bytes == 2 * (100 + ENTRY_OVERHEAD)
    assert cache.get("a") == "x" * 100  # a is now the most recently used
    cache.put("c", "x" * 300)  # 1,100 bytes with a and b: b, the least recently used, goes
    assert "b" not in cache and cache.peek("a")
    cache.put("d", "x" * 100)  # past the ceiling again: a goes
    assert "b" not in cache and "a" not in cache and cache.peek("c") and cache.peek("d")
    assert cache.bytes <= 1_000
    assert cache.stats.evictions == 2
    assert (cache.stats.hits, cache.stats.misses) == (1, 0)
    assert cache.get("b") is None and cache.stats.misses == 1


def test_an_entry_larger_than_the_ceiling_is_not_kept_and_replacing_counts_once():
    cache: ByteLRU[str, str] = ByteLRU(500, len)
    cache.put("k", "small")
    cache.put("k", "x" * 1_000)
    assert "k" not in cache and cache.bytes == 0
    cache.put("k", "one")
    cache.put("k", "two")
    assert cache.bytes == 3 + ENTRY_OVERHEAD and len(cache) == 1
    assert cache.pop("k") == "two" and cache.bytes == 0


def test_random_use_stays_within_the_ceiling_and_counts_its_bytes_exactly():
    rng = random.Random(7)
    cache: ByteLRU[int, bytes] = ByteLRU(20_000, len)
    for _ in range(5_000):
        key = rng.randrange(200)
        if rng.random() < 0.2:
            cache.pop(key)
        else:
            cache.put(key, b"x" * rng.randrange(2_000))
        assert cache.bytes <= 20_000
    assert cache.bytes == sum(len(cache.peek(k)) + ENTRY_OVERHEAD for k in cache)
    assert cache.stats.bytes() == cache.bytes and cache.stats.max_bytes == 20_000


def test_json_size_grows_with_the_value():
    assert json_size({"body": "x" * 1_000}) > json_size({"body": "x"}) > 0
    assert json_size(object()) == ENTRY_OVERHEAD


def test_entries_dropped_for_room_are_told_to_on_evict_but_not_popped_ones():
    dropped = []
    cache: ByteLRU[str, str] = ByteLRU(700, len, on_evict=lambda k, v: dropped.append((k, v)))
    cache.put("a", "x" * 100)
    cache.put("b", "y" * 100)
    cache.pop("b")
    cache.put("c", "z" * 300)  # 300 + 500 > 700: a goes
    assert dropped == [("a", "x" * 100)]
