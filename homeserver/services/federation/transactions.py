"""PUT /send/{txnId}: a transaction of PDUs and EDUs from another server.

Use case (https://spec.matrix.org/v1.19/server-server-api/#transactions): each PDU is
processed on its own and gets its own result — a malformed, forged or unauthorised PDU is
dropped or rejected without affecting the rest (a dropped one's result is an error; a rejected
or soft-failed one was handled, and its result is empty, as Synapse answers); EDUs go to the EDU service. A retried
transaction (same origin and txnId) gets the first answer again without being processed twice.

Invariants: one transaction per origin at a time (as Synapse), and within a room the PDUs are
processed one at a time, in the order given, under the room's lock; different rooms proceed
concurrently. Nothing a peer sends raises out of here except a malformed transaction body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.federation.intake import FederationIntake, IntakeError
from homeserver.services.federation.membership import FederationMembership
from homeserver.services.federation.pdu_checks import PduChecker, PduDropped, claimed_event_id, event_id_for_result
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.state import RoomStateCache
from homeserver.stats import FederationTraffic
from storage.federation_rooms import FederationRoomStore

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
# The result key of a PDU whose event ID could not be determined.
UNKNOWN_EVENT = "unknown"

ReceiveEdus = Callable[[str, list[Any]], Awaitable[None]]
CheckAcl = Callable[[str, str], Awaitable[None]]


class FederationTransactions:
    def __init__(self, events: EventService, rooms: RoomStateCache, intake: FederationIntake, checker: PduChecker,
                 membership: FederationMembership, store: FederationRoomStore, clock: Clock, *,
                 receive_edus: ReceiveEdus | None = None, check_acl: CheckAcl | None = None,
                 peer_is_up: Callable[[str], None] | None = None) -> None:
        self._events = events
        self._rooms = rooms
        self._intake = intake
        self._checker = checker
        self._membership = membership
        self._store = store
        self._clock = clock
        self._receive_edus = receive_edus
        self._check_acl = check_acl
        self._peer_is_up = peer_is_up
        self._origin_locks: dict[str, asyncio.Lock] = {}
        # Transactions per origin by result (processed, or repeated: a retry answered from
        # the saved response), and the PDUs and EDUs of the processed ones.
        self.traffic = FederationTraffic()

    async def on_send(self, origin: str, txn_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise MatrixError(400, Codes.BAD_JSON, "The transaction must be a JSON object")
        pdus, edus = body.get("pdus", []), body.get("edus", [])
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise MatrixError(400, Codes.BAD_JSON, "'pdus' and 'edus' must be lists")
        if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
            raise MatrixError(400, Codes.BAD_JSON, f"At most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs per transaction")
        if self._peer_is_up is not None:
            self._peer_is_up(origin)
        lock = self._origin_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            done = await self._store.txn_response(origin, txn_id)
            if done is not None:
                self.traffic.transactions[(origin, "repeated")] += 1
                return done
            self.traffic.transactions[(origin, "processed")] += 1
            self.traffic.pdus[origin] += len(pdus)
            self.traffic.edus[origin] += len(edus)
            by_room: dict[str, list[Any]] = {}
            results: dict[str, dict[str, Any]] = {}
            for pdu in pdus:
                room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
                if not isinstance(room_id, str):
                    logger.info("dropping a PDU without a room from %s", origin)
                    continue
                by_room.setdefault(room_id, []).append(pdu)
            outcomes = await asyncio.gather(*(self._room_pdus(origin, room_id, room_pdus)
                                              for room_id, room_pdus in by_room.items()))
            for outcome in outcomes:
                results.update(outcome)
            if edus and self._receive_edus is not None:
                try:
                    await self._receive_edus(origin, edus)
                except Exception:  # an EDU must never fail the transaction's PDUs
                    logger.exception("EDUs from %s failed", origin)
            response = {"pdus": results}
            await self._store.save_txn_response(origin, txn_id, response, self._clock.now_ms())
            return response

    async def _room_pdus(self, origin: str, room_id: str, pdus: list[Any]) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        snap = await self._rooms.snapshot(room_id)
        if snap is None or not await self._membership.is_resident(room_id):
            version = snap.version if snap is not None else None
            for pdu in pdus:
                event_id = event_id_for_result(pdu, version) or UNKNOWN_EVENT
                results[event_id] = {"error": "This server is not in the room"}
            return results
        if self._check_acl is not None:
            try:
                await self._check_acl(room_id, origin)
            except MatrixError as err:
                for pdu in pdus:
                    results[event_id_for_result(pdu, snap.version) or UNKNOWN_EVENT] = {"error": err.message}
                return results
        checked = await self._checker.check_pdus(pdus, snap.version, origin, expected_room_id=room_id)
        for pdu, result in zip(pdus, checked):
            if isinstance(result, PduDropped):
                results[result.event_id or claimed_event_id(pdu) or UNKNOWN_EVENT] = {"error": result.reason}
                continue
            try:
                async with self._events.room_lock(room_id):
                    await self._intake.process(origin, result.event)
            except IntakeError as err:
                results[result.event_id] = {"error": str(err)}
                continue
            except Exception:
                logger.exception("processing %s from %s failed", result.event_id, origin)
                results[result.event_id] = {"error": "internal error"}
                continue
            # A rejected or soft-failed event was processed: it is stored as such and its
            # result carries no error (as Synapse; errors are for PDUs we could not handle).
            results[result.event_id] = {}
        return results

