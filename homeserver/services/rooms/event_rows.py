"""The rows an event is stored as (storage.events), for this server's events and received ones
alike: the events row with its relation, and the room_memberships row of a member event; and
the whole batch of rows a run of this server's events on one room snapshot is stored as."""

from __future__ import annotations

from typing import Any

from collections.abc import Mapping, Sequence

from homeserver.core.events import Event
from homeserver.services.rooms.send_queue import TxnRef
from homeserver.services.rooms.state import RoomSnapshot, delta_chain_limit
from storage.events import MembershipChange, NewEvent, NewStateGroup, PersistBatch


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


def local_batch(base: RoomSnapshot, work: RoomSnapshot, events: Sequence[Event], txns: Mapping[str, TxnRef],
                positions: Sequence[int], group_ids: Sequence[int], now: int) -> tuple[PersistBatch, int | None, int]:
    """The rows of `events`, built in order on `base` (`work` is the snapshot they led to), at
    their stream `positions`; each state event gets the next of `group_ids` as its state
    group, a delta on the one before or a full copy when the delta chain is long enough.
    Returns the batch, the last state group and the length of its delta chain."""
    state = dict(base.state)
    group, chain = base.state_group, base.chain_length
    new_events, groups, memberships = [], [], []
    current: dict[tuple[str, str], tuple[str, str | None]] = {}
    groups_iter = iter(group_ids)
    for event, position in zip(events, positions):
        before = group
        if event.state_key is not None:
            key = (event.type, event.state_key)
            state[key] = event.event_id
            new_group = next(groups_iter)
            if group is None or chain + 1 >= delta_chain_limit(len(state)):
                groups.append(NewStateGroup(new_group, None, 0, dict(state)))
                chain = 0
            else:
                groups.append(NewStateGroup(new_group, group, chain + 1, {key: event.event_id}))
                chain += 1
            group = new_group
            membership = event.content.get("membership") if event.type == "m.room.member" else None
            current[key] = (event.event_id, membership)
            if event.type == "m.room.member" and isinstance(membership, str):
                memberships.append(membership_row(event, position))
        new_events.append(event_row(event, position, now, before, group, txn=txns.get(event.event_id)))
    batch = PersistBatch(
        room_id=work.room_id, events=new_events, state_groups=groups,
        extremities_removed=[e for e in base.extremities if e not in work.extremities],
        extremities_added=[e for e in work.extremities if e not in base.extremities],
        current_state=current, memberships=memberships,
    )
    return batch, group, chain
