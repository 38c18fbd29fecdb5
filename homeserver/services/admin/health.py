"""Health checks for load balancers and orchestrators.

Liveness is the process answering at all (no I/O, so a slow database never gets a live
process restarted); readiness is the database answering a trivial query within
READY_TIMEOUT_S, so traffic goes elsewhere while it does not.
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

    async def database_answers(self) -> bool:
        try:
            return await asyncio.wait_for(self._db.fetchval("SELECT 1"), READY_TIMEOUT_S) == 1
        except Exception as exc:  # any failure means "not ready", never a 500
            logger.warning("readiness check: the database does not answer: %r", exc)
            return False
