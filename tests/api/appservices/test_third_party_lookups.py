"""Third-party lookups (/_matrix/client/v3/thirdparty/*) answered by the appservices that
declare the protocol: `bridge` declares ymca and irc, `plain` ymca, so ymca's metadata and
lookups are put together from both."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.api.appservices.conftest import SERVER, V3, write_registration

YMCA = {"user_fields": ["field1", "field2"], "location_fields": ["field3"], "icon": "mxc://1234/56/7",
        "field_types": {"field1": {"regexp": ".*", "placeholder": "one"}}}


@pytest.fixture
def registrations(tmp_path, bridge, plain) -> list[str]:
    return [str(write_registration(tmp_path / "bridge.yaml", bridge.registration(protocols=["ymca", "irc"]))),
            str(write_registration(tmp_path / "plain.yaml", plain.registration(protocols=["ymca"])))]


async def test_protocol_metadata_is_merged_from_the_appservices(alice, bridge, plain):
    bridge.thirdparty["protocol/ymca"] = {**YMCA, "instances": [
        {"desc": "Network one", "network_id": "one", "fields": {"network": "one.example"}},
        "not an instance",
        {"desc": "No network id", "fields": {}}]}
    plain.thirdparty["protocol/ymca"] = {**YMCA, "icon": "mxc://other/icon",
                                         "instances": [{"desc": "Plain's", "network_id": "p", "fields": {}}]}
    bridge.thirdparty["protocol/irc"] = 500

    status, body = await alice.get(f"{V3}/thirdparty/protocols")
    assert status == 200, body
    # The first appservice's fields, everybody's instances (the malformed one dropped), each
    # instance with a network_id given the instance ID publicRooms takes; irc failed: absent.
    expected = {**YMCA, "instances": [
        {"desc": "Network one", "network_id": "one", "fields": {"network": "one.example"}, "instance_id": "bridge|one"},
        {"desc": "No network id", "fields": {}},
        {"desc": "Plain's", "network_id": "p", "fields": {}, "instance_id": "plain|p"}]}
    assert body == {"ymca": expected}
    assert sorted(what for what, _ in bridge.lookups) == ["protocol/irc", "protocol/ymca"]
    assert bridge.bad_auth == [] and plain.bad_auth == []  # asked with our hs_token

    # One protocol: the metadata is kept (an hour, as Synapse), a failure is not.
    bridge.thirdparty["protocol/ymca"] = []  # would be unusable now; the kept answer is served
    status, body = await alice.get(f"{V3}/thirdparty/protocol/ymca")
    assert (status, body) == (200, expected)
    assert [what for what, _ in bridge.lookups].count("protocol/ymca") == 1
    status, body = await alice.get(f"{V3}/thirdparty/protocol/irc")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    bridge.thirdparty["protocol/irc"] = {"user_fields": [], "location_fields": [], "icon": "", "field_types": {},
                                         "instances": []}
    status, body = await alice.get(f"{V3}/thirdparty/protocol/irc")
    assert status == 200 and body["instances"] == []

    # A protocol nobody declares: 404, and nobody is asked.
    asked = len(bridge.lookups) + len(plain.lookups)
    status, body = await alice.get(f"{V3}/thirdparty/protocol/xmpp")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert len(bridge.lookups) + len(plain.lookups) == asked


async def test_metadata_without_instances_is_dropped(alice, bridge, plain):
    bridge.thirdparty["protocol/ymca"] = {**YMCA}  # no instances: unusable (as Synapse)
    plain.thirdparty["protocol/ymca"] = b"not json"
    status, body = await alice.get(f"{V3}/thirdparty/protocols")
    assert (status, body) == (200, {})
    status, body = await alice.get(f"{V3}/thirdparty/protocol/ymca")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_user_and_location_lookups_go_to_the_protocols_appservices(alice, bridge, plain):
    remote_user = {"protocol": "ymca", "fields": {"field1": "result"}, "userid": "@remote-user:bridged.example.com"}
    bridge.thirdparty["user/ymca"] = [remote_user, {"protocol": "ymca", "userid": 12, "fields": {}},
                                      {"protocol": "ymca", "userid": "@no-fields:x"}, "junk"]
    plain.thirdparty["user/ymca"] = [{**remote_user, "userid": "@other:bridged.example.com"}]
    # The client's query fields are passed on, its access token is not.
    status, body = await alice.get(f"{V3}/thirdparty/user/ymca?field1=ONE&field2=TWO&field2=2")
    assert status == 200, body
    assert body == [remote_user, {**remote_user, "userid": "@other:bridged.example.com"}]
    assert bridge.lookups[-1] == ("user/ymca", [("field1", "ONE"), ("field2", "TWO"), ("field2", "2")])
    assert plain.lookups[-1] == bridge.lookups[-1]
    token = alice.token
    status, body = await alice.with_token(None).get(f"{V3}/thirdparty/user/ymca?access_token={token}&field1=x")
    assert status == 200 and bridge.lookups[-1] == ("user/ymca", [("field1", "x")])

    portal = {"protocol": "ymca", "fields": {"field3": "result"}, "alias": "#remote-room:bridged.example.com"}
    bridge.thirdparty["location/ymca"] = [portal, {"protocol": "ymca", "fields": {}}]
    plain.thirdparty["location/ymca"] = {"not": "a list"}
    status, body = await alice.get(f"{V3}/thirdparty/location/ymca?field3=THREE")
    assert (status, body) == (200, [portal])
    assert plain.lookups[-1] == ("location/ymca", [("field3", "THREE")])

    # irc is bridge's only: plain is not asked.
    bridge.thirdparty["location/irc"] = [{**portal, "protocol": "irc"}]
    before = len(plain.lookups)
    status, body = await alice.get(f"{V3}/thirdparty/location/irc")
    assert (status, body) == (200, [{**portal, "protocol": "irc"}]) and len(plain.lookups) == before


async def test_lookups_that_find_nothing_are_404(alice, bridge, plain):
    bridge.thirdparty["user/ymca"] = []
    plain.thirdparty["user/ymca"] = 503  # a failing appservice counts as having nothing
    for path in ("user/ymca?field1=x", "location/ymca", "user/unknown", "location/unknown"):
        status, body = await alice.get(f"{V3}/thirdparty/{path}")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), path
    # Only the protocol's appservices were asked, and only about known protocols.
    assert {what for what, _ in bridge.lookups + plain.lookups} == {"user/ymca", "location/ymca"}


async def test_reverse_lookups_ask_every_bridge(alice, bridge, plain):
    alias = f"#_bridge_portal:{SERVER}"
    portal = {"protocol": "irc", "fields": {"network": "libera", "channel": "#matrix"}, "alias": alias}
    bridge.thirdparty["location"] = [portal]
    status, body = await alice.get(f"{V3}/thirdparty/location?alias={urllib.parse.quote(alias)}")
    assert (status, body) == (200, [portal])
    assert bridge.lookups[-1] == ("location", [("alias", alias)]) and plain.lookups[-1] == bridge.lookups[-1]

    ghost = f"@_bridge_nick:{SERVER}"
    remote = {"protocol": "irc", "fields": {"network": "libera", "nickname": "nick"}, "userid": ghost}
    plain.thirdparty["user"] = [remote, {"protocol": "irc", "userid": ghost}]
    status, body = await alice.get(f"{V3}/thirdparty/user?userid={urllib.parse.quote(ghost)}")
    assert (status, body) == (200, [remote])
    assert plain.lookups[-1] == ("user", [("userid", ghost)])

    del plain.thirdparty["user"]  # now nobody knows anybody
    status, body = await alice.get(f"{V3}/thirdparty/user?userid={urllib.parse.quote('@nobody:' + SERVER)}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_bad_lookups_get_matrix_errors(alice, client):
    for path, errcode in (("location", "M_MISSING_PARAM"), ("user", "M_MISSING_PARAM"),
                          ("location?alias=no-sigil", "M_INVALID_PARAM"), ("user?userid=bob", "M_INVALID_PARAM")):
        status, body = await alice.get(f"{V3}/thirdparty/{path}")
        assert (status, body["errcode"]) == (400, errcode), path
    status, body = await client.get(f"{V3}/thirdparty/protocols")
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")


class TestAnAppserviceWithoutUrl:
    @pytest.fixture
    def registrations(self, tmp_path, bridge) -> list[str]:
        return [str(write_registration(tmp_path / "bridge.yaml",
                                       {**bridge.registration(protocols=["ymca"]), "url": None}))]

    async def test_it_is_asked_nothing(self, alice, bridge):
        bridge.thirdparty["protocol/ymca"] = {**YMCA, "instances": []}
        status, body = await alice.get(f"{V3}/thirdparty/protocols")
        assert (status, body) == (200, {})
        status, body = await alice.get(f"{V3}/thirdparty/location?alias=%23a:{SERVER}")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        assert bridge.lookups == []
