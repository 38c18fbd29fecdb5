"""Authorization rules: each rule with passing and failing cases, across the versions where it differs."""

import pytest

from homeserver.core import power_levels as pl
from homeserver.core.auth_rules import AuthError, check
from homeserver.core.events import make_event
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS as V

CREATOR, BOB, CAROL = "@creator:a.org", "@bob:b.org", "@carol:a.org"


class Room:
    """A room's state built event by event, every event checked as it is added."""

    def __init__(self, version: str, join_rule="public", levels=None, create_content=None):
        self.v = V[version]
        content = dict(create_content or {})
        if not self.v.auth.implicit_room_creator:
            content.setdefault("creator", CREATOR)
        content.setdefault("room_version", version)
        room_id = None if self.v.auth.room_id_from_create_event else "!room:a.org"
        self.create = make_event(self.v, type="m.room.create", sender=CREATOR, state_key="", content=content,
                                 room_id=room_id, depth=1)
        self.room_id = self.create.room_id
        self.state = {("m.room.create", ""): self.create}
        self.last = self.create.event_id
        check(self.create, {})
        self.add(CREATOR, "m.room.member", {"membership": "join"}, CREATOR)
        default_levels = {"users": {} if self.v.auth.privileged_room_creators else {CREATOR: 100}}
        self.add(CREATOR, "m.room.power_levels", levels if levels is not None else default_levels, "")
        self.add(CREATOR, "m.room.join_rules", {"join_rule": join_rule}, "")

    def event(self, sender, event_type, content, state_key=None, **extra):
        auth = [self.create.event_id] if self.v.auth.create_event_in_auth_events else []
        return make_event(self.v, type=event_type, sender=sender, content=content, state_key=state_key,
                          room_id=self.room_id, prev_events=[self.last], auth_events=auth,
                          depth=len(self.state) + 2, **extra)

    def add(self, sender, event_type, content, state_key=None, **extra):
        event = self.event(sender, event_type, content, state_key, **extra)
        check(event, self.state)
        if state_key is not None:
            self.state[(event_type, state_key)] = event
        self.last = event.event_id
        return event

    def rejects(self, sender, event_type, content, state_key=None, match=None, **extra):
        with pytest.raises(AuthError, match=match):
            check(self.event(sender, event_type, content, state_key, **extra), self.state)


ALL = [str(v) for v in range(1, 13)]


# --- 1: m.room.create ---------------------------------------------------------------------------

def test_create_with_prev_events_is_rejected():
    ev = make_event(V["10"], type="m.room.create", sender=CREATOR, state_key="", room_id="!r:a.org",
                    content={"creator": CREATOR}, prev_events=["$x"])
    with pytest.raises(AuthError, match="1.1"):
        check(ev, {})


def test_create_room_id_server_must_be_the_senders_before_v12():
    ev = make_event(V["10"], type="m.room.create", sender=CREATOR, state_key="", room_id="!r:other.org",
                    content={"creator": CREATOR})
    with pytest.raises(AuthError, match="1.2"):
        check(ev, {})


def test_v12_create_must_not_have_room_id():
    ev = make_event(V["12"], type="m.room.create", sender=CREATOR, state_key="", room_id="!r:a.org", content={})
    with pytest.raises(AuthError, match="1.2"):
        check(ev, {})


def test_unknown_room_version_in_create():
    ev = make_event(V["10"], type="m.room.create", sender=CREATOR, state_key="", room_id="!r:a.org",
                    content={"creator": CREATOR, "room_version": "999"})
    with pytest.raises(AuthError, match="1.3"):
        check(ev, {})


def test_creator_required_until_v10_and_implicit_from_v11():
    ev10 = make_event(V["10"], type="m.room.create", sender=CREATOR, state_key="", room_id="!r:a.org", content={})
    with pytest.raises(AuthError, match="1.4"):
        check(ev10, {})
    check(make_event(V["11"], type="m.room.create", sender=CREATOR, state_key="", room_id="!r:a.org", content={}), {})


def test_v12_additional_creators_must_be_user_ids():
    bad = make_event(V["12"], type="m.room.create", sender=CREATOR, state_key="", room_id=None,
                     content={"additional_creators": ["not-a-user"]})
    with pytest.raises(AuthError, match="1.4"):
        check(bad, {})
    check(make_event(V["12"], type="m.room.create", sender=CREATOR, state_key="", room_id=None,
                     content={"additional_creators": [BOB]}), {})


# --- 2/3: room ID and auth events ---------------------------------------------------------------

def test_v12_room_id_must_come_from_the_create_event():
    room = Room("12")
    ev = make_event(V["12"], type="m.room.message", sender=CREATOR, content={}, room_id="!elsewhere",
                    prev_events=[room.last])
    with pytest.raises(AuthError, match="2:"):
        check(ev, room.state)


def test_v12_create_event_must_not_be_in_auth_events():
    room = Room("12")
    ev = make_event(V["12"], type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                    prev_events=[room.last], auth_events=[room.create.event_id])
    with pytest.raises(AuthError, match="3.2"):
        check(ev, room.state)


def test_create_event_required_in_auth_events_before_v12():
    room = Room("11")
    ev = make_event(V["11"], type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                    prev_events=[room.last], auth_events=[])
    with pytest.raises(AuthError, match="create event is missing"):
        check(ev, room.state)


def test_m_federate_false_refuses_other_servers():
    room = Room("10", create_content={"m.federate": False})
    room.rejects(BOB, "m.room.member", {"membership": "join"}, BOB, match="4:")
    room.add(CAROL, "m.room.member", {"membership": "join"}, CAROL)


# --- v1-v5 aliases special case ------------------------------------------------------------------

def test_aliases_special_case_only_before_v6():
    room = Room("5")
    room.add(BOB, "m.room.aliases", {"aliases": ["#x:b.org"]}, "b.org")  # not even joined
    room.rejects(BOB, "m.room.aliases", {"aliases": []}, "a.org", match="server")
    room6 = Room("6")
    room6.rejects(BOB, "m.room.aliases", {"aliases": []}, "b.org", match="6:")


# --- 5: membership ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL)
def test_public_join_and_leave(version):
    room = Room(version)
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.add(BOB, "m.room.member", {"membership": "leave"}, BOB)
    room.rejects(BOB, "m.room.member", {"membership": "leave"}, BOB, match="5.5.1")


def test_member_event_needs_membership():
    room = Room("10")
    room.rejects(BOB, "m.room.member", {}, BOB, match="5.1")


def test_join_only_for_oneself_and_not_when_banned():
    room = Room("10")
    room.rejects(CREATOR, "m.room.member", {"membership": "join"}, BOB, match="5.3.2")
    room.add(CREATOR, "m.room.member", {"membership": "ban"}, BOB)
    room.rejects(BOB, "m.room.member", {"membership": "join"}, BOB, match="5.3.3")


@pytest.mark.parametrize("version", ALL)
def test_invite_only_room(version):
    room = Room(version, join_rule="invite")
    room.rejects(BOB, "m.room.member", {"membership": "join"}, BOB, match="5.3.4")
    room.rejects(BOB, "m.room.member", {"membership": "invite"}, CAROL, match="5.4.2")
    room.add(CREATOR, "m.room.member", {"membership": "invite"}, BOB)
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.rejects(CREATOR, "m.room.member", {"membership": "invite"}, BOB, match="5.4.3")


def test_invite_level():
    room = Room("10", join_rule="public", levels={"users": {CREATOR: 100}, "invite": 50})
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.rejects(BOB, "m.room.member", {"membership": "invite"}, CAROL, match="5.4.5")
    room.add(CREATOR, "m.room.member", {"membership": "invite"}, CAROL)


def test_knock_from_v7_only():
    room6 = Room("6", join_rule="knock")
    room6.rejects(BOB, "m.room.member", {"membership": "knock"}, BOB, match="5.8")
    room = Room("7", join_rule="knock")
    room.add(BOB, "m.room.member", {"membership": "knock"}, BOB)
    # A knock can be withdrawn, and accepted by an invite.
    room.add(CREATOR, "m.room.member", {"membership": "invite"}, BOB)
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.rejects(BOB, "m.room.member", {"membership": "knock"}, BOB, match="5.7.4")
    room.rejects(CREATOR, "m.room.member", {"membership": "knock"}, CAROL, match="5.7")


def test_knock_needs_a_knock_join_rule():
    room = Room("10", join_rule="public")
    room.rejects(BOB, "m.room.member", {"membership": "knock"}, BOB, match="5.7.1")
    krestricted9 = Room("9", join_rule="knock_restricted")
    krestricted9.rejects(BOB, "m.room.member", {"membership": "knock"}, BOB, match="5.7.1")
    krestricted10 = Room("10", join_rule="knock_restricted")
    krestricted10.add(BOB, "m.room.member", {"membership": "knock"}, BOB)


def test_restricted_join_needs_an_authorising_member_from_v8():
    room = Room("8", join_rule="restricted")
    room.rejects(BOB, "m.room.member", {"membership": "join"}, BOB, match="5.3.5")
    room.rejects(BOB, "m.room.member", {"membership": "join", "join_authorised_via_users_server": CAROL}, BOB,
                 match="5.3.5")  # Carol is not joined
    room.add(BOB, "m.room.member", {"membership": "join", "join_authorised_via_users_server": CREATOR}, BOB)
    # Before v8 "restricted" is an unknown join rule: nobody joins.
    room7 = Room("7", join_rule="restricted")
    room7.rejects(BOB, "m.room.member", {"membership": "join", "join_authorised_via_users_server": CREATOR}, BOB,
                  match="5.3.7")


def test_kick_and_ban_need_power_over_the_target():
    room = Room("10", levels={"users": {CREATOR: 100, CAROL: 50}})
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.add(CAROL, "m.room.member", {"membership": "join"}, CAROL)
    room.rejects(BOB, "m.room.member", {"membership": "leave"}, CAROL, match="5.5.5")
    room.rejects(BOB, "m.room.member", {"membership": "ban"}, CAROL, match="5.6.3")
    room.rejects(CAROL, "m.room.member", {"membership": "ban"}, CREATOR, match="5.6.3")
    room.add(CAROL, "m.room.member", {"membership": "leave"}, BOB)  # kick
    room.add(CAROL, "m.room.member", {"membership": "ban"}, BOB)
    room.rejects(BOB, "m.room.member", {"membership": "join"}, BOB, match="5.3.3")


def test_unban_needs_ban_level():
    room = Room("10", levels={"users": {CREATOR: 100, CAROL: 50}, "ban": 75, "kick": 50})
    room.add(CAROL, "m.room.member", {"membership": "join"}, CAROL)
    room.add(CREATOR, "m.room.member", {"membership": "ban"}, BOB)
    room.rejects(CAROL, "m.room.member", {"membership": "leave"}, BOB, match="5.5.3")
    room.add(CREATOR, "m.room.member", {"membership": "leave"}, BOB)


def test_unknown_membership():
    room = Room("10")
    room.rejects(CREATOR, "m.room.member", {"membership": "wave"}, BOB, match="5.8")


# --- 6-9: sender, third-party invites, required level, user state keys -----------------------------

def test_non_members_cannot_send():
    room = Room("10")
    room.rejects(BOB, "m.room.message", {"body": "hi"}, match="6:")


def test_required_power_level_for_event_types():
    room = Room("10", levels={"users": {CREATOR: 100}, "events": {"m.room.name": 50}, "events_default": 0})
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.add(BOB, "m.room.message", {"body": "hi"})
    room.rejects(BOB, "m.room.name", {"name": "x"}, "", match="8:")
    room.rejects(BOB, "m.room.topic", {"topic": "x"}, "", match="8:")  # state_default 50
    room.add(CREATOR, "m.room.name", {"name": "x"}, "")


def test_state_default_is_50_without_a_power_levels_event():
    # The m.room.power_levels schema: with no such event, state_default is still 50 (Synapse agrees),
    # so a joined non-creator may send messages (events_default 0) but not state.
    v = V["10"]
    create = make_event(v, type="m.room.create", sender=CREATOR, state_key="", room_id="!room:a.org",
                        content={"creator": CREATOR, "room_version": "10"}, depth=1)
    state = {("m.room.create", ""): create}
    creator_join = make_event(v, type="m.room.member", sender=CREATOR, state_key=CREATOR, room_id="!room:a.org",
                              content={"membership": "join"}, prev_events=[create.event_id],
                              auth_events=[create.event_id])
    check(creator_join, state)
    state[("m.room.member", CREATOR)] = creator_join
    bob_join = make_event(v, type="m.room.member", sender=BOB, state_key=BOB, room_id="!room:a.org",
                          content={"membership": "join"}, prev_events=[creator_join.event_id],
                          auth_events=[create.event_id])
    state[("m.room.member", BOB)] = bob_join
    assert pl.event_power_level("m.room.topic", "", state) == 50
    check(make_event(v, type="m.room.message", sender=BOB, room_id="!room:a.org", content={"body": "hi"},
                     prev_events=[bob_join.event_id], auth_events=[create.event_id]), state)
    with pytest.raises(AuthError, match="8:"):
        check(make_event(v, type="m.room.topic", sender=BOB, state_key="", room_id="!room:a.org",
                         content={"topic": "x"}, prev_events=[bob_join.event_id],
                         auth_events=[create.event_id]), state)


def test_state_keys_naming_users_belong_to_them():
    room = Room("10", levels={"users": {CREATOR: 100}, "state_default": 0})
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.add(BOB, "org.example.status", {"s": 1}, BOB)
    room.rejects(BOB, "org.example.status", {"s": 1}, CREATOR, match="9:")


def test_third_party_invite_event_needs_invite_level():
    room = Room("10", levels={"users": {CREATOR: 100}, "invite": 50, "events_default": 0, "state_default": 0})
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.rejects(BOB, "m.room.third_party_invite", {"display_name": "x"}, "tok", match="7.1")
    room.add(CREATOR, "m.room.third_party_invite", {"display_name": "x"}, "tok")


def test_third_party_invite_membership_checks_the_signature():
    from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
    from signedjson.sign import sign_json

    key = generate_signing_key("0")
    room = Room("10")
    room.add(CREATOR, "m.room.third_party_invite",
             {"display_name": "b", "public_key": encode_verify_key_base64(get_verify_key(key))}, "tok")
    signed = sign_json({"mxid": BOB, "token": "tok"}, "id.example", key)
    room.rejects(CREATOR, "m.room.member", {"membership": "invite", "third_party_invite": {"signed": {
        "mxid": BOB, "token": "tok", "signatures": {"id.example": {"ed25519:0": "AAAA"}}}}}, BOB, match="5.4.1.8")
    room.rejects(CREATOR, "m.room.member", {"membership": "invite", "third_party_invite": {"signed": signed}},
                 CAROL, match="5.4.1.4")
    room.add(CREATOR, "m.room.member", {"membership": "invite", "third_party_invite": {"signed": signed}}, BOB)


# --- 10: power levels ----------------------------------------------------------------------------------

def test_power_level_changes():
    room = Room("10", levels={"users": {CREATOR: 100, CAROL: 50}})
    room.add(CAROL, "m.room.member", {"membership": "join"}, CAROL)
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    # Carol (50) may send power levels (state_default 50) but cannot demote the creator.
    room.rejects(CAROL, "m.room.power_levels", {"users": {CREATOR: 10, CAROL: 50}}, "", match="10.9")
    room.add(CREATOR, "m.room.power_levels", {"users": {CREATOR: 100, CAROL: 50},
                                              "events": {"m.room.power_levels": 50}}, "")
    room.rejects(CAROL, "m.room.power_levels", {"users": {CREATOR: 10, CAROL: 50},
                                                "events": {"m.room.power_levels": 50}}, "", match="10.9")
    room.rejects(CAROL, "m.room.power_levels", {"users": {CREATOR: 100, CAROL: 50, BOB: 75},
                                                "events": {"m.room.power_levels": 50}}, "", match="10.10")
    room.rejects(CAROL, "m.room.power_levels", {"users": {CREATOR: 100, CAROL: 50}, "ban": 75,
                                                "events": {"m.room.power_levels": 50}}, "", match="10.6")
    room.add(CAROL, "m.room.power_levels", {"users": {CREATOR: 100, CAROL: 50, BOB: 50},
                                            "events": {"m.room.power_levels": 50}}, "")
    # Lowering oneself is allowed.
    room.add(CAROL, "m.room.power_levels", {"users": {CREATOR: 100, CAROL: 10, BOB: 50},
                                            "events": {"m.room.power_levels": 50}}, "")


def test_string_power_levels_until_v9():
    room9 = Room("9", levels={"users": {CREATOR: "100"}, "ban": "50"})
    assert pl.user_power_level(CREATOR, room9.state) == 100
    with pytest.raises(AuthError, match="10.1"):
        Room("10", levels={"users": {CREATOR: 100}, "ban": "50"})
    with pytest.raises(AuthError, match="10.3"):
        Room("10", levels={"users": {CREATOR: "100"}})


def test_users_keys_must_be_user_ids():
    with pytest.raises(AuthError, match="10.3"):
        Room("10", levels={"users": {"not-a-user": 10, CREATOR: 100}})


def test_notifications_checked_from_v6():
    room5 = Room("5", levels={"users": {CREATOR: 100}, "notifications": {"room": "x"}})
    assert room5.state[("m.room.power_levels", "")] is not None
    with pytest.raises(AuthError, match="10.2"):
        Room("6", levels={"users": {CREATOR: 100}, "notifications": {"room": "x"}})


# --- v12: creators ----------------------------------------------------------------------------------------

def test_v12_creators_have_infinite_power_and_cannot_be_listed():
    room = Room("12", create_content={"additional_creators": [CAROL]})
    assert pl.user_power_level(CREATOR, room.state) == pl.INFINITE
    assert pl.user_power_level(CAROL, room.state) == pl.INFINITE
    room.rejects(CREATOR, "m.room.power_levels", {"users": {CREATOR: 100}}, "", match="10.4")
    room.rejects(CREATOR, "m.room.power_levels", {"users": {CAROL: 50}}, "", match="10.4")
    room.add(CAROL, "m.room.member", {"membership": "join"}, CAROL)
    room.add(CREATOR, "m.room.power_levels", {"users": {BOB: 100}}, "")
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    # Bob (100) cannot kick or ban a creator.
    room.rejects(BOB, "m.room.member", {"membership": "ban"}, CAROL, match="5.6.3")
    room.rejects(BOB, "m.room.member", {"membership": "leave"}, CREATOR, match="5.5.5")
    # A creator can ban Bob.
    room.add(CAROL, "m.room.member", {"membership": "ban"}, BOB)


def test_before_v12_creator_can_be_listed_and_demoted():
    room = Room("11")
    room.add(CREATOR, "m.room.power_levels", {"users": {CREATOR: 50}}, "")
    assert pl.user_power_level(CREATOR, room.state) == 50


def test_default_levels_without_power_levels_event():
    room = Room("10")
    state = {k: v for k, v in room.state.items() if k[0] != "m.room.power_levels"}
    assert pl.user_power_level(CREATOR, state) == 100
    assert pl.user_power_level(BOB, state) == 0
    assert pl.event_power_level("m.room.name", "", state) == 50
    assert pl.event_power_level("m.room.name", "", room.state) == 50


# --- v1-v2 redactions -----------------------------------------------------------------------------------------

def test_v1_redaction_needs_power_or_same_server():
    room = Room("1", levels={"users": {CREATOR: 100}})
    room.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.add(BOB, "m.room.redaction", {}, redacts="$anything:b.org", event_id="$r1:b.org")
    room.rejects(BOB, "m.room.redaction", {}, redacts="$other:a.org", event_id="$r2:b.org", match="redaction")
    room.add(CREATOR, "m.room.redaction", {}, redacts="$other:b.org", event_id="$r3:a.org")
    # From v3 the auth rules do not look at redactions beyond rules 6 and 8.
    room3 = Room("3")
    room3.add(BOB, "m.room.member", {"membership": "join"}, BOB)
    room3.add(BOB, "m.room.redaction", {}, redacts="$x")


# --- 3: the event's own auth events ---------------------------------------------------------------

def test_auth_events_selection_rules():
    from homeserver.core.auth_rules import check_auth_events

    for version in ("10", "12"):
        room = Room(version)
        ok = room.event(CREATOR, "m.room.message", {"body": "x"})
        auth_ids = [room.state[("m.room.power_levels", "")].event_id, room.state[("m.room.member", CREATOR)].event_id]
        if room.v.auth.create_event_in_auth_events:
            auth_ids.insert(0, room.create.event_id)
        by_id = {e.event_id: e for e in room.state.values()}
        good = make_event(room.v, type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                          prev_events=[room.last], auth_events=auth_ids)
        check_auth_events(good, by_id)
        # 3.2: the join rules do not authorise a message
        extra = make_event(room.v, type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                           prev_events=[room.last], auth_events=auth_ids + [room.state[("m.room.join_rules", "")].event_id])
        with pytest.raises(AuthError, match="3.2"):
            check_auth_events(extra, by_id)
        # 3.3: a rejected auth event
        with pytest.raises(AuthError, match="3.3"):
            check_auth_events(good, by_id, rejected=frozenset({auth_ids[-1]}))
        assert ok is not None
    # v12: the create event must not be selected.
    room = Room("12")
    by_id = {e.event_id: e for e in room.state.values()}
    with_create = make_event(room.v, type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                             prev_events=[room.last], auth_events=[room.create.event_id])
    with pytest.raises(AuthError, match="3.2"):
        check_auth_events(with_create, by_id)


def test_auth_events_duplicates_and_other_rooms():
    from homeserver.core.auth_rules import check_auth_events

    room = Room("10")
    pl_old = room.state[("m.room.power_levels", "")]
    room.add(CREATOR, "m.room.power_levels", {"users": {CREATOR: 100}, "ban": 40}, "")
    pl_new = room.state[("m.room.power_levels", "")]
    by_id = {pl_old.event_id: pl_old, pl_new.event_id: pl_new, room.create.event_id: room.create}
    dup = make_event(room.v, type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                     auth_events=[room.create.event_id, pl_old.event_id, pl_new.event_id])
    with pytest.raises(AuthError, match="3.1"):
        check_auth_events(dup, by_id)
    # An auth event from another room (same key, different room ID).
    foreign = make_event(room.v, type="m.room.power_levels", sender=CREATOR, content={"users": {CREATOR: 100}},
                         state_key="", room_id="!other:a.org", auth_events=[])
    by_id[foreign.event_id] = foreign
    cross = make_event(room.v, type="m.room.message", sender=CREATOR, content={}, room_id=room.room_id,
                       auth_events=[room.create.event_id, foreign.event_id])
    with pytest.raises(AuthError, match="3.5"):
        check_auth_events(cross, by_id)
    with pytest.raises(AuthError, match="no auth_events"):
        check_auth_events(make_event(room.v, type="m.room.create", sender=CREATOR, state_key="",
                                     content={"creator": CREATOR}, room_id="!r:a.org", auth_events=["$x"]), by_id)
