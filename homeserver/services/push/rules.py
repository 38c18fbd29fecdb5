"""Push rules of users (the /pushrules API) and their evaluation on every new event.

PushRuleService — use cases: read a user's ruleset (whole, by kind, one rule, its enabled
flag or actions), create/update a rule with before/after ordering, delete it, enable or
disable any rule, change any rule's actions. Invariants: server-default rules can be neither
created nor deleted, only enabled/disabled and given other actions; a new rule is enabled;
every change is followed by `on_rules_changed(user_id)` (account data: /sync delivers
`m.push_rules`). Each user's merged ruleset and its compiled template (shared by the users
whose rules differ only by their own ID: core/push_templates.py) are cached, dropped on change.

Their evaluation on every new event: push/evaluator.py.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.caching import ENTRY_OVERHEAD, ID_BYTES, ByteLRU, json_size
from homeserver.core.push_rules import (
    DefaultRuleSetting,
    InvalidPushRule,
    UserRule,
    check_kind,
    default_rule_kind,
    find_rule,
    merge_rules,
    normalise_actions,
    parse_user_rule,
)
from homeserver.core.push_templates import (
    RulesetTemplate,
    default_template,
    template_of,
)
from homeserver.errors import Codes, MatrixError
from storage.database import Database
from storage.push import (
    DefaultRuleRow,
    PushRuleRow,
    PushRuleStore,
)

logger = logging.getLogger(__name__)

# Ceiling of the rules cache when the app gives none (config caches.push_rules).
RULES_CACHE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Rules:
    user_id: str
    # The merged ruleset of a user who changed something; None for the server defaults, made
    # when read: most users never change a rule, and a room's evaluation holds all its
    # members' entries (a few hundred bytes each, not the defaults' few kilobytes).
    own: dict[str, list[dict[str, Any]]] | None
    template: RulesetTemplate

    @property
    def merged(self) -> dict[str, list[dict[str, Any]]]:
        return self.own if self.own is not None else merge_rules(self.user_id, [], {})


def _entry_size(entry: _Rules) -> int:
    # The merged ruleset and its compiled form take about twice its JSON's estimate.
    return ENTRY_OVERHEAD + ID_BYTES + (2 * json_size(entry.own) if entry.own is not None else 0)


class PushRuleService:
    def __init__(self, db: Database, rules: PushRuleStore,
                 on_rules_changed: Callable[[str], Awaitable[None]] | None = None, *,
                 cache_bytes: int = RULES_CACHE_BYTES) -> None:
        self._db = db
        self._rules = rules
        self._on_rules_changed = on_rules_changed
        self._cache: ByteLRU[str, _Rules] = ByteLRU(cache_bytes, _entry_size)
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

    @property
    def generation(self) -> int:
        """Moves with every change of any user's rules: a template got from `templates_for`
        stays the user's while it has not moved."""
        return self._generation

    async def templates_for(self, user_ids: Iterable[str]) -> dict[str, RulesetTemplate]:
        """Compiled rulesets of many users: cached ones at once, the others in one query."""
        found: dict[str, RulesetTemplate] = {}
        missing = []
        for user_id in user_ids:
            entry = self._cache.get(user_id)
            if entry is None:
                missing.append(user_id)
            else:
                found[user_id] = entry.template
        if missing:
            generation = self._generation
            for user_id, (rows, defaults) in (await self._rules.rules_of_users(missing)).items():
                found[user_id] = self._remember(user_id, rows, defaults, generation).template
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
        template = default_template(user_id) if not user_rules and not settings else None
        if template is not None:
            entry = _Rules(user_id, None, template)
        else:
            merged = merge_rules(user_id, user_rules, settings)
            entry = _Rules(user_id, merged, template_of(user_id, merged))
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
