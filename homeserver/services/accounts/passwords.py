"""Password hashing with argon2id, off the event loop.

Hashing costs tens of milliseconds of CPU and argon2_memory_cost_kib of memory (19 MiB by
default) by design; it runs in a worker thread so that one login does not stall every other
request, and at most `argon2_max_concurrent` run at once: a burst of registrations otherwise
hashed in every worker thread side by side, and the process kept that memory long after.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from homeserver.config import AuthConfig


class PasswordHashing:
    def __init__(self, config: AuthConfig) -> None:
        self._hasher = PasswordHasher(
            time_cost=config.argon2_time_cost,
            memory_cost=config.argon2_memory_cost_kib,
            parallelism=config.argon2_parallelism,
        )
        self._slots = asyncio.Semaphore(config.argon2_max_concurrent)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            return False

        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        async with self._slots:
            return await asyncio.to_thread(check)
