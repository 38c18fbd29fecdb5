"""Push rules: the server-default ruleset, a user's own rules merged into it, and the evaluator.

Spec: https://spec.matrix.org/v1.19/client-server-api/#push-rules (kinds, conditions,
actions) and #predefined-rules (the server-default rules).

Rules are kept in the client format the API speaks (`{"rule_id", "default", "enabled",
"actions", "conditions" | "pattern"}`), grouped by kind in evaluation order. For evaluation a
merged ruleset is compiled once (`compile_ruleset`) into a flat tuple of enabled rules whose
conditions are small closures, so evaluating an event for a user is a loop over those.

Legacy mention rules: v1.17 removed `.m.rule.contains_display_name`, `.m.rule.roomnotif` and
`.m.rule.contains_user_name` from the spec. Homeservers may define server-default rules of
their own (their IDs start with a dot), so we keep them, as Synapse does, for the clients and
bridges that still mention people in the body only; as the spec said from v1.7 to v1.16, they
do not apply to an event whose content has an `m.mentions` property.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Evaluation order of the kinds (spec: "Push Rules", the list of kinds).
KINDS = ("override", "content", "room", "sender", "underride")
# Spec: "Historical Actions" — clients and homeservers MUST ignore (strip) them.
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})
LEGACY_MENTION_RULES = frozenset({".m.rule.contains_display_name", ".m.rule.roomnotif", ".m.rule.contains_user_name"})
CONDITION_KINDS = frozenset({
    "event_match", "event_property_is", "event_property_contains", "contains_display_name",
    "room_member_count", "sender_notification_permission",
})
# A default notification power level for keys the power levels do not name (spec:
# m.room.power_levels, `notifications.room` defaults to 50).
DEFAULT_NOTIFICATION_LEVEL = 50
MAX_PATTERN_LENGTH = 1000
_SAFE_INT = 2 ** 53 - 1


class InvalidPushRule(ValueError):
    """A rule a client sent that cannot be stored. `missing` marks an absent required field."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


# --- the server-default rules ----------------------------------------------------------------

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[dict[str, Any]] | None, actions: list[Any], *,
          enabled: bool = True, pattern: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"rule_id": rule_id, "default": True, "enabled": enabled, "actions": actions}
    if conditions is not None:
        rule["conditions"] = conditions
    if pattern is not None:
        rule["pattern"] = pattern
    return rule


def default_rules(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The server-default rules for `user_id`, by kind, in priority order (fresh dicts).

    `.m.rule.master` is first of all: it outranks even user-defined rules; the other
    defaults rank below the user's rules of their kind (spec: "Predefined Rules").
    """
    localpart = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else user_id
    return {
        "override": [
            # .m.rule.master: matches everything; enabled, it turns notifications off.
            _rule(".m.rule.master", [], [], enabled=False),
            _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
            _rule(".m.rule.invite_for_me", [
                _match("type", "m.room.member"), _match("content.membership", "invite"), _match("state_key", user_id),
            ], ["notify", dict(_SOUND)]),
            _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
            # v1.7: intentional mentions (m.mentions).
            _rule(".m.rule.is_user_mention", [
                {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": user_id},
            ], ["notify", dict(_SOUND), dict(_HIGHLIGHT)]),
            # Legacy (see the module docstring): the display name in the body.
            _rule(".m.rule.contains_display_name", [{"kind": "contains_display_name"}],
                  ["notify", dict(_SOUND), dict(_HIGHLIGHT)]),
            _rule(".m.rule.is_room_mention", [
                {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
                {"kind": "sender_notification_permission", "key": "room"},
            ], ["notify", dict(_HIGHLIGHT)]),
            # Legacy: "@room" in the body, from a sender allowed to notify the room.
            _rule(".m.rule.roomnotif", [
                _match("content.body", "@room"), {"kind": "sender_notification_permission", "key": "room"},
            ], ["notify", dict(_HIGHLIGHT)]),
            _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")],
                  ["notify", dict(_HIGHLIGHT)]),
            _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
            _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
            # v1.9: edits do not notify again.
            _rule(".m.rule.suppress_edits", [
                {"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"},
            ], []),
        ],
        "content": [
            # Legacy: the user's localpart in the body, at word boundaries.
            _rule(".m.rule.contains_user_name", None, ["notify", dict(_SOUND), dict(_HIGHLIGHT)], pattern=localpart),
        ],
        "room": [],
        "sender": [],
        "underride": [
            _rule(".m.rule.call", [_match("type", "m.call.invite")],
                  ["notify", {"set_tweak": "sound", "value": "ring"}]),
            _rule(".m.rule.encrypted_room_one_to_one", [
                {"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted"),
            ], ["notify", dict(_SOUND)]),
            _rule(".m.rule.room_one_to_one", [
                {"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message"),
            ], ["notify", dict(_SOUND)]),
            _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
            _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
        ],
    }


def default_rule_kind(user_id: str, rule_id: str) -> str | None:
    """The kind of the server-default rule `rule_id`, or None when there is no such rule."""
    for kind, rules in default_rules(user_id).items():
        if any(r["rule_id"] == rule_id for r in rules):
            return kind
    return None


# --- a user's rules ----------------------------------------------------------------------------

@dataclass(frozen=True)
class UserRule:
    """A rule the user defined. `conditions` for override/underride, `pattern` for content."""
    kind: str
    rule_id: str
    actions: list[Any]
    enabled: bool = True
    conditions: list[dict[str, Any]] | None = None
    pattern: str | None = None

    def client_format(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"rule_id": self.rule_id, "default": False, "enabled": self.enabled,
                                "actions": list(self.actions)}
        if self.kind in ("override", "underride"):
            rule["conditions"] = list(self.conditions or [])
        elif self.kind == "content":
            rule["pattern"] = self.pattern or ""
        return rule


@dataclass(frozen=True)
class DefaultRuleSetting:
    """What the user changed on a server-default rule: None leaves the default."""
    enabled: bool | None = None
    actions: list[Any] | None = None


def merge_rules(user_id: str, user_rules: Iterable[UserRule],
                settings: Mapping[tuple[str, str], DefaultRuleSetting]) -> dict[str, list[dict[str, Any]]]:
    """The user's whole ruleset in client format, by kind in evaluation order.

    `user_rules` come in the user's priority order within each kind; `settings` is keyed by
    (kind, rule_id) of a default rule. Order per kind: `.m.rule.master`, then the user's
    rules, then the other server-default rules.
    """
    defaults = default_rules(user_id)
    for kind, rules in defaults.items():
        for rule in rules:
            setting = settings.get((kind, rule["rule_id"]))
            if setting is not None:
                if setting.enabled is not None:
                    rule["enabled"] = setting.enabled
                if setting.actions is not None:
                    rule["actions"] = copy.deepcopy(setting.actions)
    mine: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for user_rule in user_rules:
        if user_rule.kind in mine:
            mine[user_rule.kind].append(user_rule.client_format())
    merged: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        head = [r for r in defaults[kind] if r["rule_id"] == ".m.rule.master"]
        tail = [r for r in defaults[kind] if r["rule_id"] != ".m.rule.master"]
        merged[kind] = head + mine[kind] + tail
    return merged


def find_rule(ruleset: Mapping[str, Sequence[dict[str, Any]]], kind: str, rule_id: str) -> dict[str, Any] | None:
    for rule in ruleset.get(kind, ()):
        if rule["rule_id"] == rule_id:
            return rule
    return None


# --- validation of what clients send ------------------------------------------------------------

def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidPushRule(f"Unknown push rule kind {kind!r}")


def check_new_rule_id(rule_id: str) -> None:
    """Spec (PUT .../pushrules/global/{kind}/{ruleId}): IDs starting with "." are reserved
    for server-default rules; slashes and backslashes are not allowed."""
    if not rule_id:
        raise InvalidPushRule("The rule ID is empty")
    if rule_id.startswith("."):
        raise InvalidPushRule("Rule IDs starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise InvalidPushRule("Rule IDs may not contain '/' or '\\'")


def normalise_actions(actions: Any) -> list[Any]:
    """Validated actions, as given. The historical ones (spec: "Historical Actions") are kept,
    as Synapse keeps them, so that a client reads back what it set (sytest checks it); the
    evaluation ignores them (`compile_ruleset`, `effect_of`)."""
    if not isinstance(actions, list):
        raise InvalidPushRule("'actions' must be a list")
    out: list[Any] = []
    for action in actions:
        if isinstance(action, str):
            if action not in HISTORICAL_ACTIONS and action != "notify":
                raise InvalidPushRule(f"Unrecognised action {action!r}")
            out.append(action)
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise InvalidPushRule("An object action must have a string 'set_tweak'")
            out.append(action)
        else:
            raise InvalidPushRule("Each action must be a string or an object")
    return out


def _check_condition(condition: Any) -> None:
    if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
        raise InvalidPushRule("Each condition must be an object with a string 'kind'")
    kind = condition["kind"]
    # Unknown kinds are stored as they are: they never match (spec: "Conditions").
    if kind == "event_match":
        if not isinstance(condition.get("key"), str) or not isinstance(condition.get("pattern"), str):
            raise InvalidPushRule("event_match needs a string 'key' and 'pattern'")
        if len(condition["pattern"]) > MAX_PATTERN_LENGTH:
            raise InvalidPushRule("The pattern is too long")
    elif kind in ("event_property_is", "event_property_contains"):
        if not isinstance(condition.get("key"), str) or "value" not in condition:
            raise InvalidPushRule(f"{kind} needs a string 'key' and a 'value'")
        if not _is_scalar(condition["value"]):
            raise InvalidPushRule(f"{kind}: 'value' must be a string, an integer, a boolean or null")
    elif kind == "room_member_count":
        if not isinstance(condition.get("is"), str) or _parse_member_count(condition["is"]) is None:
            raise InvalidPushRule("room_member_count needs 'is': an integer with an optional ==, <, >, <= or >=")
    elif kind == "sender_notification_permission":
        if not isinstance(condition.get("key"), str):
            raise InvalidPushRule("sender_notification_permission needs a string 'key'")


def parse_user_rule(kind: str, rule_id: str, body: Mapping[str, Any]) -> UserRule:
    """The rule a PUT body describes (spec: setPushRule). Raises InvalidPushRule."""
    check_kind(kind)
    check_new_rule_id(rule_id)
    if "actions" not in body:
        raise InvalidPushRule("'actions' is required", missing=True)
    actions = normalise_actions(body["actions"])
    conditions: list[dict[str, Any]] | None = None
    pattern: str | None = None
    if kind in ("override", "underride"):
        raw = body.get("conditions", [])
        if not isinstance(raw, list):
            raise InvalidPushRule("'conditions' must be a list")
        for condition in raw:
            _check_condition(condition)
        conditions = raw
    elif kind == "content":
        pattern = body.get("pattern")
        if pattern is None:
            raise InvalidPushRule("'pattern' is required for content rules", missing=True)
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            raise InvalidPushRule("'pattern' must be a string of at most 1000 characters")
    return UserRule(kind, rule_id, actions, True, conditions, pattern)


# --- matching ------------------------------------------------------------------------------------

_MISSING = object()
_WORD = "A-Za-z0-9_"


@lru_cache(maxsize=1024)
def split_key(key: str) -> tuple[str, ...]:
    """A dot-separated property path (spec appendix: "Dot-separated property paths"): `\\.`
    is a literal dot and `\\\\` a literal backslash; any other backslash is itself."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        char = key[i]
        if char == "\\" and i + 1 < len(key) and key[i + 1] in ".\\":
            current.append(key[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted path of the event, or `_MISSING`."""
    value: Any = event
    for part in split_key(key):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


@lru_cache(maxsize=4096)
def glob_regex(pattern: str, word_boundary: bool) -> re.Pattern[str]:
    """Spec appendix "Glob-style matching": `*` is zero or more characters, `?` exactly one;
    case-insensitive. With `word_boundary` the match may be any substring that starts and
    ends at a word boundary: the value's start or end, or a character outside [A-Za-z0-9_]."""
    body = []
    for char in re.sub(r"\*+", "*", pattern):
        body.append(".*?" if char == "*" else "." if char == "?" else re.escape(char))
    regex = "".join(body)
    if word_boundary:
        regex = f"(?<![{_WORD}]){regex}(?![{_WORD}])"
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def glob_matches(pattern: str, value: str, *, word_boundary: bool = False) -> bool:
    regex = glob_regex(pattern, word_boundary)
    return (regex.search(value) if word_boundary else regex.fullmatch(value)) is not None


def _is_scalar(value: Any) -> bool:
    """Non-compound canonical JSON values (spec: event_property_is)."""
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -_SAFE_INT <= value <= _SAFE_INT


def _same_scalar(a: Any, b: Any) -> bool:
    # Exact: no casts, and in particular true is not 1.
    return type(a) is type(b) and a == b and _is_scalar(a)


_COUNT = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")


def _parse_member_count(spec: str) -> tuple[str, int] | None:
    match = _COUNT.match(spec.strip())
    if match is None:
        return None
    return match.group(1) or "==", int(match.group(2))


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class PushContext:
    """What a rule may look at beyond the event itself, for one user.

    `notification_levels` maps a key of the power levels' `notifications` (e.g. "room") to the
    level the sender needs; keys absent from it need DEFAULT_NOTIFICATION_LEVEL.
    """
    member_count: int
    display_name: str | None
    sender_power_level: float
    notification_levels: Mapping[str, int] = field(default_factory=dict)


Condition = Callable[[Mapping[str, Any], PushContext], bool]


def _never(event: Mapping[str, Any], ctx: PushContext) -> bool:
    return False


def compile_condition(condition: Mapping[str, Any]) -> Condition:
    """A condition as a predicate. Unknown or malformed conditions never match (spec)."""
    kind = condition.get("kind")
    if kind == "event_match":
        key, pattern = condition.get("key"), condition.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return _never
        word = key == "content.body"  # spec: the content.body special case
        if "*" not in pattern and "?" not in pattern:
            # A literal (most rules: event types, user IDs, localparts): no regex to build.
            literal = pattern.lower()

            def literal_match(event: Mapping[str, Any], ctx: PushContext) -> bool:
                value = lookup(event, key)
                if not isinstance(value, str):
                    return False
                return _contains_word(_lower(value), literal) if word else _lower(value) == literal
            return literal_match
        regex = glob_regex(pattern, word)

        def event_match(event: Mapping[str, Any], ctx: PushContext) -> bool:
            value = lookup(event, key)
            if not isinstance(value, str):
                return False
            return (regex.search(value) if word else regex.fullmatch(value)) is not None
        return event_match
    if kind == "event_property_is":
        key, expected = condition.get("key"), condition.get("value", _MISSING)
        if not isinstance(key, str) or expected is _MISSING or not _is_scalar(expected):
            return _never
        return lambda event, ctx: _same_scalar(lookup(event, key), expected)
    if kind == "event_property_contains":
        key, expected = condition.get("key"), condition.get("value", _MISSING)
        if not isinstance(key, str) or expected is _MISSING or not _is_scalar(expected):
            return _never

        def contains(event: Mapping[str, Any], ctx: PushContext) -> bool:
            value = lookup(event, key)
            return isinstance(value, list) and any(_same_scalar(item, expected) for item in value)
        return contains
    if kind == "contains_display_name":
        def contains_display_name(event: Mapping[str, Any], ctx: PushContext) -> bool:
            body = lookup(event, "content.body")
            if not ctx.display_name or not isinstance(body, str):
                return False
            # The display name as a literal (not a glob), at word boundaries, any case.
            return _contains_word(_lower(body), _lower(ctx.display_name))
        return contains_display_name
    if kind == "room_member_count":
        parsed = _parse_member_count(condition["is"]) if isinstance(condition.get("is"), str) else None
        if parsed is None:
            return _never
        compare, number = _COMPARE[parsed[0]], parsed[1]
        return lambda event, ctx: compare(ctx.member_count, number)
    if kind == "sender_notification_permission":
        key = condition.get("key")
        if not isinstance(key, str):
            return _never
        return lambda event, ctx: ctx.sender_power_level >= ctx.notification_levels.get(key, DEFAULT_NOTIFICATION_LEVEL)
    return _never


@lru_cache(maxsize=256)
def _lower(text: str) -> str:
    # One event is matched for many users: its body is lowered once, not once per rule and user.
    return text.lower()


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _contains_word(text: str, word: str) -> bool:
    """`word` occurs in `text` between word boundaries (both already lower case); an empty
    word never matches."""
    if not word:
        return False
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if ((start == 0 or text[start - 1] not in _WORD_CHARS)
                and (end == len(text) or text[end] not in _WORD_CHARS)):
            return True
        start = text.find(word, start + 1)
    return False


# Public names for the per-member evaluation (core/push_templates.py).
contains_word = _contains_word
is_scalar = _is_scalar


# --- evaluation --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CompiledRule:
    kind: str
    rule_id: str
    conditions: tuple[Condition, ...]
    actions: tuple[Any, ...]


@dataclass(frozen=True)
class CompiledRuleset:
    rules: tuple[CompiledRule, ...]


def compile_ruleset(ruleset: Mapping[str, Sequence[Mapping[str, Any]]]) -> CompiledRuleset:
    """The enabled rules of a merged ruleset in evaluation order, ready to evaluate."""
    compiled: list[CompiledRule] = []
    for kind in KINDS:
        for rule in ruleset.get(kind, ()):
            if not rule.get("enabled", True):
                continue  # spec: disabled rules never match
            rule_id = rule["rule_id"]
            conditions: list[Condition]
            if kind in ("override", "underride"):
                conditions = [compile_condition(c) if isinstance(c, Mapping) else _never
                              for c in rule.get("conditions") or []]
            elif kind == "content":
                pattern = rule.get("pattern")
                conditions = [compile_condition({"kind": "event_match", "key": "content.body", "pattern": pattern})]
            elif kind == "room":
                conditions = [_equals("room_id", rule_id)]
            else:  # sender
                conditions = [_equals("sender", rule_id)]
            actions = tuple(a for a in rule.get("actions") or []
                            if not (isinstance(a, str) and a in HISTORICAL_ACTIONS))
            compiled.append(CompiledRule(kind, rule_id, tuple(conditions), actions))
    return CompiledRuleset(tuple(compiled))


def _equals(key: str, expected: str) -> Condition:
    return lambda event, ctx: event.get(key) == expected


def evaluate(ruleset: CompiledRuleset, event: Mapping[str, Any], ctx: PushContext) -> list[Any] | None:
    """The actions of the first enabled rule that matches `event` (a client- or PDU-format
    dict with type, sender, room_id, state_key and content), or None when none matches."""
    content = event.get("content")
    has_mentions = isinstance(content, Mapping) and "m.mentions" in content
    for rule in ruleset.rules:
        if has_mentions and rule.rule_id in LEGACY_MENTION_RULES:
            continue
        if all(condition(event, ctx) for condition in rule.conditions):
            return list(rule.actions)
    return None


@dataclass(frozen=True)
class Effect:
    """What actions mean for a notification: does it notify, is it highlighted, its tweaks."""
    notify: bool
    highlight: bool
    tweaks: dict[str, Any]


def effect_of(actions: Sequence[Any] | None) -> Effect:
    """Spec "Actions": `notify`; `set_tweak` entries (a highlight tweak without a value is
    true; no highlight tweak is false). Historical actions are ignored."""
    notify = False
    tweaks: dict[str, Any] = {}
    for action in actions or ():
        if action == "notify":
            notify = True
        elif isinstance(action, Mapping) and isinstance(action.get("set_tweak"), str):
            name = action["set_tweak"]
            if name == "highlight":
                value = action.get("value", True)
                tweaks[name] = value if isinstance(value, bool) else bool(value)
            else:
                tweaks[name] = action.get("value")
    return Effect(notify, tweaks.get("highlight", False) is True, tweaks)
