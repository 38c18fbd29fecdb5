"""Appservice registrations: parsing the files bridges generate, errors that name the file and
line, uniqueness, and whom an appservice's namespaces cover."""

from __future__ import annotations

import pytest

from homeserver.core.appservices import AppServiceRegistry, RegistrationError, check_unique, parse_registration

GOOD = """\
id: irc
url: "http://127.0.0.1:9000/"
as_token: as-secret
hs_token: hs-secret
sender_localpart: _irc_bot
rate_limited: false
protocols: [irc]
receive_ephemeral: true
org.matrix.msc3202: true
namespaces:
  users:
    - exclusive: true
      regex: "@_irc_.*:example\\\\.org"
    - exclusive: false
      regex: "@shared_.*"
  aliases:
    - exclusive: true
      regex: "#_irc_.*"
  rooms:
    - exclusive: false
      regex: "!bridged.*"
"""


def parse(text: str = GOOD, name: str = "irc.yaml"):
    return parse_registration(text, name, "example.org")


def test_a_bridge_registration_is_read_whole():
    service = parse()
    assert service.id == "irc"
    assert service.url == "http://127.0.0.1:9000"  # no trailing slash
    assert service.sender == "@_irc_bot:example.org"
    assert (service.as_token, service.hs_token) == ("as-secret", "hs-secret")
    assert service.rate_limited is False
    assert service.protocols == ("irc",)
    assert service.receive_ephemeral and service.wants_ephemeral and not service.unstable_ephemeral
    assert service.msc3202 and not service.msc4190
    assert "as-secret" not in repr(service) and "hs-secret" not in repr(service)


def test_namespaces_cover_local_users_aliases_and_rooms():
    service = parse()
    assert service.is_interested_in_user("@_irc_alice:example.org")
    assert service.is_exclusive_user("@_irc_alice:example.org")
    assert service.is_interested_in_user("@shared_bob:example.org")
    assert not service.is_exclusive_user("@shared_bob:example.org")
    # Spec: only local users can concern an appservice, whatever its regex says.
    assert not service.is_interested_in_user("@shared_bob:elsewhere.org")
    assert service.is_interested_in_user("@_irc_bot:example.org")  # its sender
    assert not service.is_interested_in_user("@alice:example.org")
    assert service.is_alias_in_namespace("#_irc_chan:example.org") and service.is_exclusive_alias("#_irc_x:a")
    assert not service.is_alias_in_namespace("#lobby:example.org")
    assert service.is_room_in_namespace("!bridged123:example.org")
    assert service.is_interested_in_event("@alice:example.org", "m.room.member", "@_irc_x:example.org", "!r:x")
    assert not service.is_interested_in_event("@alice:example.org", "m.room.message", None, "!r:x")


def test_defaults_follow_synapse():
    service = parse("id: a\nurl: null\nas_token: a\nhs_token: b\nsender_localpart: bot\nnamespaces: {}\n")
    assert service.url is None
    assert service.rate_limited is True  # Synapse's default
    assert not service.wants_ephemeral
    assert service.users == service.aliases == service.rooms == ()


def test_the_unstable_ephemeral_flag_counts():
    service = parse(GOOD.replace("receive_ephemeral: true", "de.sorunome.msc2409.push_ephemeral: true"))
    assert service.unstable_ephemeral and service.wants_ephemeral and not service.receive_ephemeral


@pytest.mark.parametrize(("change", "line", "words"), [
    (('regex: "#_irc_.*"', 'regex: "#_irc_(.*"'), 18, "not a valid regular expression"),
    (("as_token: as-secret\n", ""), 1, "'as_token' is required"),
    (('url: "http://127.0.0.1:9000/"\n', ""), 1, "'url' is required"),
    (('url: "http://127.0.0.1:9000/"', 'url: "ftp://x"'), 2, "http:// or https://"),
    (('url: "http://127.0.0.1:9000/"', 'url: "http://host:99999"'), 2, "bad port"),
    (("rate_limited: false", "rate_limited: nope"), 6, "'rate_limited' must be true or false"),
    (("    - exclusive: false\n      regex: \"@shared_.*\"", "    - regex: \"@shared_.*\""), 14, "exclusive"),
    (("sender_localpart: _irc_bot", "sender_localpart: 'bot name'"), 5, "URL-encoding"),
    (("id: irc", "id: 'a|b'"), 1, "may not contain '|'"),
    (("protocols: [irc]", "protocols: irc"), 7, "'protocols' must be a list"),
])
def test_a_bad_registration_names_the_file_and_line(change, line, words):
    old, new = change
    assert old in GOOD
    with pytest.raises(RegistrationError) as err:
        parse(GOOD.replace(old, new), "/etc/bridges/irc.yaml")
    message = str(err.value)
    assert message.startswith(f"/etc/bridges/irc.yaml, line {line}:"), message
    assert words in message


def test_yaml_syntax_errors_name_the_line():
    with pytest.raises(RegistrationError, match=r"irc\.yaml, line 4: not valid YAML"):
        parse("id: a\nurl: null\nas_token: [unclosed\nhs_token: b\n")


def test_not_a_mapping():
    with pytest.raises(RegistrationError, match="must be a mapping"):
        parse("- just\n- a list\n")


def other(name: str, **changes: str):
    text = GOOD
    for old, new in changes.items():
        text = text.replace(old, new)
    return parse(text, name)


def test_ids_and_tokens_must_be_unique():
    first = parse(GOOD, "a.yaml")
    with pytest.raises(RegistrationError, match=r"b\.yaml: the same id as a\.yaml"):
        check_unique([first, other("b.yaml", **{"as_token: as-secret": "as_token: x", "hs_token: hs-secret": "hs_token: y"})])
    with pytest.raises(RegistrationError, match="the same as_token as a.yaml"):
        check_unique([first, other("b.yaml", **{"id: irc": "id: two", "hs_token: hs-secret": "hs_token: y"})])
    with pytest.raises(RegistrationError, match="the same hs_token as a.yaml"):
        check_unique([first, other("b.yaml", **{"id: irc": "id: two", "as_token: as-secret": "as_token: x"})])
    with pytest.raises(RegistrationError, match="its hs_token is the as_token of a.yaml"):
        check_unique([first, other("b.yaml", **{"id: irc": "id: two", "as_token: as-secret": "as_token: x",
                                                "hs_token: hs-secret": "hs_token: as-secret"})])
    check_unique([first, other("b.yaml", **{"id: irc": "id: two", "as_token: as-secret": "as_token: x",
                                            "hs_token: hs-secret": "hs_token: y"})])


def test_registry_exclusivity():
    irc = parse(GOOD, "a.yaml")
    other_service = other("b.yaml", **{"id: irc": "id: other", "as_token: as-secret": "as_token: x",
                                        "hs_token: hs-secret": "hs_token: y", "_irc_bot": "other_bot"})
    registry = AppServiceRegistry([irc, other_service])
    assert registry.by_token("as-secret") is irc and registry.by_id("other") is other_service
    assert registry.by_sender("@other_bot:example.org") is other_service
    # Both claim @_irc_.* exclusively: each is the other's obstacle, nobody else may have it.
    assert registry.exclusive_owner_of_user("@_irc_x:example.org") is irc
    assert registry.exclusive_owner_of_user("@_irc_x:example.org", besides="irc") is other_service
    assert registry.exclusive_owner_of_user("@shared_x:example.org") is None
    # Aliases: an exclusive namespace is refused to users, but for the appservice's sender.
    assert not registry.may_claim_alias("#_irc_chan:example.org", "@alice:example.org")
    assert registry.may_claim_alias("#_irc_chan:example.org", "@_irc_bot:example.org")
    assert registry.may_claim_alias("#lobby:example.org", "@alice:example.org")
    assert registry.for_protocol("irc") == [irc, other_service]


def test_rate_limit_exemption_by_user():
    limited = other("b.yaml", **{"id: irc": "id: other", "as_token: as-secret": "as_token: x",
                                 "hs_token: hs-secret": "hs_token: y", "_irc_bot": "other_bot",
                                 "rate_limited: false": "rate_limited: true", "@_irc_": "@_other_"})
    registry = AppServiceRegistry([parse(GOOD, "a.yaml"), limited])
    assert registry.exempt_from_rate_limits("@_irc_x:example.org")       # rate_limited: false
    assert not registry.exempt_from_rate_limits("@_other_x:example.org")  # rate_limited: true
    assert registry.exempt_from_rate_limits("@other_bot:example.org")     # a sender never is
    assert not registry.exempt_from_rate_limits("@alice:example.org")
