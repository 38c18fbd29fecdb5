"""Delayed events (MSC4140): a user schedules an event now, the server sends it later.

Use cases: schedule a message or state event (the `org.matrix.msc4140.delay` parameter of the
send and state endpoints), list a user's scheduled events, cancel, restart (due again `delay`
from now) or send one at once; and the scheduler that sends them when due, as their user from
the device that scheduled them. Element Call schedules its "left the call" state this way, and
restarts it while the client is alive.

Invariants:
- scheduled events live in the database, so they outlive the process: at start the scheduler
  sends what came due while the server was down;
- each is sent once, even with several processes on one database: a scheduler claims due rows
  atomically (FOR UPDATE SKIP LOCKED) before sending. A claim left by a process that died
  mid-send goes stale after CLAIM_MS and is taken over; that second send is idempotent (a
  message carries a transaction ID made of its delay ID; a state event identical to the current
  state is not sent again);
- the scheduler sleeps until the next due time, woken only when a sooner event is added here
  or, through replication, in another process: an idle server does no work;
- as Synapse: another user's new state cancels the scheduled state events for the same
  (room, type, state key); of several due state events for the same state, only the first is
  sent; the management endpoints act on a delay ID alone without an access token (the ID is
  the capability an SFU is given), and with a token only on the requester's own events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from homeserver.config import DelayedEventsConfig
from homeserver.core.builder import MAX_EVENT_BYTES
from homeserver.core.canonical_json import NonCanonicalJSON, check_strict, encode_canonical_json
from homeserver.core.events import Event
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.messaging import MAX_STATE_KEY_LENGTH, MAX_TYPE_LENGTH, MessagingService
from homeserver.services.rooms.state import RoomStateCache
from storage.accounts import AccountStore
from storage.delayed_events import DelayedEvent, DelayedEventStore

logger = logging.getLogger(__name__)

# A claim older than this belongs to a process that died while sending: another may take it.
CLAIM_MS = 30_000
# Due events claimed per round trip.
BATCH = 100
# After a database error, the scheduler tries again this much later.
RETRY_MS = 5_000
# The transaction ID of a delayed message event, so that a second send after a crash finds the first.
TXN_PREFIX = "org.matrix.msc4140.delay:"
ACTIONS = ("cancel", "restart", "send")


class DelayedEventService:
    def __init__(self, store: DelayedEventStore, rooms: RoomStateCache, messaging: MessagingService,
                 accounts: AccountStore, clock: Clock, config: DelayedEventsConfig, *,
                 limiter: RateLimiter) -> None:
        self._store = store
        self._rooms = rooms
        self._messaging = messaging
        self._accounts = accounts
        self._clock = clock
        self._max_delay_ms = config.max_delay_ms
        self._max_per_user = config.max_delayed_events_per_user
        self._limiter = limiter
        self._wakeup = asyncio.Event()
        self._next_ts: int | None = None  # when the scheduler looks next; None: when woken
        self._task: asyncio.Task[None] | None = None
        # Set by the app: tell the other processes' schedulers of a new due time.
        self.replicate: Callable[[int], None] | None = None

    @property
    def enabled(self) -> bool:
        return self._max_delay_ms is not None

    def capability(self) -> dict[str, int]:
        """What /capabilities says of delayed events (as Synapse: 0 when they are off)."""
        return {"max_delay_ms": self._max_delay_ms or 0, "max_scheduled": self._max_per_user}

    # --- scheduling -------------------------------------------------------------------------

    async def schedule(self, requester: Requester, room_id: str, event_type: str, state_key: str | None,
                       content: dict[str, Any], delay_ms: int, *, txn_id: str | None = None) -> str:
        """Schedule an event `delay_ms` from now; its delay ID. A retried message send (same
        device, room and `txn_id`) gets the delay ID it already has."""
        # As Synapse: scheduling counts as sending a message, whether or not it is allowed.
        await self._limiter.check_message(requester.user_id, is_admin=requester.is_admin)
        max_delay = self._max_delay_ms
        if max_delay is None:
            raise MatrixError(403, Codes.FORBIDDEN, "Delayed events are not enabled on this server")
        if delay_ms > max_delay:
            # The form matrix-js-sdk (Element Call) reads to retry with a delay the server allows.
            raise MatrixError(400, Codes.UNKNOWN, f"The delay must not be longer than {max_delay} ms",
                              **{"org.matrix.msc4140.errcode": "M_MAX_DELAY_EXCEEDED",
                                 "org.matrix.msc4140.max_delay": max_delay})
        await self._check_sendable(room_id, event_type, state_key, content)
        now = self._clock.now_ms()
        event = DelayedEvent(secrets.token_urlsafe(24), requester.user_id, requester.device_id, room_id,
                             event_type, state_key, content, delay_ms, now + delay_ms)
        added = await self._store.add(event, txn_id, self._max_per_user)
        if added.delay_id is None:
            due = await self._store.due_when_below_limit(requester.user_id, self._max_per_user)
            wait = {"retry_after_ms": due - now} if due is not None and due > now else {}
            raise MatrixError(429, Codes.LIMIT_EXCEEDED,
                              f"You may have at most {self._max_per_user} delayed events scheduled", **wait)
        if added.new:
            self._due_at(event.send_ts)
            if self.replicate is not None:
                self.replicate(event.send_ts)
        return added.delay_id

    async def _check_sendable(self, room_id: str, event_type: str, state_key: str | None,
                              content: dict[str, Any]) -> None:
        """What can be checked before the event is built, as Synapse does when scheduling: the
        room exists and the event is well formed. Whether the user may send it is decided when
        it is sent."""
        if not event_type or len(event_type.encode()) > MAX_TYPE_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Event type must be 1-{MAX_TYPE_LENGTH} bytes")
        if state_key is not None and len(state_key.encode()) > MAX_STATE_KEY_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, f"state_key is longer than {MAX_STATE_KEY_LENGTH} bytes")
        if event_type == "m.room.member" and state_key is not None \
                and not isinstance(content.get("membership"), str):
            raise MatrixError(400, Codes.BAD_JSON, "m.room.member content needs a 'membership'")
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if snap.version.auth.strict_canonical_json:
            try:
                check_strict(content)
            except NonCanonicalJSON as err:
                raise MatrixError(400, Codes.BAD_JSON, str(err)) from None
        if len(encode_canonical_json(content)) > MAX_EVENT_BYTES:
            raise MatrixError(413, Codes.TOO_LARGE, f"The event would be larger than {MAX_EVENT_BYTES} bytes")

    # --- management -------------------------------------------------------------------------

    async def list_for(self, requester: Requester) -> list[dict[str, Any]]:
        """The requester's scheduled events, soonest due first."""
        await self._limiter.check(Action.DELAYED_EVENT_MGMT, requester.user_id, user_id=requester.user_id)
        return [_describe(event) for event in await self._store.list_for_user(requester.user_id)]

    async def update(self, requester: Requester | None, client_ip: str, delay_id: str, action: Any) -> None:
        """Cancel, restart or send now a scheduled event: as its owner (`requester`), or by its
        delay ID alone without an access token. 404 M_NOT_FOUND when there is no such event
        waiting (sent, cancelled, being sent, or another user's)."""
        if action is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "'action' is required")
        if action not in ACTIONS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"'action' must be one of {', '.join(ACTIONS)}")
        user_id = requester.user_id if requester is not None else None
        await self._limiter.check(Action.DELAYED_EVENT_MGMT, user_id or client_ip, user_id=user_id)
        if action == "cancel":
            found = await self._store.cancel(delay_id, user_id)
        elif action == "restart":
            found = await self._store.restart(delay_id, user_id, self._clock.now_ms()) is not None
        else:
            event = await self._store.claim(delay_id, user_id, self._clock.now_ms())
            found = event is not None
            if event is not None:
                try:
                    await self._send(event)
                finally:
                    await self._store.delete(event.delay_id)
        if not found:
            raise MatrixError(404, Codes.NOT_FOUND, "No such delayed event")

    # --- state changes ------------------------------------------------------------------------

    async def on_persisted(self, batch: list[tuple[Event, int]]) -> None:
        """New state from a user cancels the other users' scheduled events for the same state."""
        if self._max_delay_ms is None:
            return
        changes = [(e.room_id, e.type, e.state_key, e.sender) for e, _ in batch if e.state_key is not None]
        if not changes:
            return
        try:
            cancelled = await self._store.cancel_for_state(changes)
        except Exception:  # a listener must not fail the send that already committed
            logger.exception("could not cancel delayed state events")
            return
        if cancelled:
            logger.debug("new state cancelled %d delayed events", cancelled)

    # --- the scheduler ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def due_elsewhere(self, send_ts: int) -> None:
        """Another process scheduled an event due at `send_ts`."""
        self._due_at(send_ts)

    def _due_at(self, send_ts: int) -> None:
        if self._task is not None and (self._next_ts is None or send_ts < self._next_ts):
            self._wakeup.set()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                next_ts = await self.send_due()
            except Exception:  # the database is away: try again a little later
                logger.exception("could not send due delayed events")
                next_ts = self._clock.now_ms() + RETRY_MS
            self._next_ts = next_ts
            timeout = None if next_ts is None else max(0, next_ts - self._clock.now_ms() + 1) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def send_due(self) -> int | None:
        """Send every event due now; when the next one will be (None: none is scheduled)."""
        while True:
            now = self._clock.now_ms()
            batch = await self._store.claim_due(now, now - CLAIM_MS, BATCH)
            await self._send_claimed(batch, now)
            if len(batch) < BATCH:
                return await self._store.next_due(CLAIM_MS)

    async def _send_claimed(self, batch: list[DelayedEvent], claimed_ts: int) -> None:
        waiting = [event.delay_id for event in batch]
        sent_state: set[tuple[str, str, str]] = set()
        try:
            for event in batch:
                key = (event.room_id, event.event_type, event.state_key) if event.state_key is not None else None
                if key not in sent_state:  # as Synapse: the first due event for a piece of state wins
                    try:
                        await self._send(event)
                        if key is not None:
                            sent_state.add(key)
                    except MatrixError as err:
                        logger.info("delayed event %s of %s not sent: %s", event.delay_id, event.user_id, err)
                    except Exception:
                        logger.exception("delayed event %s of %s not sent", event.delay_id, event.user_id)
                await self._store.delete(event.delay_id)
                waiting.pop(0)
        except asyncio.CancelledError:  # stopping: the others go back to wait (for any process)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release(waiting, claimed_ts))
            raise

    async def _send(self, event: DelayedEvent) -> None:
        """Send a claimed event as its user, from the device that scheduled it."""
        account = await self._accounts.get_user(event.user_id)
        if account is None or account.deactivated:
            raise MatrixError(403, Codes.FORBIDDEN, "The account is deactivated")
        requester = Requester(user_id=event.user_id, device_id=event.device_id or "", token_id=0,
                              is_admin=account.is_admin, is_guest=account.is_guest)
        if event.state_key is None:
            txn_id = TXN_PREFIX + event.delay_id if event.device_id else None
            await self._messaging.send_message(requester, event.room_id, event.event_type, txn_id, event.content)
        else:
            await self._messaging.send_state(requester, event.room_id, event.event_type, event.state_key,
                                             event.content)


def _describe(event: DelayedEvent) -> dict[str, Any]:
    """A scheduled event as GET .../delayed_events lists it."""
    described: dict[str, Any] = {"delay_id": event.delay_id, "room_id": event.room_id, "type": event.event_type}
    if event.state_key is not None:
        described["state_key"] = event.state_key
    described.update(delay=event.delay_ms, running_since=event.send_ts - event.delay_ms, content=event.content)
    return described
