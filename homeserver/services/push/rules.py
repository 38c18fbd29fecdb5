"""Push rules of users (the /pushrules API) and their evaluation on every new event.

PushRuleService — use cases: read a user's ruleset (whole, by kind, one rule, its enabled
flag or actions), create/update a rule with before/after ordering, delete it, enable or
disable any rule, change any rule's actions. Invariants: server-default rules can be neither
created nor deleted, only enabled/disabled and given other actions; a new rule is enabled;
every change is followed by `on_rules_changed(user_id)` (account data: /sync delivers
`m.push_rules`). Each user's merged and compiled ruleset is cached, dropped on change.

PushEvaluator — an EventService.before_publish listener. For each new event it evaluates the
rules of every joined local member but the sender (and of a local invitee), unless they
ignore the sender, and stores the actions that notify or highlight for all of them with one
INSERT, before the events' stream positions become visible: a /sync that returns an event
returns the counts that include it (spec: push, "Server behaviour").
The room's members, display names and power levels are cached per state snapshot, so an
ordinary message costs no reads beyond the insert (and a relation lookup for events that
relate to another one). HTTP pushers are then handed the notifying actions, off the send path.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.caching import ENTRY_OVERHEAD, ID_BYTES, ByteLRU, json_size
from homeserver.core import power_levels
from homeserver.core.events import Event
from homeserver.core.push_rules import (
    CompiledRuleset,
    DefaultRuleSetting,
    InvalidPushRule,
    PushContext,
    UserRule,
    check_kind,
    compile_ruleset,
    default_rule_kind,
    effect_of,
    evaluate,
    find_rule,
    merge_rules,
    normalise_actions,
    parse_user_rule,
)
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.push.pushers import Notice, PusherService
from homeserver.services.push.unread import UnreadCounts
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache, SnapshotMemo
from storage.database import Database
from storage.push import (
    DefaultRuleRow,
    PushAction,
    PushActionStore,
    PushRuleRow,
    PushRuleStore,
)

logger = logging.getLogger(__name__)

# Ceilings of the two caches when the app gives none (config caches.push_rules, push_room_state).
RULES_CACHE_BYTES = 8 * 1024 * 1024
ROOM_CACHE_BYTES = 8 * 1024 * 1024
# Spec (threaded read receipts): follow relations at most 3 hops to find a thread; the
# event's own relation is the first.
THREAD_HOPS = 3


@dataclass(frozen=True)
class _Rules:
    merged: dict[str, list[dict[str, Any]]]
    compiled: CompiledRuleset


class PushRuleService:
    def __init__(self, db: Database, rules: PushRuleStore,
                 on_rules_changed: Callable[[str], Awaitable[None]] | None = None, *,
                 cache_bytes: int = RULES_CACHE_BYTES) -> None:
        self._db = db
        self._rules = rules
        self._on_rules_changed = on_rules_changed
        # The merged ruleset and its compiled form take about twice its JSON's estimate.
        self._cache: ByteLRU[str, _Rules] = ByteLRU(cache_bytes, lambda entry: 2 * json_size(entry.merged))
        self.cache_stats = self._cache.stats
        # Bumped by every change: a read that began before a change must not cache what it read.
        self._generation = 0

    # --- reads ---------------------------------------------------------------------------------

    async def rules_for(self, user_id: str) -> dict[str, Any]:
        """The user's whole ruleset in client format: `{"global": {kind: [rule, ...]}}` (the
        content of the m.push_rules account data event and of GET /pushrules/)."""
        return {"global": copy.deepcopy((await self._get(user_id)).merged)}

    async def global_rules(self, user_id: str) -> dict[str, Any]:
        return copy.deepcopy((await self._get(user_id)).merged)

    async def rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        _check_kind(kind)
        found = find_rule((await self._get(user_id)).merged, kind, rule_id)
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "The push rule was not found.")
        return copy.deepcopy(found)

    async def enabled(self, user_id: str, kind: str, rule_id: str) -> bool:
        return bool((await self.rule(user_id, kind, rule_id)).get("enabled", True))

    async def actions(self, user_id: str, kind: str, rule_id: str) -> list[Any]:
        return (await self.rule(user_id, kind, rule_id))["actions"]

    async def compiled_for(self, user_ids: Iterable[str]) -> dict[str, CompiledRuleset]:
        """Compiled rulesets of many users: cached ones at once, the others in one query."""
        found: dict[str, CompiledRuleset] = {}
        missing = []
        for user_id in user_ids:
            entry = self._cache.get(user_id)
            if entry is None:
                missing.append(user_id)
            else:
                found[user_id] = entry.compiled
        if missing:
            generation = self._generation
            for user_id, (rows, defaults) in (await self._rules.rules_of_users(missing)).items():
                found[user_id] = self._remember(user_id, rows, defaults, generation).compiled
        return found

    # --- changes -------------------------------------------------------------------------------

    async def put_rule(self, user_id: str, kind: str, rule_id: str, body: dict[str, Any], *,
                       before: str | None, after: str | None) -> None:
        """Spec (setPushRule): create or update a user-defined rule; `before`/`after` place it
        next to another user-defined rule of the same kind (`before` wins when both are given);
        a new rule without them becomes the most important of its kind."""
        _check_kind(kind)
        if rule_id.startswith(".") and default_rule_kind(user_id, rule_id) == kind:
            raise MatrixError(400, Codes.INVALID_PARAM, "Server-default rules cannot be replaced; "
                              "change their actions or enabled flag instead")
        try:
            rule = parse_user_rule(kind, rule_id, body)
        except InvalidPushRule as err:
            raise _error(err) from None
        anchor = before if before is not None else after
        if anchor is not None and anchor.startswith("."):
            raise MatrixError(400, Codes.INVALID_PARAM, "A rule cannot be placed relative to a server-default rule")
        async with self._db.transaction():
            await self._rules.lock_user(user_id)
            order = await self._rules.order_of(user_id, kind)
            existing = order.index(rule_id) if rule_id in order else None
            if existing is not None:
                order.pop(existing)
            if anchor is not None:
                if anchor not in order:
                    raise MatrixError(400, Codes.INVALID_PARAM, f"before/after rule not found: {anchor}")
                order.insert(order.index(anchor) + (0 if before is not None else 1), rule_id)
            else:
                order.insert(existing if existing is not None else 0, rule_id)
            await self._rules.put_rule(user_id, kind, rule_id, rule.conditions, rule.pattern, rule.actions)
            await self._rules.set_order(user_id, kind, order)
        await self._changed(user_id)

    async def copy_room_rules(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """A user landed in a room's replacement: their rules for the old room apply to the
        new one too (the room rule, and override/underride rules matching the room's ID)."""
        merged = (await self._get(user_id)).merged
        for kind, rules in merged.items():
            for rule in rules:
                if rule.get("default") or not isinstance(rule.get("rule_id"), str):
                    continue
                if kind == "room" and rule["rule_id"] == old_room_id:
                    body: dict[str, Any] = {"actions": rule.get("actions", [])}
                    new_id = new_room_id
                elif kind in ("override", "underride") and old_room_id in rule["rule_id"]:
                    conditions = [
                        {**c, "pattern": new_room_id} if isinstance(c, dict) and c.get("key") == "room_id"
                        and c.get("pattern") == old_room_id else c for c in rule.get("conditions", [])]
                    body = {"actions": rule.get("actions", []), "conditions": conditions}
                    new_id = rule["rule_id"].replace(old_room_id, new_room_id)
                else:
                    continue
                if find_rule(merged, kind, new_id) is None:
                    await self.put_rule(user_id, kind, new_id, body, before=None, after=None)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        _check_kind(kind)
        if default_rule_kind(user_id, rule_id) == kind:
            raise MatrixError(400, Codes.INVALID_PARAM, "Server-default rules cannot be deleted")
        if not await self._rules.delete_rule(user_id, kind, rule_id):
            raise MatrixError(404, Codes.NOT_FOUND, "The push rule was not found.")
        await self._changed(user_id)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, body: dict[str, Any]) -> None:
        _check_kind(kind)
        if "enabled" not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, "'enabled' is required")
        enabled = body["enabled"]
        if not isinstance(enabled, bool):
            raise MatrixError(400, Codes.INVALID_PARAM, "'enabled' must be a boolean")
        if default_rule_kind(user_id, rule_id) == kind:
            await self._rules.set_default_enabled(user_id, kind, rule_id, enabled)
        elif not await self._rules.set_enabled(user_id, kind, rule_id, enabled):
            raise MatrixError(404, Codes.NOT_FOUND, "The push rule was not found.")
        await self._changed(user_id)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, body: dict[str, Any]) -> None:
        _check_kind(kind)
        if "actions" not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, "'actions' is required")
        try:
            actions = normalise_actions(body["actions"])
        except InvalidPushRule as err:
            raise _error(err) from None
        if default_rule_kind(user_id, rule_id) == kind:
            await self._rules.set_default_actions(user_id, kind, rule_id, actions)
        elif not await self._rules.set_actions(user_id, kind, rule_id, actions):
            raise MatrixError(404, Codes.NOT_FOUND, "The push rule was not found.")
        await self._changed(user_id)

    def forget_cached(self, user_id: str) -> None:
        """Drop a user's cached ruleset (another process changed their rules)."""
        self._generation += 1
        self._cache.pop(user_id)

    # --- internals -------------------------------------------------------------------------------

    async def _get(self, user_id: str) -> _Rules:
        entry = self._cache.get(user_id)
        if entry is not None:
            return entry
        generation = self._generation
        rows, defaults = await self._rules.rules_of(user_id)
        return self._remember(user_id, rows, defaults, generation)

    def _remember(self, user_id: str, rows: list[PushRuleRow], defaults: list[DefaultRuleRow],
                  generation: int) -> _Rules:
        user_rules = [UserRule(r.kind, r.rule_id, r.actions, r.enabled, r.conditions, r.pattern) for r in rows]
        settings = {(d.kind, d.rule_id): DefaultRuleSetting(d.enabled, d.actions) for d in defaults}
        merged = merge_rules(user_id, user_rules, settings)
        entry = _Rules(merged, compile_ruleset(merged))
        if generation == self._generation:
            self._cache.put(user_id, entry)
        return entry

    async def _changed(self, user_id: str) -> None:
        self._generation += 1
        self._cache.pop(user_id)
        if self._on_rules_changed is not None:
            await self._on_rules_changed(user_id)


def _check_kind(kind: str) -> None:
    try:
        check_kind(kind)
    except InvalidPushRule as err:
        raise MatrixError(400, Codes.INVALID_PARAM, str(err)) from None


def _error(err: InvalidPushRule) -> MatrixError:
    return MatrixError(400, Codes.MISSING_PARAM if err.missing else Codes.INVALID_PARAM, str(err))


# --- evaluation -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _RoomPushState:
    """What push evaluation needs of a room, valid for one state snapshot."""
    local_joined: tuple[str, ...]
    member_count: int
    display_names: dict[str, str]
    power_state: dict[tuple[str, str], Event]
    notification_levels: dict[str, int]
    room_name: str | None
    room_alias: str | None


def _room_push_state_size(state: _RoomPushState | None) -> int:
    """Estimated bytes: the members and their display names (the power state's events are
    the event cache's, shared)."""
    if state is None:
        return 0
    return ID_BYTES * (len(state.local_joined) + 2 * len(state.display_names)) \
        + ENTRY_OVERHEAD * (len(state.power_state) + len(state.notification_levels) + 1)


class PushEvaluator:
    def __init__(self, rules: PushRuleService, rooms: RoomStateCache, actions: PushActionStore,
                 pushers: PusherService, clock: Clock, server_name: str,
                 ignored_users: Callable[[str], Awaitable[frozenset[str]]] | None = None, *,
                 unread: UnreadCounts, room_cache_bytes: int = ROOM_CACHE_BYTES) -> None:
        self._rules = rules
        self._ignored_users = ignored_users
        self._rooms = rooms
        self._actions = actions
        self._pushers = pushers
        self._unread = unread  # the unread counts kept in memory, moved by the actions stored
        self._clock = clock
        self._local_suffix = ":" + server_name
        self._room_state: SnapshotMemo[_RoomPushState | None] = SnapshotMemo(
            rooms, self._derive_room, room_cache_bytes, _room_push_state_size)
        self.cache_stats = self._room_state.cache_stats

    async def on_persisted(self, published: list[tuple[Event, int]]) -> None:
        """The listener: never fails the send that produced the events (they are committed)."""
        try:
            await self._process(published)
        except Exception:
            logger.exception("push evaluation failed for %d events", len(published))

    async def _process(self, published: list[tuple[Event, int]]) -> None:
        threads = await self._threads([event for event, _ in published])
        now = self._clock.now_ms()
        new: list[PushAction] = []
        notices: list[Notice] = []
        redacted: list[str] = []
        by_room: dict[str, list[tuple[Event, int]]] = {}
        for event, position in published:
            by_room.setdefault(event.room_id, []).append((event, position))
            if event.type == "m.room.redaction" and event.redacts:
                redacted.append(event.redacts)
        for room_id, items in by_room.items():
            room = await self._room(room_id)
            if room is None:
                continue
            targets = {event.event_id: self._targets(event, room) for event, _ in items}
            rulesets = await self._rules.compiled_for({u for users in targets.values() for u in users})
            for event, position in items:
                users = targets[event.event_id]
                if not users:
                    continue
                as_dict = event.pdu if "room_id" in event.pdu else {**event.pdu, "room_id": event.room_id}
                sender_level = power_levels.user_power_level(event.sender, room.power_state)
                for user_id in users:
                    # Nothing from a user they ignore (spec: ignoring users) reaches them.
                    if self._ignored_users is not None and event.sender in await self._ignored_users(user_id):
                        continue
                    context = PushContext(room.member_count, room.display_names.get(user_id), sender_level,
                                          room.notification_levels)
                    actions = evaluate(rulesets[user_id], as_dict, context)
                    effect = effect_of(actions)
                    if not (effect.notify or effect.highlight):
                        continue
                    new.append(PushAction(user_id, room_id, event.event_id, position, threads.get(event.event_id),
                                          effect.notify, effect.highlight, actions or [], now))
                    if effect.notify:
                        notices.append(Notice(
                            user_id=user_id, event=event, tweaks=effect.tweaks,
                            sender_display_name=room.display_names.get(event.sender),
                            room_name=room.room_name, room_alias=room.room_alias,
                        ))
        with self._unread.changing():
            await self._actions.add(new)
            self._unread.added(new)
        if redacted:
            with self._unread.changing():
                await self._actions.delete_for_events(redacted)
                for room_id, items in by_room.items():
                    if any(event.type == "m.room.redaction" for event, _ in items):
                        self._unread.forget_room(room_id)
        if notices:
            self._pushers.deliver(notices)

    def _targets(self, event: Event, room: _RoomPushState) -> list[str]:
        """The local users whose rules apply: joined members but the sender (spec: "Server
        behaviour"), and the target of an invite, who is not a member yet."""
        users = [u for u in room.local_joined if u != event.sender]
        target = event.state_key
        if (event.type == "m.room.member" and event.content.get("membership") == "invite" and target
                and target != event.sender and target.endswith(self._local_suffix) and target not in users):
            users.append(target)
        return users

    async def _threads(self, events: list[Event]) -> dict[str, str]:
        """event_id -> thread root for the events that are in a thread."""
        found: dict[str, str] = {}
        parents: dict[str, str] = {}
        for event in events:
            relates = event.content.get("m.relates_to")
            if not isinstance(relates, dict):
                continue
            rel_type, parent = relates.get("rel_type"), relates.get("event_id")
            if not isinstance(rel_type, str) or not isinstance(parent, str):
                continue
            if rel_type == "m.thread":
                found[event.event_id] = parent
            else:
                parents[event.event_id] = parent
        if parents:
            roots = await self._actions.threads_of(list(set(parents.values())), THREAD_HOPS - 1)
            for event_id, parent in parents.items():
                if parent in roots:
                    found[event_id] = roots[parent]
        return found

    async def _room(self, room_id: str) -> _RoomPushState | None:
        return await self._room_state.get(room_id)

    async def _derive_room(self, room_id: str, snap: RoomSnapshot | None) -> _RoomPushState | None:
        if snap is None:
            return None
        keys = [k for k in snap.state if k[0] == "m.room.member"]
        keys += [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.name", ""),
                 ("m.room.canonical_alias", "")]
        state = await self._rooms.state_events(snap, keys)
        joined: list[str] = []
        names: dict[str, str] = {}
        for (event_type, state_key), event in state.items():
            if event_type != "m.room.member" or event.content.get("membership") != "join":
                continue
            joined.append(state_key)
            name = event.content.get("displayname")
            if isinstance(name, str):
                names[state_key] = name
        power_state = {k: state[k] for k in (("m.room.create", ""), ("m.room.power_levels", "")) if k in state}
        levels_content = state[("m.room.power_levels", "")].content if ("m.room.power_levels", "") in state else {}
        notification_keys = {"room"}
        if isinstance(levels_content.get("notifications"), dict):
            notification_keys.update(k for k in levels_content["notifications"] if isinstance(k, str))
        name_event, alias_event = state.get(("m.room.name", "")), state.get(("m.room.canonical_alias", ""))
        return _RoomPushState(
            local_joined=tuple(sorted(u for u in joined if u.endswith(self._local_suffix))),
            member_count=len(joined),
            display_names=names,
            power_state=power_state,
            notification_levels={k: power_levels.notification_level(k, power_state) for k in notification_keys},
            room_name=_str(name_event.content.get("name")) if name_event else None,
            room_alias=_str(alias_event.content.get("alias")) if alias_event else None,
        )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
