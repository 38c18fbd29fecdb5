"""Receiving PDUs from other servers: the intake pipeline (DESIGN.md, "Federation in").

Use case: every PDU another server hands us — in a PUT /send transaction, a send_join or
make_join answer, a backfill or get_missing_events response, a state or auth chain — goes
through the same checks (https://spec.matrix.org/v1.19/server-server-api/#checks-performed-on-receipt-of-a-pdu)
before it may touch a room. This module holds the first stage:

- `PduChecker.check_pdu` — checks 1-3: the PDU is valid for its room version (else it is
  dropped: `InvalidPduFormat`), every server that must sign it did, with a key valid at its
  origin_server_ts from v5 (else dropped: `InvalidPduSignature`), and its content hash
  matches (else its redacted copy goes on instead, `CheckedPdu.redacted`);
- `check_auth_against_auth_events` — check 4: the event cites the right auth events and
  passes the auth rules against them (else it is rejected);
- `check_against_state` — checks 5 and 6, pure: the caller supplies the state before the
  event and the room's current state (rejected / soft-failed / accepted).

The pipeline that stores what passes them lives in `intake.py`.

Invariants: a dropped PDU is never stored; a redacted copy keeps its event ID (IDs and
signatures cover the redacted form); nothing here writes anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.keys import Keyring
from homeserver.core.events import Event, InvalidEvent, compute_event_id
from homeserver.core.pdu_checks import (
    ACCEPTED,
    AuthVerdict,
    Outcome,
    check_against_auth_events,
    check_against_state,
    missing_auth_event_ids,
    precheck_pdu,
)
from homeserver.core.room_versions import RoomVersion
from homeserver.core.signing import InvalidSignature

logger = logging.getLogger(__name__)

__all__ = [
    "ACCEPTED", "AuthVerdict", "CheckedPdu", "InvalidPduFormat", "InvalidPduSignature", "Outcome",
    "PduChecker", "PduDropped", "check_against_state", "check_auth_against_auth_events", "claimed_event_id",
    "event_id_for_result",
    "missing_auth_event_ids",
]


class PduDropped(Exception):
    """The PDU fails check 1 or 2 and must be dropped: not stored, not an error for the
    transaction that carried it. `event_id` is None when it could not be computed."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class InvalidPduFormat(PduDropped):
    """Check 1: not a valid event of its room version."""


class InvalidPduSignature(PduDropped):
    """Check 2: a server that must sign the event did not, or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class CheckedPdu:
    """A PDU past checks 1-3. `event` is what the rest of the pipeline works on: the redacted
    copy when the content hash did not match (`redacted` true). `signers` are the servers
    whose signatures were verified; `origin` the server that sent it to us."""
    event: Event
    redacted: bool
    origin: str
    signers: tuple[str, ...]

    @property
    def event_id(self) -> str:
        return self.event.event_id


class PduChecker:
    """Checks 1-3 on received PDUs. Only the keyring's public `verify_json_for_server` is used."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    async def check_pdu(self, pdu: Any, room_version: RoomVersion, origin: str, *,
                        expected_room_id: str | None = None) -> CheckedPdu:
        """Check one PDU sent by `origin` in a room of `room_version`. Raises PduDropped."""
        try:
            pre = precheck_pdu(pdu, room_version, origin=origin, expected_room_id=expected_room_id)
        except InvalidEvent as err:
            raise InvalidPduFormat(str(err), claimed_event_id(pdu)) from None

        # Check 2: every required server signed the redacted form, with a key valid at the
        # event's origin_server_ts (v5+). The keyring ignores signatures by keys it cannot find
        # while another key of the server verifies, and fails when none does.
        results = await asyncio.gather(
            *(self._keyring.verify_json_for_server(server, pre.signed_form, pre.minimum_valid_until_ts)
              for server in pre.required_signers),
            return_exceptions=True,
        )
        for server, result in zip(pre.required_signers, results):
            if isinstance(result, InvalidSignature):
                raise InvalidPduSignature(f"signature of {server}: {result}", pre.event_id)
            if isinstance(result, BaseException):
                raise result

        # Check 3: a hash mismatch is not fatal: the redacted copy goes on.
        if not pre.content_hash_ok:
            logger.info("event %s from %s fails its content hash; keeping its redacted copy", pre.event_id, origin)
        return CheckedPdu(pre.event_to_process, not pre.content_hash_ok, origin, pre.required_signers)

    async def check_pdus(self, pdus: Iterable[Any], room_version: RoomVersion, origin: str, *,
                         expected_room_id: str | None = None) -> list[CheckedPdu | PduDropped]:
        """Check several PDUs of one room concurrently; each result is its CheckedPdu or the
        PduDropped saying why it was dropped, in the order given."""
        async def one(pdu: Any) -> CheckedPdu | PduDropped:
            try:
                return await self.check_pdu(pdu, room_version, origin, expected_room_id=expected_room_id)
            except PduDropped as err:
                return err
        return list(await asyncio.gather(*(one(p) for p in pdus)))


def check_auth_against_auth_events(event: Event, auth_events_by_id: Mapping[str, Event],
                                   rejected_event_ids: frozenset[str] | set[str] = frozenset()) -> AuthVerdict:
    """Check 4: the event's auth_events are the ones auth events selection picks (no duplicates,
    none rejected, all in its room) and it passes the auth rules against them.

    `auth_events_by_id` must hold the events its auth_events name and, from v12, the room's
    create event (ID: the room ID with '$'); `missing_auth_event_ids` says what to fetch
    first — anything still missing rejects. `rejected_event_ids`: those of them we rejected.
    Returns ACCEPTED or a REJECTED verdict with the rule that failed.
    """
    return check_against_auth_events(event, auth_events_by_id, rejected_event_ids)


def event_id_for_result(pdu: Any, room_version: RoomVersion | None) -> str | None:
    """The event ID to report a PDU's result under when it is not processed (a room we are not
    in, a server the room's ACL bans): computed from the PDU where the room version is known
    (v3+ IDs are hashes, not in the PDU), else the one it claims."""
    if room_version is not None and isinstance(pdu, dict):
        try:
            return compute_event_id(pdu, room_version)
        except Exception:  # anything a peer sends: a malformed PDU has no computable ID
            pass
    return claimed_event_id(pdu)


def claimed_event_id(pdu: Any) -> str | None:
    """The event ID a v1-v2 PDU claims, for logs and per-PDU results when it cannot be checked
    (from v3 the ID is a hash of the event and is not in the PDU)."""
    value = pdu.get("event_id") if isinstance(pdu, dict) else None
    return value if isinstance(value, str) else None
