"""The rows an event is stored as (storage.events), for this server's events and received ones
alike: the events row with its relation, and the room_memberships row of a member event."""

from __future__ import annotations

from typing import Any

from homeserver.core.events import Event
from homeserver.services.rooms.send_queue import TxnRef
from storage.events import MembershipChange, NewEvent


def event_row(event: Event, position: int | None, now: int, before: int | None, after: int | None, *,
              rejected: str | None = None, soft_failed: bool = False, outlier: bool = False,
              txn: TxnRef | None = None, redaction_domain_check: bool = False) -> NewEvent:
    """The row an event is stored as, local or received. A rejected redaction redacts nothing;
    `redaction_domain_check`: one whose sender lacked the redact power redacts only events of
    its own server (v3+ rooms)."""
    relates_to, rel_type = relation_of(event.content)
    return NewEvent(
        event_id=event.event_id, room_id=event.room_id, stream_ordering=position, depth=event.depth,
        type=event.type, state_key=event.state_key, sender=event.sender, origin_server_ts=event.origin_server_ts,
        received_ts=now, pdu=event.pdu, prev_event_ids=event.prev_event_ids, auth_event_ids=event.auth_event_ids,
        outlier=outlier, rejected_reason=rejected, soft_failed=soft_failed, state_before=before, state_after=after,
        relates_to=relates_to, rel_type=rel_type,
        txn_user_id=txn.user_id if txn else None, txn_device_id=txn.device_id if txn else None,
        txn_id=txn.txn_id if txn else None,
        redacts=event.redacts if event.type == "m.room.redaction" and rejected is None else None,
        redaction_domain_check=redaction_domain_check,
    )


def membership_row(event: Event, position: int) -> MembershipChange:
    """The room_memberships row of an m.room.member event."""
    return MembershipChange(
        event.event_id, event.state_key or "", event.sender, event.membership or "",
        _str_or_none(event.content.get("displayname")), _str_or_none(event.content.get("avatar_url")), position,
    )


def relation_of(content: dict[str, Any]) -> tuple[str | None, str | None]:
    relates = content.get("m.relates_to")
    if isinstance(relates, dict):
        rel_type, target = relates.get("rel_type"), relates.get("event_id")
        if isinstance(rel_type, str) and isinstance(target, str):
            return target, rel_type
    return None, None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
