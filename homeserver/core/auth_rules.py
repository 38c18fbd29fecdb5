"""Authorization rules for every room version, numbered as the spec numbers them.

v1: https://spec.matrix.org/v1.19/rooms/v1/#authorization-rules (v3 and v8 fragments for the
later changes), v12: https://spec.matrix.org/v1.19/rooms/v12/#authorization-rules. The
numbering in comments follows v12 (the newest); rules that exist only in older versions say so.
`auth_state` maps (type, state_key) to the state the event is checked against: its auth events,
or the room's current state. It always holds the room's create event once the room exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from homeserver.core import power_levels as pl
from homeserver.core.events import Event
from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS

StateMap = Mapping[tuple[str, str], Event]

_LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


class AuthError(Exception):
    """The event fails the authorization rules; the message names the rule."""


def _domain(identifier: str) -> str | None:
    return server_name_of(identifier)


def check(event: Event, auth_state: StateMap) -> None:
    rules = event.room_version.auth

    # 1: m.room.create
    if event.type == "m.room.create":
        _check_create(event)
        return

    create = auth_state.get(("m.room.create", ""))
    if create is None:
        raise AuthError("no m.room.create event in the room state")
    # 2 (v12): the room ID is the create event's ID with '!'.
    if rules.room_id_from_create_event:
        if event.room_id != "!" + create.event_id[1:]:
            raise AuthError("2: room_id is not derived from the room's create event")
    elif create.room_id != event.room_id:
        raise AuthError("the create event belongs to another room")

    # 3: the event's auth_events (checked by the caller's selection when it passes the event's own
    # auth events; here: no duplicate types and, v12, no create event among them).
    if rules.room_id_from_create_event and create.event_id in event.auth_event_ids:
        raise AuthError("3.2: the create event must not be listed in auth_events")
    if rules.create_event_in_auth_events and create.event_id not in event.auth_event_ids:
        # v1-v11: the create event must be among the auth events.
        raise AuthError("the create event is missing from auth_events")

    # 4: m.federate
    if create.content.get("m.federate", True) is False and _domain(event.sender) != _domain(create.sender):
        raise AuthError("4: the room does not federate")

    # v1-v5, rule 4 there: m.room.aliases is authorised by the sender's server.
    if event.type == "m.room.aliases" and rules.special_case_aliases_auth:
        if event.state_key is None:
            raise AuthError("m.room.aliases needs a state_key")
        if event.state_key != _domain(event.sender):
            raise AuthError("m.room.aliases state_key must be the sender's server")
        return

    # 5: m.room.member
    if event.type == "m.room.member":
        _check_member(event, auth_state, create)
        return

    # 6: the sender must be joined
    if _membership(auth_state, event.sender) != "join":
        raise AuthError("6: the sender is not joined to the room")

    sender_level = pl.user_power_level(event.sender, auth_state)

    # 7: m.room.third_party_invite
    if event.type == "m.room.third_party_invite":
        if sender_level >= pl.invite_level(auth_state):
            return
        raise AuthError("7.1: the sender cannot invite")

    # 8: the event type's required power level
    if pl.event_power_level(event.type, event.state_key, auth_state) > sender_level:
        raise AuthError("8: the sender's power level is too low for this event type")

    # 9: state keys that are user IDs belong to that user
    if event.state_key is not None and event.state_key.startswith("@") and event.state_key != event.sender:
        raise AuthError("9: state_key names another user")

    # 10: m.room.power_levels
    if event.type == "m.room.power_levels":
        _check_power_levels(event, auth_state, sender_level)
        return

    # v1-v2, rule 11 there: redactions by power or by the same server.
    if event.type == "m.room.redaction" and rules.redaction_sender_domain_check:
        if sender_level >= pl.redact_level(auth_state):
            return
        if event.redacts is not None and _domain(event.redacts) == _domain(event.event_id):
            return
        raise AuthError("redaction: the sender may not redact this event")

    # 11: otherwise, allow


def check_auth_events(event: Event, auth_events: Mapping[str, Event], rejected: frozenset[str] = frozenset()) -> None:
    """Rule 3 (2.x before v12): the event's own auth_events are well chosen.

    `auth_events` maps the event's auth event IDs to the events; `rejected` names the ones
    this server rejected. Signature checks of join_authorised_via_users_server (5.2) need
    server keys and are done where PDUs are received.
    """
    from homeserver.core.builder import auth_types_for_new_event

    if event.type == "m.room.create":
        if event.auth_event_ids:
            raise AuthError("the create event must have no auth_events")
        return
    allowed = set(auth_types_for_new_event(event.room_version, event.type, event.sender, event.state_key, event.content))
    seen: set[tuple[str, str]] = set()
    for auth_id in event.auth_event_ids:
        auth = auth_events.get(auth_id)
        if auth is None:
            raise AuthError(f"auth event {auth_id} is unknown")
        key = (auth.type, auth.state_key or "")
        # 3.1: no duplicate (type, state_key)
        if key in seen:
            raise AuthError(f"3.1: duplicate auth event for {key}")
        seen.add(key)
        # 3.2: only what the auth events selection allows (v12: never the create event)
        if auth.state_key is None or key not in allowed:
            raise AuthError(f"3.2: {key} is not an allowed auth event")
        # 3.3: no rejected auth events
        if auth_id in rejected:
            raise AuthError(f"3.3: auth event {auth_id} was rejected")
        # 3.5 (v12 numbering): auth events belong to the same room
        if auth.room_id != event.room_id:
            raise AuthError(f"3.5: auth event {auth_id} is from another room")


def _check_create(event: Event) -> None:
    rules = event.room_version.auth
    # 1.1: no prev_events
    if event.prev_event_ids:
        raise AuthError("1.1: the create event has prev_events")
    if rules.room_id_from_create_event:
        # 1.2 (v12): no room_id
        if "room_id" in event.pdu:
            raise AuthError("1.2: the create event has a room_id")
    elif _domain(event.room_id) != _domain(event.sender):
        # 1.2 (v1-v11): the room ID's server is the sender's
        raise AuthError("1.2: the room ID's server is not the sender's")
    # 1.3: a known room_version
    version = event.content.get("room_version", "1")
    if not isinstance(version, str) or version not in KNOWN_ROOM_VERSIONS:
        raise AuthError("1.3: unknown room_version")
    # 1.4 (v1-v10): content.creator is required
    if not rules.implicit_room_creator and not isinstance(event.content.get("creator"), str):
        raise AuthError("1.4: the create event has no creator")
    # 1.4 (v12): additional_creators are user IDs
    if rules.privileged_room_creators and "additional_creators" in event.content:
        extra = event.content["additional_creators"]
        if not isinstance(extra, list) or not all(isinstance(u, str) and is_valid_user_id(u) for u in extra):
            raise AuthError("1.4: additional_creators must be a list of user IDs")


def _membership(state: StateMap, user_id: str) -> str:
    event = state.get(("m.room.member", user_id))
    value = event.content.get("membership") if event is not None else None
    return value if isinstance(value, str) else "leave"


def _join_rule(state: StateMap) -> str:
    event = state.get(("m.room.join_rules", ""))
    value = event.content.get("join_rule") if event is not None else None
    return value if isinstance(value, str) else "invite"


def _check_member(event: Event, state: StateMap, create: Event) -> None:
    rules = event.room_version.auth
    target = event.state_key
    membership = event.content.get("membership")
    # 5.1: state_key and membership are required
    if target is None or not isinstance(membership, str):
        raise AuthError("5.1: member event without state_key or membership")
    # 5.2: join_authorised_via_users_server must be signed by that user's server (v8+); the
    # signature check needs keys and is the caller's (signature checks on receipt).
    sender_membership = _membership(state, event.sender)
    target_membership = _membership(state, target)
    sender_level = pl.user_power_level(event.sender, state)
    target_level = pl.user_power_level(target, state)
    join_rule = _join_rule(state)

    if membership == "join":
        # 5.3.1: the creator's first join right after the create event
        creator_ok = (create.sender if rules.implicit_room_creator else create.content.get("creator")) == target
        if len(event.prev_event_ids) == 1 and event.prev_event_ids[0] == create.event_id and creator_ok:
            return
        # 5.3.2
        if event.sender != target:
            raise AuthError("5.3.2: users can only join themselves")
        # 5.3.3
        if sender_membership == "ban":
            raise AuthError("5.3.3: the sender is banned")
        # 5.3.4: invite (and, v7+, knock) rooms admit the invited and the joined
        if join_rule == "invite" or (join_rule == "knock" and rules.knock_join_rule):
            if sender_membership in ("invite", "join"):
                return
            raise AuthError("5.3.4: the room is invite-only")
        # 5.3.5: restricted (v8+) and knock_restricted (v10+)
        if (join_rule == "restricted" and rules.restricted_join_rule) or (
            join_rule == "knock_restricted" and rules.knock_restricted_join_rule
        ):
            if sender_membership in ("invite", "join"):
                return
            via = event.content.get("join_authorised_via_users_server")
            if not isinstance(via, str) or _membership(state, via) != "join" or \
                    pl.user_power_level(via, state) < pl.invite_level(state):
                raise AuthError("5.3.5.2: the join is not authorised by a joined user who can invite")
            return
        # 5.3.6
        if join_rule == "public":
            return
        raise AuthError("5.3.7: the join rule does not allow joining")

    if membership == "invite":
        # 5.4.1: third-party invites
        third_party = event.content.get("third_party_invite")
        if third_party is not None:
            _check_third_party_invite(event, state, third_party, target_membership)
            return
        # 5.4.2
        if sender_membership != "join":
            raise AuthError("5.4.2: the sender is not joined")
        # 5.4.3
        if target_membership in ("join", "ban"):
            raise AuthError("5.4.3: the target is joined or banned")
        # 5.4.4
        if sender_level >= pl.invite_level(state):
            return
        raise AuthError("5.4.5: the sender's power level is below the invite level")

    if membership == "leave":
        # 5.5.1: leaving (or refusing an invite, or withdrawing a knock) oneself
        if event.sender == target:
            allowed = ("invite", "join", "knock") if rules.knock_join_rule else ("invite", "join")
            if target_membership in allowed:
                return
            raise AuthError("5.5.1: the user is not in the room")
        # 5.5.2
        if sender_membership != "join":
            raise AuthError("5.5.2: the sender is not joined")
        # 5.5.3
        if target_membership == "ban" and sender_level < pl.ban_level(state):
            raise AuthError("5.5.3: unbanning needs the ban level")
        # 5.5.4
        if sender_level >= pl.kick_level(state) and target_level < sender_level:
            return
        raise AuthError("5.5.5: the sender cannot kick the target")

    if membership == "ban":
        # 5.6.1
        if sender_membership != "join":
            raise AuthError("5.6.1: the sender is not joined")
        # 5.6.2
        if sender_level >= pl.ban_level(state) and target_level < sender_level:
            return
        raise AuthError("5.6.3: the sender cannot ban the target")

    if membership == "knock" and rules.knock_join_rule:
        # 5.7.1
        if join_rule not in ("knock", "knock_restricted") or (
            join_rule == "knock_restricted" and not rules.knock_restricted_join_rule
        ):
            raise AuthError("5.7.1: the room does not accept knocks")
        # 5.7.2
        if event.sender != target:
            raise AuthError("5.7.2: users can only knock for themselves")
        # 5.7.3
        if sender_membership not in ("ban", "invite", "join"):
            return
        raise AuthError("5.7.4: the sender is banned, invited or joined")

    # 5.8: unknown membership
    raise AuthError(f"5.8: unknown membership {membership!r}")


def _check_third_party_invite(event: Event, state: StateMap, third_party: Any, target_membership: str) -> None:
    # 5.4.1.1
    if target_membership == "ban":
        raise AuthError("5.4.1.1: the target is banned")
    signed = third_party.get("signed") if isinstance(third_party, dict) else None
    # 5.4.1.2, 5.4.1.3
    if not isinstance(signed, dict) or not isinstance(signed.get("mxid"), str) or not isinstance(signed.get("token"), str):
        raise AuthError("5.4.1.2-3: third_party_invite.signed needs mxid and token")
    # 5.4.1.4
    if signed["mxid"] != event.state_key:
        raise AuthError("5.4.1.4: signed.mxid does not match the state_key")
    # 5.4.1.5
    invite = state.get(("m.room.third_party_invite", signed["token"]))
    if invite is None:
        raise AuthError("5.4.1.5: no matching m.room.third_party_invite")
    # 5.4.1.6
    if invite.sender != event.sender:
        raise AuthError("5.4.1.6: the sender did not make the third-party invite")
    # 5.4.1.7: any signature in `signed` by any of the invite's public keys
    keys = []
    if isinstance(invite.content.get("public_key"), str):
        keys.append(invite.content["public_key"])
    for entry in invite.content.get("public_keys") or []:
        if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
            keys.append(entry["public_key"])
    signatures = signed.get("signatures")
    if isinstance(signatures, dict):
        for server, server_sigs in signatures.items():
            if not isinstance(server_sigs, dict):
                continue
            for key_id in server_sigs:
                for public_key in keys:
                    try:
                        verify_key = decode_verify_key_bytes(key_id, decode_base64(public_key))
                        verify_signed_json(signed, server, verify_key)
                        return
                    except (SignatureVerifyException, ValueError, TypeError):
                        continue
    raise AuthError("5.4.1.8: no valid signature from the third-party invite's keys")


def _check_power_levels(event: Event, state: StateMap, sender_level: float) -> None:
    rules = event.room_version.auth
    stringy = not rules.enforce_int_power_levels
    content = event.content
    # 10.1: the named levels are integers
    for key in _LEVEL_KEYS:
        if key in content and pl.as_int(content[key], stringy=stringy) is None:
            raise AuthError(f"10.1: '{key}' is not an integer")
    # 10.2: events and notifications map to integers
    maps = ("events", "notifications") if rules.limit_notifications_power_levels else ("events",)
    for key in maps:
        if key in content:
            value = content[key]
            if not isinstance(value, dict) or any(pl.as_int(v, stringy=stringy) is None for v in value.values()):
                raise AuthError(f"10.2: '{key}' must map to integers")
    # 10.3: users maps user IDs to integers
    users = content.get("users", {})
    if not isinstance(users, dict) or any(
        not is_valid_user_id(u) or pl.as_int(v, stringy=stringy) is None for u, v in users.items()
    ):
        raise AuthError("10.3: 'users' must map user IDs to integers")
    # 10.4 (v12): creators may not be listed
    if rules.privileged_room_creators and set(users) & pl.creators(state):
        raise AuthError("10.4: room creators cannot be given a power level")
    # 10.5: the first power levels event is allowed
    previous = state.get(("m.room.power_levels", ""))
    if previous is None:
        return
    old = previous.content

    def level(mapping: Any, key: str) -> int | None:
        return pl.as_int(mapping.get(key), stringy=stringy) if isinstance(mapping, dict) and key in mapping else None

    # 10.6: named levels added, changed or removed
    for key in _LEVEL_KEYS:
        before, after = level(old, key), level(content, key)
        if before != after:
            if before is not None and before > sender_level:
                raise AuthError(f"10.6.1: the current '{key}' is above the sender's level")
            if after is not None and after > sender_level:
                raise AuthError(f"10.6.2: the new '{key}' is above the sender's level")
    # 10.7 / 10.8: events (and notifications, v6+)
    for key in maps:
        old_map = old.get(key) if isinstance(old.get(key), dict) else {}
        new_map = content.get(key) if isinstance(content.get(key), dict) else {}
        for name in set(old_map) | set(new_map):
            before, after = level(old_map, name), level(new_map, name)
            if before == after:
                continue
            if before is not None and before > sender_level:
                raise AuthError(f"10.7.1: the current {key}.{name} is above the sender's level")
            if after is not None and after > sender_level:
                raise AuthError(f"10.8.1: the new {key}.{name} is above the sender's level")
    # 10.9 / 10.10: users
    old_users = old.get("users") if isinstance(old.get("users"), dict) else {}
    for user in set(old_users) | set(users):
        before, after = level(old_users, user), level(users, user)
        if before == after:
            continue
        if before is not None and user != event.sender and before >= sender_level:
            raise AuthError(f"10.9.1: {user}'s current level is not below the sender's")
        if after is not None and after > sender_level:
            raise AuthError(f"10.10.1: {user}'s new level is above the sender's")
