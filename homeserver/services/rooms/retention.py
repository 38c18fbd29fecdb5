"""Erasing redacted content once the redaction window has passed.

Reads apply redactions at once; the original PDU stays stored for the window (so moderators
can review abuse), then this job replaces it with the redacted form, which keeps the
event's hashes and signatures verifiable. Runs in batches, off the request path.
"""

from __future__ import annotations

import asyncio
import logging

from homeserver.config import RetentionConfig
from homeserver.core.redaction import redact
from homeserver.core.room_versions import get_room_version
from homeserver.services.clock import Clock
from storage.events import EventStore

logger = logging.getLogger(__name__)

BATCH = 500
INTERVAL_S = 3600


class RetentionService:
    def __init__(self, events: EventStore, clock: Clock, config: RetentionConfig) -> None:
        self._events = events
        self._clock = clock
        self._config = config

    async def prune_redacted(self) -> int:
        """Erase what is past the window; returns how many events were pruned."""
        window = self._config.redaction_retention_period_ms
        if window is None:
            return 0
        pruned = 0
        while True:
            batch = await self._events.redactions_to_prune(self._clock.now_ms() - window, BATCH)
            for redaction_id, event_id, room_version, pdu in batch:
                await self._events.replace_with_redacted(redaction_id, event_id, redact(pdu, get_room_version(room_version)))
            pruned += len(batch)
            if len(batch) < BATCH:
                return pruned

    async def run_forever(self) -> None:
        while True:
            try:
                count = await self.prune_redacted()
                if count:
                    logger.info("erased the content of %d redacted events", count)
            except Exception:  # keep the job alive; the next round retries
                logger.exception("redaction pruning failed")
            await asyncio.sleep(INTERVAL_S)
