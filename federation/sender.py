"""Outbound federation: PDUs and EDUs to other servers, in transactions, never lost.

`FederationSender.send_pdu` / `send_edu` write the item to a persisted queue per destination
(storage.federation_queue) and kick that destination's delivery task. The task sends the
queue in order as transactions (`PUT /_matrix/federation/v1/send/{txnId}`) of at most 50 PDUs
and 100 EDUs (the spec's limits), removing what the peer acknowledged with a 200. A failure
backs the destination off exponentially (persisted: retry_last_ts, retry_interval) while its
queue keeps growing; the queue is delivered in order once the peer answers again (catch-up),
on time or sooner when `wake(destination)` says the peer just talked to us. `start()` resumes
every destination that has a queue, so a restart of either server loses nothing (a peer down
for long gets only the latest PDU of each room, and fetches the rest itself). When several
processes of the server share the database, a lease per destination lets one of them deliver
its queue at a time (no duplicated or reordered transactions).

Typing notifications are ephemeral: they are kept in memory only and dropped when the
destination is backing off (they would be stale by the time it came back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from federation.client import DeniedError, FederationClient, FederationError, RemoteError, path
from homeserver.stats import FederationTraffic
from storage.database import Database
from storage.federation_queue import FederationQueueStore, QueuedItem, RetryState

logger = logging.getLogger(__name__)

# Spec, "Transactions": at most 50 PDUs and 100 EDUs per transaction.
MAX_PDUS_PER_TXN = 50
MAX_EDUS_PER_TXN = 100
EPHEMERAL_EDU_TYPES = frozenset({"m.typing"})
# A peer that refuses a transaction's body with these will refuse it again: the batch is
# dropped rather than blocking the queue forever. Anything else (unreachable, 5xx, 401 over a
# key it could not fetch yet, 403, 429) is worth retrying later.
_UNRETRYABLE_STATUSES = (400, 413)
# Several processes of one server may share the queue: the one holding a destination's lease
# delivers to it; the lease outlives the longest request and is renewed before each batch.
LEASE_MS = 5 * 60 * 1000
LEASE_POLL_S = 1.0
# A destination that stays down does not collect PDUs without end: past this many, only the
# latest PDU of each room is kept (as Synapse's catch-up). The peer fetches the events before
# it with get_missing_events (or the state at the gap), as for any event with unknown prevs.
CATCH_UP_MAX_PDUS = 500


class NowMs(Protocol):
    def now_ms(self) -> int: ...


@dataclass
class _Destination:
    task: asyncio.Task[None] | None = None
    new_items: bool = False  # queued while the task was reading the queue: read again
    wake_now: asyncio.Event = field(default_factory=asyncio.Event)
    ephemeral: dict[Any, dict[str, Any]] = field(default_factory=dict)  # key -> EDU, latest wins
    retry: RetryState | None = None  # as persisted; None until read


class FederationSender:
    def __init__(self, db: Database, store: FederationQueueStore, client: FederationClient, clock: NowMs,
                 server_name: str, *, domain_allowlist: Iterable[str] | None = None,
                 retry_min_interval_ms: int = 30_000, retry_max_interval_ms: int = 24 * 3600 * 1000,
                 catch_up_max_pdus: int = CATCH_UP_MAX_PDUS) -> None:
        self._db = db
        self._store = store
        self._client = client
        self._clock = clock
        self._server_name = server_name
        self._allowed = frozenset(domain_allowlist) if domain_allowlist is not None else None
        self._retry_min = retry_min_interval_ms
        self._retry_max = retry_max_interval_ms
        self._catch_up_max_pdus = catch_up_max_pdus
        self._destinations: dict[str, _Destination] = {}
        self._started = False
        self._stopping = False
        self._resume: asyncio.Task[None] | None = None
        # Transaction IDs: unique per destination across restarts (the start time) and within
        # this process (a counter).
        self._txn_prefix = str(clock.now_ms())
        self._txn_counter = 0
        self._owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        # Transactions per destination by result (sent, refused: dropped for good, failed:
        # to be retried), and the PDUs and EDUs of the sent ones.
        self.traffic = FederationTraffic()

    # --- queueing ----------------------------------------------------------------------------

    async def send_pdu(self, pdu: dict[str, Any], destinations: Iterable[str], *,
                       stream_ordering: int | None = None) -> None:
        """Queue one PDU for these servers (ourselves and servers we may not talk to are skipped).
        `stream_ordering`: the event's, for the admin API's "latest delivered" per destination."""
        room_id = pdu.get("room_id")
        await self._enqueue(self._filter(destinations), "pdu", pdu, room_id if isinstance(room_id, str) else None,
                            stream_ordering)

    async def send_edu(self, destinations: Iterable[str], edu_type: str, content: dict[str, Any],
                       key: Any = None) -> None:
        """Queue one EDU for these servers. Typing EDUs stay in memory; `key` lets a newer
        ephemeral EDU replace an older one not yet sent (typing: the (room, user) pair)."""
        targets = self._filter(destinations)
        edu = {"edu_type": edu_type, "content": content}
        if edu_type in EPHEMERAL_EDU_TYPES:
            for destination in targets:
                state = self._state(destination)
                if state.retry is not None and state.retry.retry_interval:
                    continue  # backing off: it would be stale by the time the destination is retried
                state.ephemeral[key if key is not None else object()] = edu
                self._kick(destination)
            return
        await self._enqueue(targets, "edu", edu)

    def wake(self, destination: str) -> None:
        """The destination just talked to us, so it is up: retry now instead of after its back-off."""
        if not self._started or self._stopping or destination == self._server_name:
            return
        state = self._state(destination)
        if state.task is None and state.retry is not None and state.retry.retry_interval == 0:
            return  # healthy and idle: nothing of ours waits for it (the common case, cheaply)
        state.wake_now.set()
        self._kick(destination)

    async def reset_retry(self, destination: str) -> bool:
        """An admin says: forget the destination's back-off and try it now. False when it was
        not backing off (nothing changed)."""
        if not await self._store.reset_retry(destination):
            return False
        state = self._destinations.get(destination)
        if state is not None:
            state.retry = RetryState(0, 0)  # the next failure starts again from the minimum
        if self._started and not self._stopping:
            state = self._state(destination)
            state.wake_now.set()  # a delivery task waiting out the back-off goes now
            self._kick(destination)  # else one starts, to send what is queued (if anything)
        return True

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Begin delivering: every destination with queued items (from before a restart) resumes."""
        if self._started:
            return
        self._started = True
        self._resume = asyncio.create_task(self._resume_all())
        for destination, state in self._destinations.items():  # queued before start
            if state.new_items or state.ephemeral:
                self._kick(destination)

    async def stop(self) -> None:
        """Stop the delivery tasks; what they had not delivered stays queued for the next start."""
        self._stopping = True
        tasks = [s.task for s in self._destinations.values() if s.task is not None]
        if self._resume is not None:
            tasks.append(self._resume)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def idle(self) -> None:
        """Wait until no delivery task runs (tests; a backing-off destination keeps one running)."""
        while True:
            tasks = [s.task for s in self._destinations.values() if s.task is not None]
            if self._resume is not None and not self._resume.done():
                tasks.append(self._resume)
            if not tasks:
                return
            await asyncio.wait(tasks)

    # --- internals ---------------------------------------------------------------------------

    def _filter(self, destinations: Iterable[str]) -> list[str]:
        return sorted({d for d in destinations if d and d != self._server_name
                       and (self._allowed is None or d in self._allowed)})

    def _state(self, destination: str) -> _Destination:
        state = self._destinations.get(destination)
        if state is None:
            state = self._destinations[destination] = _Destination()
        return state

    async def _enqueue(self, destinations: list[str], kind: str, body: dict[str, Any],
                       room_id: str | None = None, stream_ordering: int | None = None) -> None:
        if not destinations:
            return
        await self._store.enqueue(destinations, kind, body, self._clock.now_ms(), room_id, stream_ordering)

        async def kick() -> None:  # after the rows are committed, or the task would not see them
            for destination in destinations:
                self._state(destination).new_items = True
                self._kick(destination)
        await self._db.after_commit(kick)

    def _kick(self, destination: str) -> None:
        state = self._state(destination)
        state.new_items = True
        if not self._started or self._stopping or state.task is not None:
            return
        state.task = asyncio.create_task(self._deliver(destination, state))
        state.task.add_done_callback(lambda _t: self._task_done(destination, state))

    def _task_done(self, destination: str, state: _Destination) -> None:
        state.task = None
        # Items queued after the task's last read but before it ended: start another.
        if state.new_items and not self._stopping:
            self._kick(destination)

    async def _resume_all(self) -> None:
        try:
            for destination in await self._store.destinations_with_queue():
                if destination in self._filter([destination]):
                    self._kick(destination)
                else:  # no longer allowed (domain_allowlist changed): never deliverable
                    await self._store.drop_destination(destination)
        except Exception:
            logger.exception("could not resume the federation queue")

    async def _deliver(self, destination: str, state: _Destination) -> None:
        """Send the destination's queue, batch after batch, backing off on failure."""
        state.retry = None  # another process may have moved it since this one last looked
        leased = False
        try:
            while not self._stopping:
                await self._wait_for_retry(destination, state)
                state.new_items = False
                now = self._clock.now_ms()
                leased = await self._store.acquire_lease(destination, self._owner, now, now + LEASE_MS)
                if not leased:
                    # Another process of this server delivers to it, from the same queue: our
                    # items go with its batches. Look again until the queue is empty.
                    await asyncio.sleep(LEASE_POLL_S)
                    if not state.ephemeral and await self._store.queued_count(destination) == 0:
                        return
                    continue
                items = await self._store.next_batch(destination, MAX_PDUS_PER_TXN, MAX_EDUS_PER_TXN)
                ephemeral = self._take_ephemeral(state, MAX_EDUS_PER_TXN - sum(i.kind == "edu" for i in items))
                if not items and not ephemeral:
                    if state.new_items:
                        continue
                    return
                if await self._transmit(destination, items, ephemeral):
                    if items:
                        await self._store.remove(destination, [i.item_id for i in items], delivered=True)
                else:
                    state.ephemeral.clear()
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the database is gone: the next queued item starts a new task
            state.new_items = False
            logger.exception("federation delivery to %s stopped", destination)
        finally:
            if leased:
                with contextlib.suppress(Exception):
                    await self._store.release_lease(destination, self._owner)

    async def _wait_for_retry(self, destination: str, state: _Destination) -> None:
        if state.retry is None:
            state.retry = await self._store.retry_state(destination) or RetryState(0, 0)
        retry = state.retry
        if retry.retry_interval == 0 or state.wake_now.is_set():
            state.wake_now.clear()
            return
        wait_ms = retry.retry_last_ts + retry.retry_interval - self._clock.now_ms()
        if wait_ms <= 0:
            return
        state.ephemeral.clear()  # stale by the time the destination is retried
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(state.wake_now.wait(), wait_ms / 1000)
        state.wake_now.clear()

    @staticmethod
    def _take_ephemeral(state: _Destination, room: int) -> list[dict[str, Any]]:
        taken = []
        for key in list(state.ephemeral)[:max(room, 0)]:
            taken.append(state.ephemeral.pop(key))
        return taken

    async def _transmit(self, destination: str, items: list[QueuedItem], ephemeral: list[dict[str, Any]]) -> bool:
        """PUT one transaction. True when the items may leave the queue (delivered, or refused
        for good); False after a failure worth retrying (the destination now backs off)."""
        self._txn_counter += 1
        txn_id = f"{self._txn_prefix}.{self._txn_counter}"
        pdus = [i.body for i in items if i.kind == "pdu"]
        edus = [i.body for i in items if i.kind == "edu"] + ephemeral
        body = {"origin": self._server_name, "origin_server_ts": self._clock.now_ms(), "pdus": pdus, "edus": edus}
        try:
            response = await self._client.put_json(
                destination, path("/_matrix/federation/v1/send/{}", txn_id), body)
        except DeniedError:
            logger.info("federation with %s is not allowed: dropping its queue", destination)
            await self._store.drop_destination(destination)
            return True
        except RemoteError as err:
            if err.status in _UNRETRYABLE_STATUSES:
                logger.warning("%s refused transaction %s (%s): dropping its %d PDUs and %d EDUs",
                               destination, txn_id, err, len(pdus), len(edus))
                self.traffic.transactions[(destination, "refused")] += 1
                return True
            await self._failed(destination, err)
            return False
        except FederationError as err:
            await self._failed(destination, err)
            return False
        except Exception as err:  # a bug: back off as for a failure rather than spin or stall
            logger.exception("transaction %s to %s failed unexpectedly", txn_id, destination)
            await self._failed(destination, err)
            return False
        traffic = self.traffic
        traffic.transactions[(destination, "sent")] += 1
        traffic.pdus[destination] += len(pdus)
        traffic.edus[destination] += len(edus)
        await self._succeeded(destination)
        results = response.get("pdus") if isinstance(response, dict) else None
        if isinstance(results, dict):
            for event_id, result in results.items():
                if isinstance(result, dict) and result.get("error"):
                    # The peer rejected that event; sending it again would not change its mind.
                    logger.info("%s rejected %s: %s", destination, event_id, result["error"])
        logger.debug("sent transaction %s to %s: %d PDUs, %d EDUs", txn_id, destination, len(pdus), len(edus))
        return True

    async def _failed(self, destination: str, err: Exception) -> None:
        self.traffic.transactions[(destination, "failed")] += 1
        state = self._state(destination)
        previous = state.retry.retry_interval if state.retry is not None else 0
        interval = min(self._retry_max, max(self._retry_min, previous * 2))
        logger.info("transaction to %s failed (%s); retrying in %d ms", destination, err, interval)
        now = self._clock.now_ms()
        await self._store.record_failure(destination, now, interval)
        state.retry = RetryState(now, interval)
        if await self._store.queued_count(destination, "pdu") > self._catch_up_max_pdus:
            dropped = await self._store.keep_latest_pdu_per_room(destination)
            logger.info("%s is down: keeping only its latest PDU per room (%d older ones dropped)",
                        destination, dropped)

    async def _succeeded(self, destination: str) -> None:
        state = self._state(destination)
        if state.retry is None or state.retry.retry_interval != 0:
            await self._store.record_success(destination, self._clock.now_ms())
            state.retry = RetryState(0, 0)
