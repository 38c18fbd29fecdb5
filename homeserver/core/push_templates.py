"""Push rules evaluated once per event for every member who shares a ruleset.

Every user's merged ruleset names the user: the server-default rules match the user's ID
(`.m.rule.invite_for_me`, `.m.rule.is_user_mention`) and localpart (`.m.rule.contains_user_name`),
and user-defined rules may too. Replace those strings by placeholders and most users of a
server have the same ruleset, its *template* (`shape_of`, `template_of`): one compiled object
shared by all of them.

A template's conditions are split: *shared* ones give the same answer for every member of
the room (the event's fields, the room's member count, the sender's power) and *member* ones
look at the member (their ID, localpart, display name). `plan` walks the rules once per event
with the shared conditions and keeps the few rules whose outcome depends on the member, each
member condition prepared for the event (its value looked up and lowered once; a condition
that no member can meet drops its rule); `Plan.actions_for(member)` then costs a few string
comparisons per member. For any user and event the outcome is that of `evaluate` on the
user's own compiled ruleset (tests/core/test_push_templates.py checks it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.core.push_rules import (
    HISTORICAL_ACTIONS,
    KINDS,
    LEGACY_MENTION_RULES,
    Condition,
    PushContext,
    compile_condition,
    contains_word,
    glob_regex,
    is_scalar,
    lookup,
    merge_rules,
)

# Distinct templates kept compiled (users with rules of their own make one each).
MAX_TEMPLATES = 2048


class Placeholder:
    """Stands for the evaluated member's user ID or localpart in a template."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:  # unquoted: a template's key never mistakes it for a string
        return f"<{self.name}>"


USER_ID = Placeholder("user_id")
LOCALPART = Placeholder("localpart")


@dataclass(frozen=True, slots=True)
class Member:
    """What member conditions look at, lowered once per member."""
    user_id: str
    user_lower: str
    localpart_lower: str
    display_name_lower: str | None
    plain: bool  # no glob characters in the user ID (legacy IDs may have them)


def member(user_id: str, display_name: str | None) -> Member:
    localpart = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else user_id
    return Member(user_id, user_id.lower(), localpart.lower(), display_name.lower() if display_name else None,
                  "*" not in user_id and "?" not in user_id)


@dataclass(frozen=True, slots=True)
class MemberTest:
    """A member condition prepared for one event. With `attr` set, only a member whose
    attribute `attr` is `in within` (a substring of the event's text, or one of a set of
    values) can pass, or any member whose ID has glob characters when `globbed`: a test
    without a call that leaves out most members of a big room at once (`Plan.matching`)."""
    test: Callable[[Member], bool]
    attr: str | None = None
    within: Container[str] = ""
    globbed: bool = False

    def __call__(self, m: Member) -> bool:
        return self.test(m)

    def prefilter(self, members: list[Member]) -> list[Member]:
        if self.attr is None:
            return members
        attr, within = self.attr, self.within
        if self.globbed:
            return [m for m in members if not m.plain or getattr(m, attr) in within]
        return [m for m in members if (value := getattr(m, attr)) is not None and value in within]


# A member condition, prepared for one event: a test of the member, or None when no member
# can meet it.
MemberCondition = Callable[[Mapping[str, Any]], MemberTest | None]


@dataclass(frozen=True, slots=True)
class TemplateRule:
    rule_id: str
    shared: tuple[Condition, ...]
    member: tuple[MemberCondition, ...]
    actions: tuple[Any, ...]


@dataclass(frozen=True)
class RulesetTemplate:
    rules: tuple[TemplateRule, ...]


# --- templates ------------------------------------------------------------------------------------

def _substitute(value: str, user_id: str, localpart: str) -> Any:
    if "*" in value or "?" in value:  # a glob: kept as it is (no ID of today has these)
        return value
    if value == user_id:
        return USER_ID
    if value == localpart:
        return LOCALPART
    return value


def shape_of(user_id: str, merged: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The merged ruleset with the user's ID and localpart (as patterns and values of
    conditions, and content rules' patterns) replaced by placeholders."""
    localpart = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else user_id
    shape: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        rules = []
        for rule in merged.get(kind, ()):
            rule = dict(rule)
            if kind == "content" and isinstance(rule.get("pattern"), str):
                rule["pattern"] = _substitute(rule["pattern"], user_id, localpart)
            conditions = rule.get("conditions")
            if isinstance(conditions, list):
                new = []
                for condition in conditions:
                    if isinstance(condition, Mapping):
                        condition = dict(condition)
                        field = "pattern" if condition.get("kind") == "event_match" else "value"
                        if condition.get("kind") in ("event_match", "event_property_is", "event_property_contains") \
                                and isinstance(condition.get(field), str):
                            condition[field] = _substitute(condition[field], user_id, localpart)
                    new.append(condition)
                rule["conditions"] = new
            rules.append(rule)
        shape[kind] = rules
    return shape


_templates: OrderedDict[str, RulesetTemplate] = OrderedDict()


def template_of(user_id: str, merged: Mapping[str, Sequence[Mapping[str, Any]]]) -> RulesetTemplate:
    """The user's ruleset as a template, the same object for every user whose ruleset has
    the same shape."""
    shape = shape_of(user_id, merged)
    key = repr(shape)
    found = _templates.get(key)
    if found is not None:
        _templates.move_to_end(key)
        return found
    template = compile_template(shape)
    _templates[key] = template
    if len(_templates) > MAX_TEMPLATES:
        _templates.popitem(last=False)
    return template


_default: tuple[RulesetTemplate, frozenset[str]] | None = None


def default_template(user_id: str) -> RulesetTemplate | None:
    """The template of a user who changed nothing in the server-default rules, without
    building their ruleset; None when their ID or localpart is also another literal of those
    rules (a user "@invite:..." would be matched as a membership): then use `template_of`."""
    global _default
    if _default is None:
        probe = "@\x00probe:\x00server"
        merged = merge_rules(probe, [], {})
        literals = set()
        for rules in shape_of(probe, merged).values():
            for rule in rules:
                literals.add(rule.get("pattern"))
                for condition in rule.get("conditions") or []:
                    literals.update((condition.get("pattern"), condition.get("value")))
        _default = (template_of(probe, merged), frozenset(x for x in literals if isinstance(x, str)))
    template, literals = _default
    localpart = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else user_id
    if user_id in literals or localpart in literals or any(c in user_id for c in "*?"):
        return None
    return template


def compile_template(shape: Mapping[str, Sequence[Mapping[str, Any]]]) -> RulesetTemplate:
    rules: list[TemplateRule] = []
    for kind in KINDS:
        for rule in shape.get(kind, ()):
            if not rule.get("enabled", True):
                continue  # spec: disabled rules never match
            rule_id = rule["rule_id"]
            shared: list[Condition] = []
            per_member: list[MemberCondition] = []
            if kind in ("override", "underride"):
                for condition in rule.get("conditions") or []:
                    if not isinstance(condition, Mapping):
                        shared.append(_never)
                        continue
                    found = _member_condition(condition)
                    if found is not None:
                        per_member.append(found)
                    else:
                        shared.append(compile_condition(condition))
            elif kind == "content":
                pattern = rule.get("pattern")
                if isinstance(pattern, Placeholder):
                    per_member.append(_match_member("content.body", pattern))
                else:
                    shared.append(compile_condition({"kind": "event_match", "key": "content.body",
                                                     "pattern": pattern}))
            elif kind == "room":
                shared.append(_equals("room_id", rule_id))
            else:  # sender
                shared.append(_equals("sender", rule_id))
            actions = tuple(a for a in rule.get("actions") or []
                            if not (isinstance(a, str) and a in HISTORICAL_ACTIONS))
            rules.append(TemplateRule(rule_id, tuple(shared), tuple(per_member), actions))
    return RulesetTemplate(tuple(rules))


def _never(event: Mapping[str, Any], ctx: PushContext) -> bool:
    return False


def _equals(key: str, expected: str) -> Condition:
    return lambda event, ctx: event.get(key) == expected


def _member_condition(condition: Mapping[str, Any]) -> MemberCondition | None:
    """The condition as a member condition, or None when it is a shared one."""
    kind = condition.get("kind")
    if kind == "contains_display_name":
        return _display_name
    if kind == "event_match" and isinstance(condition.get("pattern"), Placeholder) \
            and isinstance(condition.get("key"), str):
        return _match_member(condition["key"], condition["pattern"])
    if kind in ("event_property_is", "event_property_contains") and isinstance(condition.get("value"), Placeholder) \
            and isinstance(condition.get("key"), str):
        return _property_member(condition["key"], condition["value"], contains=kind == "event_property_contains")
    return None


def _display_name(event: Mapping[str, Any]) -> MemberTest | None:
    body = lookup(event, "content.body")
    if not isinstance(body, str):
        return None
    text = body.lower()
    # The display name as a literal (not a glob), at word boundaries, any case.
    return MemberTest(lambda m: m.display_name_lower is not None and contains_word(text, m.display_name_lower),
                      "display_name_lower", text)


def _wanted(m: Member, which: Placeholder) -> str:
    return m.user_lower if which is USER_ID else m.localpart_lower


def _match_member(key: str, which: Placeholder) -> MemberCondition:
    word = key == "content.body"  # spec: the content.body special case

    def prepare(event: Mapping[str, Any]) -> MemberTest | None:
        value = lookup(event, key)
        if not isinstance(value, str):
            return None
        text = value.lower()
        attr = "user_lower" if which is USER_ID else "localpart_lower"
        # A member's ID or localpart without glob characters matches only where it occurs.
        if word:
            return MemberTest(lambda m: _word_or_glob(text, value, _wanted(m, which)), attr, text, globbed=True)
        return MemberTest(lambda m: _equal_or_glob(text, value, _wanted(m, which)), attr, frozenset((text,)),
                          globbed=True)
    return prepare


def _word_or_glob(text: str, value: str, pattern: str) -> bool:
    if "*" in pattern or "?" in pattern:  # another member's ID with glob characters (legacy IDs)
        return glob_regex(pattern, True).search(value) is not None
    return contains_word(text, pattern)


def _equal_or_glob(text: str, value: str, pattern: str) -> bool:
    if "*" in pattern or "?" in pattern:
        return glob_regex(pattern, False).fullmatch(value) is not None
    return text == pattern


def _property_member(key: str, which: Placeholder, *, contains: bool) -> MemberCondition:
    def prepare(event: Mapping[str, Any]) -> MemberTest | None:
        value = lookup(event, key)
        if contains:
            if not isinstance(value, list):
                return None
            # Exact: strings only (a placeholder stands for a string), no case folding.
            found = frozenset(v for v in value if isinstance(v, str) and is_scalar(v))
            if not found:
                return None
            if which is USER_ID:
                return MemberTest(lambda m: m.user_id in found, "user_id", found)
            return MemberTest(lambda m: _localpart(m) in found)
        if not isinstance(value, str):
            return None
        if which is USER_ID:
            return MemberTest(lambda m: value == m.user_id, "user_id", frozenset((value,)))
        return MemberTest(lambda m: value == _localpart(m))
    return prepare


def _localpart(m: Member) -> str:
    return m.user_id[1:].split(":", 1)[0] if m.user_id.startswith("@") else m.user_id


# --- plans ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Plan:
    """A template's outcome for one event: the rules that depend on the member, in order,
    then what every other member gets."""
    candidates: tuple[tuple[tuple[MemberTest, ...], tuple[Any, ...]], ...]
    fallback: tuple[Any, ...] | None

    def actions_for(self, m: Member) -> tuple[Any, ...] | None:
        for tests, actions in self.candidates:
            for test in tests:
                if not test(m):
                    break
            else:
                return actions
        return self.fallback

    def matching(self, members: list[Member]) -> dict[str, tuple[Any, ...]]:
        """user ID -> actions for the members a candidate rule matches (the first one in
        order); every other member gets `fallback`. The same answers as `actions_for` for
        each member, with the members each test cannot pass left out without a call."""
        found: dict[str, tuple[Any, ...]] = {}
        for tests, actions in self.candidates:
            pool = members
            for test in tests:
                pool = test.prefilter(pool)
            for m in pool:
                if m.user_id not in found and all(test(m) for test in tests):
                    found[m.user_id] = actions
        return found


def plan(template: RulesetTemplate, event: Mapping[str, Any], ctx: PushContext) -> Plan:
    """Walk the template's rules once for `event` with the shared conditions (`ctx`: the
    room's member count, the sender's power; its display name is not used)."""
    content = event.get("content")
    has_mentions = isinstance(content, Mapping) and "m.mentions" in content
    candidates = []
    for rule in template.rules:
        if has_mentions and rule.rule_id in LEGACY_MENTION_RULES:
            continue
        if not all(condition(event, ctx) for condition in rule.shared):
            continue
        if not rule.member:
            return Plan(tuple(candidates), rule.actions)
        tests = []
        for prepare in rule.member:
            test = prepare(event)
            if test is None:
                break
            tests.append(test)
        else:
            candidates.append((tuple(tests), rule.actions))
    return Plan(tuple(candidates), None)


def actions_list(actions: tuple[Any, ...] | None) -> list[Any] | None:
    """A plan's actions as `evaluate` returns them (a fresh list)."""
    return None if actions is None else list(actions)
