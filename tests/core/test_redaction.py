"""The redaction algorithm per room version (v1, v6, v8, v9, v11 changes)."""

import pytest

from homeserver.core.redaction import redact
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS as V

BASE = {"event_id": "$e:d", "room_id": "!r:d", "sender": "@u:d", "origin": "d", "origin_server_ts": 1,
        "depth": 4, "prev_events": [], "auth_events": [], "hashes": {"sha256": "h"}, "signatures": {},
        "membership": "join", "prev_state": [], "unsigned": {"age": 1}, "extra_top": True}


def ev(event_type, content, **extra):
    return {**BASE, "type": event_type, "content": content, **extra}


def test_top_level_keys_v1_and_v11():
    out = redact(ev("m.room.message", {"body": "x"}), V["1"])
    assert set(out) == {"event_id", "room_id", "sender", "origin", "origin_server_ts", "depth", "prev_events",
                        "auth_events", "hashes", "signatures", "membership", "prev_state", "type", "content"}
    assert out["content"] == {}
    out11 = redact(ev("m.room.message", {"body": "x"}), V["11"])
    assert "origin" not in out11 and "membership" not in out11 and "prev_state" not in out11
    assert "unsigned" not in out11 and "extra_top" not in out11


@pytest.mark.parametrize("version,expected", [
    ("1", {"membership": "join"}),
    ("9", {"membership": "join", "join_authorised_via_users_server": "@a:d"}),
    ("11", {"membership": "join", "join_authorised_via_users_server": "@a:d",
            "third_party_invite": {"signed": {"mxid": "@u:d", "token": "t", "signatures": {}}}}),
])
def test_member_content(version, expected):
    content = {"membership": "join", "displayname": "U", "join_authorised_via_users_server": "@a:d",
               "third_party_invite": {"display_name": "x", "signed": {"mxid": "@u:d", "token": "t", "signatures": {}}}}
    assert redact(ev("m.room.member", content, state_key="@u:d"), V[version])["content"] == expected


def test_create_content():
    content = {"creator": "@u:d", "room_version": "1", "m.federate": False}
    assert redact(ev("m.room.create", content, state_key=""), V["10"])["content"] == {"creator": "@u:d"}
    assert redact(ev("m.room.create", content, state_key=""), V["11"])["content"] == content


def test_join_rules_allow_kept_from_v8():
    content = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": "!x:d"}]}
    assert redact(ev("m.room.join_rules", content, state_key=""), V["7"])["content"] == {"join_rule": "restricted"}
    assert redact(ev("m.room.join_rules", content, state_key=""), V["8"])["content"] == content


def test_power_levels_invite_kept_from_v11():
    content = {"ban": 50, "events": {}, "events_default": 0, "kick": 50, "redact": 50, "state_default": 50,
               "users": {}, "users_default": 0, "invite": 0, "notifications": {"room": 50}}
    ten = redact(ev("m.room.power_levels", content, state_key=""), V["10"])["content"]
    assert "invite" not in ten and "notifications" not in ten
    eleven = redact(ev("m.room.power_levels", content, state_key=""), V["11"])["content"]
    assert eleven["invite"] == 0 and "notifications" not in eleven


def test_aliases_content_dropped_from_v6():
    content = {"aliases": ["#a:d"]}
    assert redact(ev("m.room.aliases", content, state_key="d"), V["5"])["content"] == content
    assert redact(ev("m.room.aliases", content, state_key="d"), V["6"])["content"] == {}


def test_redaction_redacts_kept_from_v11():
    content = {"redacts": "$x:d", "reason": "spam"}
    assert redact(ev("m.room.redaction", content), V["10"])["content"] == {}
    assert redact(ev("m.room.redaction", content), V["11"])["content"] == {"redacts": "$x:d"}


def test_history_visibility_kept():
    content = {"history_visibility": "joined", "other": 1}
    assert redact(ev("m.room.history_visibility", content, state_key=""), V["1"])["content"] == {"history_visibility": "joined"}
