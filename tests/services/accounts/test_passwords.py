"""Password hashing: a burst of hashes and checks runs at most argon2_max_concurrent at a time."""

import asyncio
import threading
import time

from homeserver.services.accounts.passwords import PasswordHashing
from tests.conftest import make_test_config


class CountingHasher:
    """The real hasher, counting how many of its calls run at once."""

    def __init__(self, real) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def _counted(self, work, *args):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.02)  # long enough for the other threads to pile up
            return work(*args)
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password):
        return self._counted(self._real.hash, password)

    def verify(self, password_hash, password):
        return self._counted(self._real.verify, password_hash, password)


async def test_hashes_and_checks_run_at_most_max_concurrent_at_once():
    hashing = PasswordHashing(make_test_config(auth={"argon2_max_concurrent": 2}).auth)
    hasher = hashing._hasher = CountingHasher(hashing._hasher)
    hashes = await asyncio.gather(*(hashing.hash(f"pw{i}") for i in range(8)))
    assert hasher.most == 2
    hasher.most = 0
    checks = await asyncio.gather(*(hashing.verify(h, f"pw{i}") for i, h in enumerate(hashes)))
    assert checks == [True] * 8
    assert hasher.most == 2
    assert not await hashing.verify(hashes[0], "wrong")
