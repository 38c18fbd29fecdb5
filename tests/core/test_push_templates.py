"""Push rule templates: one evaluation per event for every member who shares a ruleset gives
each member what their own ruleset gives them."""

import itertools

from homeserver.core.push_rules import (
    DefaultRuleSetting, PushContext, UserRule, compile_ruleset, evaluate, merge_rules,
)
from homeserver.core.push_templates import default_template, member, plan, template_of

ROOM = "!room:example.org"
SENDER = "@carol:example.org"
USERS = {  # user ID -> display name
    "@alice:example.org": "Alice Liddell",
    "@bob:example.org": "bob",
    "@dan:example.org": None,
    "@room:example.org": "Room",
}


def events():
    yield {"type": "m.room.message", "sender": SENDER, "room_id": ROOM, "content": {"msgtype": "m.text", "body": "hi"}}
    for body in ("hello alice", "Alice Liddell, look", "BOB!", "ask @room", "dan's", "bobby", ""):
        yield {"type": "m.room.message", "sender": SENDER, "room_id": ROOM,
               "content": {"msgtype": "m.text", "body": body}}
    yield {"type": "m.room.message", "sender": SENDER, "room_id": ROOM,
           "content": {"msgtype": "m.notice", "body": "alice"}}
    for mentions in ({"user_ids": ["@bob:example.org"]}, {"room": True}, {}, {"user_ids": "@bob:example.org"}):
        yield {"type": "m.room.message", "sender": SENDER, "room_id": ROOM,
               "content": {"msgtype": "m.text", "body": "alice bob", "m.mentions": mentions}}
    for target in USERS:
        yield {"type": "m.room.member", "sender": SENDER, "room_id": ROOM, "state_key": target,
               "content": {"membership": "invite"}}
    yield {"type": "m.room.encrypted", "sender": SENDER, "room_id": ROOM, "content": {"ciphertext": "x"}}
    yield {"type": "m.call.invite", "sender": SENDER, "room_id": ROOM, "content": {}}
    yield {"type": "m.room.tombstone", "sender": SENDER, "room_id": ROOM, "state_key": "", "content": {}}
    yield {"type": "m.reaction", "sender": SENDER, "room_id": ROOM, "content": {}}


def rulesets(user_id):
    """The default rules and a few of the user's own, some naming the user."""
    localpart = user_id[1:].split(":")[0]
    yield [], {}
    yield [UserRule("content", "mine", ["notify"], pattern=localpart)], {}
    yield [UserRule("override", "me", ["notify", {"set_tweak": "highlight"}],
                    conditions=[{"kind": "event_match", "key": "content.body", "pattern": f"*{localpart}*"}])], {}
    yield [UserRule("override", "invited", ["notify", {"set_tweak": "sound", "value": "x"}],
                    conditions=[{"kind": "event_property_is", "key": "state_key", "value": user_id}])], {}
    yield [UserRule("sender", SENDER, [])], {}
    yield [], {("override", ".m.rule.master"): DefaultRuleSetting(enabled=True)}
    yield [], {("override", ".m.rule.contains_display_name"): DefaultRuleSetting(enabled=False)}


def test_a_plan_gives_every_member_what_their_own_rules_give():
    checked = 0
    for members, sender_level in itertools.product((2, 5), (0, 100)):
        ctx = PushContext(member_count=members, display_name=None, sender_power_level=sender_level,
                          notification_levels={"room": 50})
        for case in range(7):
            setups = {u: list(rulesets(u))[case] for u in USERS}
            templates = {u: template_of(u, merge_rules(u, *setups[u])) for u in USERS}
            for event in events():
                plans = {}
                for user_id, name in USERS.items():
                    own = compile_ruleset(merge_rules(user_id, *setups[user_id]))
                    expected = evaluate(own, event, PushContext(members, name, sender_level, {"room": 50}))
                    template = templates[user_id]
                    if id(template) not in plans:
                        plans[id(template)] = plan(template, event, ctx)
                    got = plans[id(template)].actions_for(member(user_id, name))
                    assert (list(got) if got is not None else None) == expected, (case, user_id, event)
                    # All members of the template at once (what the evaluator asks) agree.
                    found = plans[id(template)]
                    group = [member(u, n) for u, n in USERS.items() if templates[u] is template]
                    got = found.matching(group).get(user_id, found.fallback)
                    assert (list(got) if got is not None else None) == expected, (case, user_id, event)
                    checked += 1
    assert checked > 500


def test_members_with_glob_characters_are_not_left_out_by_the_substring_test():
    # A legacy ID with glob characters matches as a glob: "st*r" in "stoooor", which does not
    # contain it literally. `matching` must answer as `actions_for` does for such a member.
    star, plain = "@st*r:example.org", "@bob:example.org"
    event = {"type": "m.room.message", "sender": SENDER, "room_id": ROOM,
             "content": {"msgtype": "m.text", "body": "look at stoooor"}}
    ctx = PushContext(member_count=3, display_name=None, sender_power_level=0, notification_levels={"room": 50})
    found = plan(template_of(plain, merge_rules(plain, [], {})), event, ctx)
    expected = found.actions_for(member(star, None))
    assert expected is not None and expected != found.fallback  # the localpart rule matched
    matched = found.matching([member(star, None), member(plain, None)])
    assert matched == {star: expected}


def test_users_with_the_default_rules_share_one_template():
    default = {u: template_of(u, merge_rules(u, [], {})) for u in USERS}
    assert len({id(t) for t in default.values()}) == 1
    # A rule naming the user's own localpart is the same shape for every user...
    own = {u: template_of(u, merge_rules(u, [UserRule("content", "mine", ["notify"], pattern=u[1:].split(":")[0])],
                                         {})) for u in USERS}
    assert len({id(t) for t in own.values()}) == 1
    # ...a rule naming someone else is not.
    other = template_of("@alice:example.org", merge_rules(
        "@alice:example.org", [UserRule("content", "mine", ["notify"], pattern="bob")], {}))
    assert other is not own["@alice:example.org"] and other is not default["@alice:example.org"]


def test_the_default_template_is_the_shared_one_unless_the_id_is_a_literal_of_the_rules():
    for user_id in USERS:
        assert default_template(user_id) is template_of(user_id, merge_rules(user_id, [], {}))
    # "@invite:..." as a pattern would read as the membership "invite": the general path.
    assert default_template("@invite:example.org") is None
    assert default_template("@st*r:example.org") is None
    invite = {"type": "m.room.member", "sender": SENDER, "room_id": ROOM, "state_key": "@invite:example.org",
              "content": {"membership": "invite"}}
    template = template_of("@invite:example.org", merge_rules("@invite:example.org", [], {}))
    ctx = PushContext(member_count=3, display_name=None, sender_power_level=0, notification_levels={})
    got = plan(template, invite, ctx).actions_for(member("@invite:example.org", None))
    assert list(got) == evaluate(compile_ruleset(merge_rules("@invite:example.org", [], {})), invite, ctx)
