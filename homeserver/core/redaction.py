"""The redaction algorithm, per room version.

v1: https://spec.matrix.org/v1.19/rooms/v1/#redactions ; v6 drops m.room.aliases content;
v8 keeps join_rules `allow`; v9 keeps member `join_authorised_via_users_server`;
v11: https://spec.matrix.org/v1.19/rooms/v11/#redactions (all of create's content,
power levels `invite`, member `third_party_invite.signed`, redaction `redacts`; the
top-level `origin`, `membership` and `prev_state` are no longer kept).
"""

from __future__ import annotations

from typing import Any

from homeserver.core.room_versions import RoomVersion

_TOP_LEVEL_V1 = frozenset({
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership",
})
_TOP_LEVEL_V11 = _TOP_LEVEL_V1 - {"prev_state", "origin", "membership"}

_POWER_LEVEL_KEYS = frozenset({"ban", "events", "events_default", "kick", "redact", "state_default",
                               "users", "users_default"})


def redact(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """A copy of `pdu` stripped to what survives a redaction. `unsigned` is dropped."""
    rules = room_version.redaction
    keep_top = _TOP_LEVEL_V11 if rules.v11_rules else _TOP_LEVEL_V1
    out = {k: v for k, v in pdu.items() if k in keep_top}
    out["content"] = _redact_content(pdu.get("type"), pdu.get("content") or {}, room_version)
    return out


def _redact_content(event_type: Any, content: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    rules = room_version.redaction
    if not isinstance(content, dict):
        return {}
    keep: set[str] = set()
    if event_type == "m.room.member":
        keep = {"membership"}
        if rules.keep_join_authorised_via_users_server:
            keep.add("join_authorised_via_users_server")
        kept = {k: v for k, v in content.items() if k in keep}
        third_party = content.get("third_party_invite")
        if rules.v11_rules and isinstance(third_party, dict) and "signed" in third_party:
            kept["third_party_invite"] = {"signed": third_party["signed"]}
        return kept
    if event_type == "m.room.create":
        if rules.v11_rules:
            return dict(content)
        keep = {"creator"}
    elif event_type == "m.room.join_rules":
        keep = {"join_rule"} | ({"allow"} if rules.keep_join_rules_allow else set())
    elif event_type == "m.room.power_levels":
        keep = set(_POWER_LEVEL_KEYS) | ({"invite"} if rules.v11_rules else set())
    elif event_type == "m.room.history_visibility":
        keep = {"history_visibility"}
    elif event_type == "m.room.aliases" and rules.keep_aliases_content:
        keep = {"aliases"}
    elif event_type == "m.room.redaction" and rules.v11_rules:
        keep = {"redacts"}
    return {k: v for k, v in content.items() if k in keep}
