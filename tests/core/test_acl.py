"""Server ACLs (m.room.server_acl): the spec's five steps, globs, ports, IP literals, bad content."""

import pytest

from homeserver.core.acl import server_allowed


def test_no_acl_event_allows_everyone():
    assert server_allowed(None, "evil.example")


@pytest.mark.parametrize("server, allowed", [
    ("good.example", True),
    ("evil.example", False),
    ("evil.example:8448", False),          # the port is not considered
    ("EVIL.Example:1234", False),          # globs are case-insensitive
    ("sub.evil.example", False),           # `*.evil.example`
    ("evil.examples", True),
    ("a1.test", False), ("ab.test", False), ("a.test", True), ("abc.test", True),  # `?`: one character
])
def test_deny_before_allow_with_globs(server, allowed):
    acl = {"allow": ["*"], "deny": ["evil.example", "*.evil.example", "a?.test"]}
    assert server_allowed(acl, server) is allowed


def test_allow_list_only_lets_matches_in():
    acl = {"allow": ["*.trusted.org", "friend.net"]}
    assert server_allowed(acl, "hs.trusted.org:8448")
    assert server_allowed(acl, "friend.net")
    assert not server_allowed(acl, "trusted.org")   # `*.` needs a subdomain
    assert not server_allowed(acl, "other.net")


@pytest.mark.parametrize("content", [{}, {"deny": []}, {"allow": "*"}, {"allow": [1, None, {"*": 1}]}])
def test_missing_or_broken_allow_denies_everyone(content):
    assert not server_allowed(content, "anyone.example")


def test_broken_deny_is_an_empty_list_and_non_string_entries_are_skipped():
    assert server_allowed({"allow": ["*"], "deny": "anyone.example"}, "anyone.example")
    assert not server_allowed({"allow": ["*"], "deny": [5, "anyone.example"]}, "anyone.example")


@pytest.mark.parametrize("server", ["1.2.3.4", "1.2.3.4:8448", "[::1]", "[2001:db8::1]:8448"])
def test_ip_literals(server):
    assert server_allowed({"allow": ["*"]}, server)                                # default true
    assert server_allowed({"allow": ["*"], "allow_ip_literals": "no"}, server)     # not a bool: true
    assert not server_allowed({"allow": ["*"], "allow_ip_literals": False}, server)
    assert server_allowed({"allow": ["*"], "allow_ip_literals": True}, server)


def test_ip_literal_rule_leaves_names_alone_and_globs_see_brackets():
    assert server_allowed({"allow": ["*"], "allow_ip_literals": False}, "1.2.3.4.example")
    assert not server_allowed({"allow": ["*"], "deny": ["[::1]"]}, "[::1]:8448")
    assert not server_allowed({"allow": ["1.2.3.*"], "deny": []}, "1.2.4.4")
    assert server_allowed({"allow": ["1.2.3.*"]}, "1.2.3.4:80")


def test_the_spec_example():
    # The schema's example content.
    acl = {"allow": ["*"], "allow_ip_literals": False, "deny": ["*.evil.com", "evil.com"]}
    for server in ("evil.com", "evil.com:8448", "evil.com:1234", "x.evil.com", "127.0.0.1"):
        assert not server_allowed(acl, server)
    assert server_allowed(acl, "matrix.org")
