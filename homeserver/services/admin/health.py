"""Health checks for load balancers and orchestrators.

Liveness is the process answering at all (no I/O, so a slow database never gets a live
process restarted); readiness is the database answering a trivial query within
READY_TIMEOUT_S, so traffic goes elsewhere while it does not.

A database that hangs (a dead host whose TCP connections stay open) must not hang the check:
the probe query runs in a task of its own that the check stops waiting for after the timeout
(cancelling it would wait on asyncpg's cancel request, which hangs just the same). At most
one probe is in flight: checks arriving meanwhile wait on the same one.
"""

from __future__ import annotations

import asyncio
import logging

from storage.database import Database

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0


class HealthService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._probe: asyncio.Task[bool] | None = None

    async def database_answers(self) -> bool:
        probe = self._probe
        if probe is None or probe.done():
            probe = self._probe = asyncio.create_task(self._ask())
        done, _ = await asyncio.wait({probe}, timeout=READY_TIMEOUT_S)
        if not done:
            logger.warning("readiness check: the database did not answer within %s s", READY_TIMEOUT_S)
            return False
        return probe.result()

    async def _ask(self) -> bool:
        try:
            return await self._db.fetchval("SELECT 1") == 1
        except Exception as exc:  # any failure means "not ready", never a 500
            logger.warning("readiness check: the database does not answer: %r", exc)
            return False
