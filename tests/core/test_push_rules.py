"""Push rules: the default ruleset, merging a user's rules, conditions, and the spec's default behaviour."""

import pytest

from homeserver.core.push_rules import (
    KINDS, DefaultRuleSetting, InvalidPushRule, PushContext, UserRule, compile_ruleset, default_rule_kind,
    default_rules, effect_of, evaluate, find_rule, glob_matches, lookup, merge_rules, normalise_actions,
    parse_user_rule, split_key,
)

ME = "@alice:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"


def message(body="hello", sender=BOB, msgtype="m.text", **content):
    return {"type": "m.room.message", "sender": sender, "room_id": ROOM,
            "content": {"msgtype": msgtype, "body": body, **content}}


def ctx(members=5, display_name="Alice Liddell", sender_level=0, room_level=50):
    return PushContext(member_count=members, display_name=display_name, sender_power_level=sender_level,
                       notification_levels={"room": room_level})


def run(event, context=None, user_rules=(), settings=None, user_id=ME):
    rules = compile_ruleset(merge_rules(user_id, user_rules, settings or {}))
    return evaluate(rules, event, context or ctx())


def matched_rule(event, context=None, user_rules=(), settings=None):
    """The rule_id of the first rule that matches (by evaluating rule prefixes)."""
    merged = merge_rules(ME, user_rules, settings or {})
    for kind in KINDS:
        for rule in merged[kind]:
            only = {k: [] for k in KINDS}
            only[kind] = [rule]
            if rule.get("enabled") and evaluate(compile_ruleset(only), event, context or ctx()) is not None:
                return rule["rule_id"]
    return None


# --- the default ruleset --------------------------------------------------------------------------

def test_default_rules_follow_the_spec_order():
    rules = default_rules(ME)
    assert [r["rule_id"] for r in rules["override"]] == [
        ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
        ".m.rule.is_user_mention", ".m.rule.contains_display_name", ".m.rule.is_room_mention",
        ".m.rule.roomnotif", ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl",
        ".m.rule.suppress_edits",
    ]
    assert [r["rule_id"] for r in rules["content"]] == [".m.rule.contains_user_name"]
    assert rules["content"][0]["pattern"] == "alice"
    assert [r["rule_id"] for r in rules["underride"]] == [
        ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
        ".m.rule.encrypted",
    ]
    assert rules["room"] == rules["sender"] == []
    assert all(r["default"] for kind in rules.values() for r in kind)
    master = rules["override"][0]
    assert master == {"rule_id": ".m.rule.master", "default": True, "enabled": False, "conditions": [], "actions": []}
    invite = find_rule(rules, "override", ".m.rule.invite_for_me")
    assert {"kind": "event_match", "key": "state_key", "pattern": ME} in invite["conditions"]
    mention = find_rule(rules, "override", ".m.rule.is_user_mention")
    assert mention["conditions"] == [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": ME}]
    assert default_rule_kind(ME, ".m.rule.message") == "underride"
    assert default_rule_kind(ME, ".m.rule.nope") is None


def test_default_rules_are_fresh_copies():
    a = default_rules(ME)
    a["override"][1]["actions"].append("notify")
    assert default_rules(ME)["override"][1]["actions"] == []


# --- spec default behaviour ----------------------------------------------------------------------

def test_plain_message_in_a_group_notifies_without_highlight():
    actions = run(message("lunch?"))
    assert actions == ["notify"]
    assert effect_of(actions).notify and not effect_of(actions).highlight


def test_one_to_one_room_notifies_with_sound():
    actions = run(message("hi"), ctx(members=2))
    assert actions == ["notify", {"set_tweak": "sound", "value": "default"}]
    assert effect_of(actions).tweaks == {"sound": "default"}


def test_encrypted_events():
    event = {"type": "m.room.encrypted", "sender": BOB, "room_id": ROOM, "content": {"ciphertext": "x"}}
    assert matched_rule(event, ctx(members=2)) == ".m.rule.encrypted_room_one_to_one"
    assert matched_rule(event, ctx(members=3)) == ".m.rule.encrypted"


def test_user_mention_via_m_mentions_highlights():
    event = message("hey", **{"m.mentions": {"user_ids": [ME]}})
    actions = run(event)
    assert effect_of(actions).highlight and effect_of(actions).notify
    assert effect_of(actions).tweaks["sound"] == "default"
    # Someone else mentioned: a plain message.
    other = message("hey", **{"m.mentions": {"user_ids": ["@carol:example.org"]}})
    assert run(other) == ["notify"]


def test_room_mention_needs_the_notification_power_level():
    event = message("all", **{"m.mentions": {"room": True}})
    assert matched_rule(event, ctx(sender_level=50)) == ".m.rule.is_room_mention"
    assert effect_of(run(event, ctx(sender_level=50))).highlight
    assert run(event, ctx(sender_level=0)) == ["notify"]
    # The level comes from the power levels' notifications.room.
    assert effect_of(run(event, ctx(sender_level=10, room_level=10))).highlight
    # "room": "true" (a string) is not true.
    event = message("all", **{"m.mentions": {"room": "true"}})
    assert run(event, ctx(sender_level=100)) == ["notify"]


def test_legacy_at_room_and_display_name_without_m_mentions():
    assert matched_rule(message("@room lunch is ready"), ctx(sender_level=50)) == ".m.rule.roomnotif"
    assert run(message("@room lunch"), ctx(sender_level=0)) == ["notify"]
    assert matched_rule(message("hi Alice Liddell, how are you")) == ".m.rule.contains_display_name"
    assert matched_rule(message("hi ALICE liddell!")) == ".m.rule.contains_display_name"
    # Word boundaries: inside a word does not count.
    assert run(message("hi Liddellish"), ctx(display_name="Liddell")) == ["notify"]
    assert matched_rule(message("is alice around?"), ctx(display_name=None)) == ".m.rule.contains_user_name"
    assert run(message("malice"), ctx(display_name=None)) == ["notify"]


def test_legacy_rules_do_not_apply_when_the_event_has_m_mentions():
    event = message("@room Alice Liddell alice", **{"m.mentions": {}})
    assert run(event, ctx(sender_level=100)) == ["notify"]


def test_edits_are_suppressed_but_mentions_in_them_still_highlight():
    edit = message("* fixed", **{"m.new_content": {"msgtype": "m.text", "body": "fixed"},
                                 "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}})
    assert run(edit) == []
    assert not effect_of(run(edit)).notify
    mention_edit = dict(edit, content={**edit["content"], "m.mentions": {"user_ids": [ME]}})
    assert effect_of(run(mention_edit)).highlight


def test_notices_reactions_members_and_acls_are_suppressed():
    assert run(message("bot says", msgtype="m.notice")) == []
    reaction = {"type": "m.reaction", "sender": BOB, "room_id": ROOM,
                "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "👍"}}}
    assert run(reaction) == []
    join = {"type": "m.room.member", "sender": BOB, "state_key": BOB, "room_id": ROOM, "content": {"membership": "join"}}
    assert run(join) == []
    acl = {"type": "m.room.server_acl", "sender": BOB, "state_key": "", "room_id": ROOM, "content": {}}
    assert run(acl) == []


def test_invite_for_me():
    invite = {"type": "m.room.member", "sender": BOB, "state_key": ME, "room_id": ROOM,
              "content": {"membership": "invite"}}
    actions = run(invite)
    assert effect_of(actions).notify and not effect_of(actions).highlight
    other = dict(invite, state_key="@carol:example.org")
    assert run(other) == []


def test_tombstone_and_calls():
    tomb = {"type": "m.room.tombstone", "sender": BOB, "state_key": "", "room_id": ROOM,
            "content": {"replacement_room": "!new:example.org"}}
    assert effect_of(run(tomb)).highlight
    # Not a state event: no match of the tombstone rule, nothing else matches either.
    assert run({**tomb, "state_key": None}) is None
    call = {"type": "m.call.invite", "sender": BOB, "room_id": ROOM, "content": {}}
    assert run(call) == ["notify", {"set_tweak": "sound", "value": "ring"}]


def test_unknown_event_types_do_not_notify():
    assert run({"type": "com.example.thing", "sender": BOB, "room_id": ROOM, "content": {}}) is None


def test_master_rule_outranks_user_rules():
    mine = [UserRule("override", "everything", ["notify"], conditions=[])]
    settings = {("override", ".m.rule.master"): DefaultRuleSetting(enabled=True)}
    assert run(message("x"), user_rules=mine, settings=settings) == []
    merged = merge_rules(ME, mine, settings)
    assert [r["rule_id"] for r in merged["override"][:2]] == [".m.rule.master", "everything"]


# --- merging the user's rules ---------------------------------------------------------------------

def test_user_rules_rank_above_defaults_of_their_kind():
    mine = [
        UserRule("room", ROOM, []),
        UserRule("sender", BOB, ["notify", {"set_tweak": "sound", "value": "bob.wav"}]),
        UserRule("content", "cake", ["notify", {"set_tweak": "highlight"}], pattern="cake"),
        UserRule("underride", "late", ["notify"], conditions=[{"kind": "event_match", "key": "type", "pattern": "x.y"}]),
    ]
    merged = merge_rules(ME, mine, {})
    assert [r["rule_id"] for r in merged["content"]] == ["cake", ".m.rule.contains_user_name"]
    assert merged["room"] == [{"rule_id": ROOM, "default": False, "enabled": True, "actions": []}]
    assert merged["content"][0] == {"rule_id": "cake", "default": False, "enabled": True,
                                    "actions": ["notify", {"set_tweak": "highlight"}], "pattern": "cake"}
    assert merged["underride"][0]["rule_id"] == "late"
    # Content rules come before room rules: "cake" highlights even in the muted room.
    assert effect_of(run(message("cake time"), user_rules=mine)).highlight
    # The room rule mutes the room (it ranks above sender and underride rules).
    assert run(message("hi"), user_rules=mine) == []
    # The sender rule applies in other rooms.
    elsewhere = dict(message("hi"), room_id="!other:example.org")
    assert effect_of(run(elsewhere, user_rules=mine)).tweaks == {"sound": "bob.wav"}
    assert run({"type": "x.y", "sender": "@z:example.org", "room_id": "!o:example.org", "content": {}},
               user_rules=mine) == ["notify"]


def test_disabled_rules_never_match():
    mine = [UserRule("sender", BOB, [], enabled=False)]
    assert run(message("hi"), user_rules=mine) == ["notify"]
    settings = {("underride", ".m.rule.message"): DefaultRuleSetting(enabled=False)}
    assert run(message("hi"), settings=settings) is None


def test_default_rule_actions_can_be_changed():
    settings = {("underride", ".m.rule.message"): DefaultRuleSetting(actions=["notify", {"set_tweak": "sound", "value": "x"}])}
    assert run(message("hi"), settings=settings) == ["notify", {"set_tweak": "sound", "value": "x"}]
    merged = merge_rules(ME, [], settings)
    assert find_rule(merged, "underride", ".m.rule.message")["actions"][1]["value"] == "x"
    assert find_rule(merged, "underride", ".m.rule.message")["default"] is True


def test_historical_actions_are_ignored():
    # Kept as given (a client reads back what it set), ignored when evaluating.
    assert normalise_actions(["dont_notify"]) == ["dont_notify"]
    assert normalise_actions(["notify", "coalesce"]) == ["notify", "coalesce"]
    settings = {("underride", ".m.rule.message"): DefaultRuleSetting(actions=["dont_notify"])}
    assert run(message("hi"), settings=settings) == []
    assert effect_of(["dont_notify", "coalesce"]).notify is False


# --- parsing and validating what clients send -------------------------------------------------------

def test_parse_user_rule():
    rule = parse_user_rule("override", "beer", {
        "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                       {"kind": "room_member_count", "is": "<=10"}],
        "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}],
    })
    assert rule.kind == "override" and rule.enabled and len(rule.conditions) == 2
    assert parse_user_rule("content", "c", {"pattern": "cake*lie", "actions": ["notify"]}).pattern == "cake*lie"
    # Unknown condition kinds are stored: they simply never match.
    assert parse_user_rule("override", "u", {"conditions": [{"kind": "org.example.new"}], "actions": []})


@pytest.mark.parametrize("kind,rule_id,body,missing", [
    ("bogus", "x", {"actions": []}, False),
    ("override", ".m.rule.mine", {"actions": []}, False),
    ("override", "a/b", {"actions": []}, False),
    ("override", "a\\b", {"actions": []}, False),
    ("override", "x", {}, True),
    ("override", "x", {"actions": "notify"}, False),
    ("override", "x", {"actions": ["sing"]}, False),
    ("override", "x", {"actions": [{"value": 1}]}, False),
    ("override", "x", {"actions": [], "conditions": {}}, False),
    ("override", "x", {"actions": [], "conditions": [{"key": "type"}]}, False),
    ("override", "x", {"actions": [], "conditions": [{"kind": "event_match", "key": "type"}]}, False),
    ("override", "x", {"actions": [], "conditions": [{"kind": "room_member_count", "is": "lots"}]}, False),
    ("override", "x", {"actions": [], "conditions": [{"kind": "event_property_is", "key": "a", "value": [1]}]}, False),
    ("content", "x", {"actions": []}, True),
    ("content", "x", {"actions": [], "pattern": 3}, False),
])
def test_parse_user_rule_refuses(kind, rule_id, body, missing):
    with pytest.raises(InvalidPushRule) as err:
        parse_user_rule(kind, rule_id, body)
    assert err.value.missing is missing


# --- conditions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,value,expected", [
    ("lunc?*", "Lunch plans", True),
    ("lunc?*", "LUNCH", True),
    ("lunc?*", " lunch", False),
    ("lunc?*", "lunc", False),
    ("m.notice", "m.notice", True),
    ("m.notice", "mxnotice", False),  # '.' is literal
    ("*", "", True),
    ("a[b]c", "a[b]c", True),  # only * and ? are special
    ("", "", True),
])
def test_glob_matching_of_whole_values(pattern, value, expected):
    assert glob_matches(pattern, value) is expected


@pytest.mark.parametrize("pattern,body,expected", [
    ("ex*ple", "An example event.", True),
    ("ex*ple", "exple", True),
    ("ex*ple", "An exciting triple-whammy", True),
    ("cake", "I like cakes", False),
    ("cake", "I like CAKE!", True),
    ("cake", "cake_shop", False),  # '_' is a word character
    ("cake", "café cake", True),
    ("@room", "hello @room!", True),
    ("@room", "x@room", False),
    ("a?c", "say abc now", True),
    ("multi*line", "multi\nline", True),
])
def test_content_body_matches_at_word_boundaries(pattern, body, expected):
    event = message(body)
    condition = {"kind": "event_match", "key": "content.body", "pattern": pattern}
    rules = compile_ruleset({"override": [{"rule_id": "t", "enabled": True, "conditions": [condition], "actions": ["notify"]}]})
    assert (evaluate(rules, event, ctx()) is not None) is expected


def one(condition, event, context=None):
    rules = compile_ruleset({"override": [{"rule_id": "t", "enabled": True, "conditions": [condition], "actions": ["notify"]}]})
    return evaluate(rules, event, context or ctx()) is not None


def test_event_match_needs_a_string_value():
    topic = {"type": "m.room.topic", "state_key": "", "content": {"topic": None, "n": 3}}
    assert not one({"kind": "event_match", "key": "content.topic", "pattern": "*"}, topic)
    assert not one({"kind": "event_match", "key": "content.n", "pattern": "*"}, topic)
    assert not one({"kind": "event_match", "key": "content.absent", "pattern": "*"}, topic)
    assert one({"kind": "event_match", "key": "type", "pattern": "m.room.*"}, topic)


def test_literal_patterns_match_like_globs():
    # Patterns without wildcards take a faster path: same results, any case, whole value.
    event = {"type": "M.Room.Message", "content": {"body": "Ping ALICE, ping"}}
    assert one({"kind": "event_match", "key": "type", "pattern": "m.room.message"}, event)
    assert not one({"kind": "event_match", "key": "type", "pattern": "m.room"}, event)
    assert one({"kind": "event_match", "key": "content.body", "pattern": "alice"}, event)
    assert not one({"kind": "event_match", "key": "content.body", "pattern": "alic"}, event)
    assert one({"kind": "event_match", "key": "content.body", "pattern": "ping"}, event)
    assert not one({"kind": "event_match", "key": "content.body", "pattern": ""}, event)
    assert one({"kind": "event_match", "key": "state_key", "pattern": ""}, {"state_key": ""})


def test_dotted_keys_with_escapes():
    assert split_key("content.m\\.relates_to.rel_type") == ("content", "m.relates_to", "rel_type")
    assert split_key("content.m\\\\foo") == ("content", "m\\foo")
    assert split_key("content.m\\xfoo") == ("content", "m\\xfoo")
    event = {"content": {"m.federate": True, "m\\foo": "bar", "a": {"b": 1}}}
    assert lookup(event, "content.m\\.federate") is True
    assert lookup(event, "content.m\\\\foo") == "bar"
    assert lookup(event, "content.a.b") == 1
    assert one({"kind": "event_property_is", "key": "content.m\\.federate", "value": True}, event)
    # No casts: "true" and 1 are not true, and true is not 1.
    assert not one({"kind": "event_property_is", "key": "content.m\\.federate", "value": "true"}, event)
    assert not one({"kind": "event_property_is", "key": "content.m\\.federate", "value": 1}, event)
    assert not one({"kind": "event_property_is", "key": "content.a.b", "value": True}, event)
    assert one({"kind": "event_property_is", "key": "content.a.b", "value": 1}, event)
    assert not one({"kind": "event_property_is", "key": "content.a", "value": None}, event)
    assert one({"kind": "event_property_is", "key": "content.nothing", "value": None}, {"content": {"nothing": None}})


def test_event_property_contains():
    event = {"content": {"alt_aliases": ["#somewhere:example.org", "#myroom:example.com", {"x": 1}], "n": [1, True]}}
    assert one({"kind": "event_property_contains", "key": "content.alt_aliases", "value": "#myroom:example.com"}, event)
    assert not one({"kind": "event_property_contains", "key": "content.alt_aliases", "value": ":example.com"}, event)
    assert not one({"kind": "event_property_contains", "key": "content.n", "value": 2}, event)
    assert one({"kind": "event_property_contains", "key": "content.n", "value": True}, event)
    assert not one({"kind": "event_property_contains", "key": "content.absent", "value": 1}, event)
    assert not one({"kind": "event_property_contains", "key": "content", "value": 1}, event)


@pytest.mark.parametrize("is_,count,expected", [
    ("2", 2, True), ("2", 3, False), ("==2", 2, True), ("<10", 9, True), ("<10", 10, False),
    (">2", 3, True), (">=3", 3, True), ("<=10", 11, False), ("abc", 2, False), ("=2", 2, False),
])
def test_room_member_count(is_, count, expected):
    assert one({"kind": "room_member_count", "is": is_}, message(), ctx(members=count)) is expected


def test_sender_notification_permission_and_unknown_conditions():
    condition = {"kind": "sender_notification_permission", "key": "room"}
    assert one(condition, message(), ctx(sender_level=50))
    assert not one(condition, message(), ctx(sender_level=49))
    assert one(condition, message(), ctx(sender_level=float("inf")))  # v12 creators
    # A key the power levels do not name needs 50.
    assert one({"kind": "sender_notification_permission", "key": "other"}, message(), ctx(sender_level=50))
    assert not one({"kind": "org.example.unknown"}, message())
    assert not one({"kind": "event_match"}, message())


def test_contains_display_name():
    condition = {"kind": "contains_display_name"}
    assert one(condition, message("ping Alice Liddell"))
    assert not one(condition, message("ping Alice"))
    assert not one(condition, message("ping Alice Liddell"), ctx(display_name=""))
    assert not one(condition, message("ping Alice Liddell"), ctx(display_name=None))
    # Glob characters in a display name are literal.
    assert one(condition, message("hi a*b"), ctx(display_name="a*b"))
    assert not one(condition, message("hi aXXb"), ctx(display_name="a*b"))
    assert not one(condition, {"type": "m.room.message", "content": {"body": 3}})


def test_effect_of_actions():
    effect = effect_of(["notify", {"set_tweak": "highlight", "value": False}, {"set_tweak": "sound", "value": "x"}])
    assert effect.notify and not effect.highlight and effect.tweaks == {"highlight": False, "sound": "x"}
    assert effect_of([{"set_tweak": "highlight"}]).highlight
    assert not effect_of(None).notify
