"""homeserver.memory: with glibc tuned as `chatgo run` tunes it, the memory of password hashes
done side by side goes back to the kernel once they are done."""

import subprocess
import sys

import pytest

from homeserver.memory import _libc

HASH_BURST = """
import sys, threading
from argon2 import PasswordHasher
from homeserver.memory import tune_malloc

if sys.argv[1] == "tuned":
    assert tune_malloc()

def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

hasher = PasswordHasher(time_cost=1, memory_cost=19 * 1024, parallelism=1)
before = rss_kb()
threads = [threading.Thread(target=lambda: [hasher.hash("pw") for _ in range(3)]) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(rss_kb() - before)
"""


def _growth_kb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", HASH_BURST, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(_libc() is None, reason="glibc only")
def test_tuned_malloc_gives_hashing_memory_back():
    untuned, tuned = _growth_kb("default"), _growth_kb("tuned")
    # Six threads of 19 MiB hashes: glibc's defaults keep several of those blocks resident.
    assert untuned > 40_000, untuned
    assert tuned < 10_000, (tuned, untuned)


GC_AFTER_START = """
import gc
from homeserver.config import TuningConfig
from homeserver.memory import freeze_startup, tune_gc

tune_gc(TuningConfig().gc_thresholds)
assert gc.get_threshold() == (50_000, 20, 10)
made_at_start = [{"n": i} for i in range(10_000)]
freeze_startup()
# What start-up made is out of every later collection; a cycle made afterwards still goes.
assert gc.get_freeze_count() >= 10_000
cycle = []
cycle.append(cycle)
del cycle
assert gc.collect() >= 1
print("ok")
"""


def test_the_collector_runs_rarer_and_skips_what_start_up_made():
    out = subprocess.run([sys.executable, "-c", GC_AFTER_START], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
