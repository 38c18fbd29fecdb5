"""Feeding application services their transactions: in order, persisted, nothing lost or doubled.

One feed per appservice with a URL. A feed's task builds the next transaction from the
streams after the feed's positions (`transactions.TransactionBuilder`), stores it and moves
the positions past it in one statement, then PUTs it to `/_matrix/app/v1/transactions/{txnId}`
with the hs_token until the appservice answers 2xx, and deletes it. Only then is the next one
built: one transaction in flight per appservice, later news waiting in the streams (so a
transaction carries everything that piled up meanwhile, up to its limits).

- A failure backs the appservice off (persisted: 2 s doubling to 512 s by default, as
  Synapse), and the same transaction (same txnId, same body) is sent again: the spec lets the
  appservice drop a txnId it processed already. A successful ping retries at once.
- After a restart, the stored transaction goes first, then the streams from the stored
  positions: every committed event reaches the appservice exactly once (up to a resend of
  the last transaction when the process died before it saw the 2xx).
- Several processes on one database: a lease per appservice lets one of them feed it.
- Typing notifications wait in memory (dropped while the appservice backs off: stale by then).

The event pipeline only wakes the feeds (`on_persisted`); the send path never waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from homeserver.config import AppServiceConfig
from homeserver.core.appservices import AppService, AppServiceRegistry
from homeserver.errors import Codes, MatrixError
from homeserver.services.appservices.client import (
    AppServiceBadStatus, AppServiceClient, AppServiceError, AppServiceTimeout,
)
from homeserver.services.appservices.transactions import TransactionBuilder
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.streams.tracker import StreamTracker
from homeserver.stats import AppServiceTraffic
from storage.appservices import AppServiceStore, StoredTxn

logger = logging.getLogger(__name__)

LEASE_MS = 5 * 60 * 1000
LEASE_POLL_S = 5.0
# An idle feed looks at the streams' positions this often (in memory) for news that came
# without a wake-up: aux-stream changes, and events another process wrote.
IDLE_POLL_S = 0.25
# Positions moved past events that concerned nobody are written at most this often.
ADVANCE_WRITE_S = 1.0
# After a stretch that concerned it not, a feed lets news pile up this long before it reads
# again: a busy server costs each feed a few reads a second, not one per event.
QUIET_PAUSE_S = 0.1
# The reason of the last failure kept for the admin view (an appservice's error body may be long).
_MAX_ERROR = 500


class _LeaseLost(Exception):
    """Another process holds the appservice's lease now."""


@dataclass
class _Feed:
    service: AppService
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    retry_now: asyncio.Event = field(default_factory=asyncio.Event)
    typing_rooms: set[str] = field(default_factory=set)
    leased_elsewhere: bool = False  # another process held the appservice's lease when last asked
    event_position: int = 0
    aux_position: int = 0
    written: tuple[int, int] = (0, 0)
    written_at: float = 0.0
    retry_last_ts: int = 0
    retry_interval: int = 0
    may_have_pending: bool = True


class AppServiceSender:
    def __init__(self, registry: AppServiceRegistry, store: AppServiceStore, builder: TransactionBuilder,
                 client: AppServiceClient, events: StreamTracker, aux: StreamTracker, clock: Clock,
                 config: AppServiceConfig) -> None:
        self._registry = registry
        self._store = store
        self._builder = builder
        self._client = client
        self._events = events
        self._aux = aux
        self._clock = clock
        self._config = config
        self._feeds = {s.id: _Feed(s) for s in registry.services if s.url is not None}
        self._ephemeral_feeds = [f for f in self._feeds.values() if f.service.wants_ephemeral]
        self._started = False
        self._stopping = False
        self._owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.traffic = AppServiceTraffic()  # for /metrics

    # --- listeners (cheap: they only wake the feeds) ------------------------------------------

    def on_persisted(self, published: list[Any]) -> None:
        """An `events.on_persisted` listener: new events may concern the appservices."""
        for feed in self._feeds.values():
            feed.wake.set()

    def typing_changed(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        """A `typing.on_any_change` listener (changes made through any process): the room's
        typers go to the feeds that take ephemeral data, unless another process feeds the
        appservice (whether the room concerns it is decided when the transaction is built)."""
        for feed in self._ephemeral_feeds:
            if not feed.leased_elsewhere and feed.retry_interval == 0:
                feed.typing_rooms.add(room_id)
                feed.wake.set()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for feed in self._feeds.values():
            feed.task = asyncio.create_task(self._run(feed))

    async def stop(self) -> None:
        """Stop feeding; what was not delivered is delivered by the next start."""
        self._stopping = True
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._client.close()

    def retry_now(self, appservice_id: str) -> None:
        """The appservice is reachable again (it answered a ping): stop backing off."""
        feed = self._feeds.get(appservice_id)
        if feed is not None:
            feed.retry_now.set()
            feed.wake.set()

    # --- ping (spec: "Pinging") ----------------------------------------------------------------

    async def ping(self, requester: Requester, appservice_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_matrix/client/v1/appservice/{appserviceId}/ping: we ping the appservice."""
        service = self._registry.by_id(requester.app_service_id) if requester.app_service_id else None
        if service is None:
            raise MatrixError(403, Codes.FORBIDDEN, "Only application services can use the /appservice/ping endpoint")
        if service.id != appservice_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Mismatching application service ID in path")
        if service.url is None:
            raise MatrixError(400, Codes.URL_NOT_SET, "The application service does not have a URL set")
        transaction_id = body.get("transaction_id")
        if transaction_id is not None and not isinstance(transaction_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "'transaction_id' must be a string")
        started = time.monotonic()
        try:
            await self._client.ping(service, transaction_id)
        except AppServiceTimeout as err:
            raise MatrixError(504, Codes.CONNECTION_TIMEOUT, str(err)) from None
        except AppServiceBadStatus as err:
            error = MatrixError(502, Codes.BAD_STATUS, f"Ping returned status {err.status}", body=err.body)
            error.extra["status"] = err.status  # (a keyword argument would be MatrixError's own status)
            raise error from None
        except AppServiceError as err:
            raise MatrixError(502, Codes.CONNECTION_FAILED, str(err)) from None
        self.retry_now(service.id)
        return {"duration_ms": int((time.monotonic() - started) * 1000)}

    # --- the feed ------------------------------------------------------------------------------

    async def _run(self, feed: _Feed) -> None:
        service = feed.service
        leased_until = 0
        try:
            await self._store.ensure(service.id, self._events.current, self._aux.current)
            while not self._stopping:
                try:
                    leased_until = await self._step(feed, leased_until)
                except _LeaseLost:
                    leased_until = 0
                    feed.leased_elsewhere = True
                except asyncio.CancelledError:
                    raise
                except Exception:  # e.g. the database is gone for a moment: look again later
                    logger.exception("the feed of appservice %s failed; trying again", service.id)
                    leased_until = 0
                    await self._sleep(feed, LEASE_POLL_S)
        finally:
            if leased_until:
                with contextlib.suppress(Exception):
                    await self._flush_positions(feed, force=True)
                    await self._store.release_lease(service.id, self._owner)

    async def _step(self, feed: _Feed, leased_until: int) -> int:
        """One turn of the feed: the lease, the stored transaction if any, else the next one.
        Returns until when the lease is held (0: not held)."""
        service = feed.service
        now = self._clock.now_ms()
        if leased_until - now < LEASE_MS // 2:
            if not await self._store.acquire_lease(service.id, self._owner, now, now + LEASE_MS):
                feed.leased_elsewhere = True
                feed.typing_rooms.clear()
                await self._sleep(feed, LEASE_POLL_S)
                return 0
            feed.leased_elsewhere = False
            if not leased_until:
                await self._load(feed)
            leased_until = now + LEASE_MS
        if feed.may_have_pending:
            txn = await self._store.oldest_txn(service.id)
            if txn is not None:
                await self._wait_for_retry(feed)
                await self._deliver(feed, txn)
                return leased_until
            feed.may_have_pending = False
        if not await self._build_next(feed):
            await self._flush_positions(feed)
            await self._sleep(feed, IDLE_POLL_S)
        return leased_until

    async def _load(self, feed: _Feed) -> None:
        state = await self._store.state(feed.service.id)
        assert state is not None
        feed.event_position, feed.aux_position = state.event_position, state.aux_position
        feed.written = (state.event_position, state.aux_position)
        feed.retry_last_ts, feed.retry_interval = state.retry_last_ts, state.retry_interval
        feed.may_have_pending = True

    async def _build_next(self, feed: _Feed) -> bool:
        """Build and store the next transaction if there is news; False when idle."""
        service = feed.service
        events_upto, aux_upto = self._events.current, self._aux.current
        wants_aux = service.wants_ephemeral or service.msc3202
        if not (events_upto > feed.event_position or (wants_aux and aux_upto > feed.aux_position)
                or feed.typing_rooms):
            return False
        typing_rooms, feed.typing_rooms = feed.typing_rooms, set()
        batch = await self._builder.build(service, feed.event_position, feed.aux_position, events_upto, aux_upto,
                                          typing_rooms)
        if batch.empty:
            feed.event_position, feed.aux_position = batch.event_position, batch.aux_position
            await self._flush_positions(feed)
            if batch.event_position >= events_upto:  # caught up (a long backlog is read at full speed)
                await asyncio.sleep(QUIET_PAUSE_S)
            return True
        txn_id = await self._store.create_txn(service.id, self._owner, batch.event_position, batch.aux_position,
                                              batch.body(service), len(batch.events), self._clock.now_ms())
        if txn_id is None:  # the lease went to another process: it carries on from the stored positions
            raise _LeaseLost
        feed.event_position, feed.aux_position = batch.event_position, batch.aux_position
        feed.written = (batch.event_position, batch.aux_position)
        feed.may_have_pending = True
        return True

    async def _flush_positions(self, feed: _Feed, *, force: bool = False) -> None:
        """Write positions moved past news that concerned nobody (at most once a second)."""
        positions = (feed.event_position, feed.aux_position)
        if positions == feed.written or (not force and time.monotonic() - feed.written_at < ADVANCE_WRITE_S):
            return
        if await self._store.advance(feed.service.id, self._owner, *positions):
            feed.written, feed.written_at = positions, time.monotonic()

    async def _wait_for_retry(self, feed: _Feed) -> None:
        """Wait out the back-off (a successful ping ends it early)."""
        if feed.retry_interval == 0 or feed.retry_now.is_set():
            feed.retry_now.clear()
            return
        wait_ms = feed.retry_last_ts + feed.retry_interval - self._clock.now_ms()
        if wait_ms <= 0:
            return
        feed.typing_rooms.clear()  # stale by the time it is back
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(feed.retry_now.wait(), wait_ms / 1000)
        feed.retry_now.clear()

    async def _deliver(self, feed: _Feed, txn: StoredTxn) -> None:
        service = feed.service
        try:
            await self._client.push(service, txn.txn_id, txn.body)
        except AppServiceError as err:
            self.traffic.transactions[(service.id, "failed")] += 1
            interval = min(self._config.retry_max_interval_ms,
                           max(self._config.retry_min_interval_ms, feed.retry_interval * 2))
            logger.info("transaction %d to appservice %s failed (%s); retrying in %d ms",
                        txn.txn_id, service.id, err, interval)
            feed.retry_last_ts, feed.retry_interval = self._clock.now_ms(), interval
            await self._store.record_failure(service.id, feed.retry_last_ts, interval, str(err)[:_MAX_ERROR])
            return
        self.traffic.transactions[(service.id, "sent")] += 1
        self.traffic.events[service.id] += txn.event_count
        await self._store.complete_txn(service.id, txn.txn_id, self._clock.now_ms())
        if feed.retry_interval:
            logger.info("appservice %s is reachable again", service.id)
            feed.retry_last_ts = feed.retry_interval = 0
        logger.debug("sent transaction %d to appservice %s (%d events)", txn.txn_id, service.id, txn.event_count)

    async def _sleep(self, feed: _Feed, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(feed.wake.wait(), seconds)
        feed.wake.clear()
