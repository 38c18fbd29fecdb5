"""Guest access: opt-in guest accounts, the spec's guest endpoints, m.room.guest_access, upgrade."""

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture
def config_overrides():
    return {"registration": {"enabled": True, "allow_guests": True}}


async def guest(client):
    status, body = await client.post(f"{V3}/register?kind=guest", {})
    assert status == 200, body
    assert body["user_id"][1:].split(":")[0].isdigit()
    return body, client.with_token(body["access_token"])


async def test_guest_reads_and_joins_only_guest_rooms(client, alice):
    info, g = await guest(client)
    status, who = await g.get(f"{V3}/account/whoami")
    assert who["is_guest"] is True
    # Private chats allow guests (guest_access can_join); public_chat does not.
    status, open_room = await alice.post(f"{V3}/createRoom", {"preset": "private_chat", "invite": [info["user_id"]]})
    status, closed = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    status, body = await g.post(f"{V3}/rooms/{closed['room_id']}/join", {})
    assert status == 403 and body["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
    status, body = await g.post(f"{V3}/rooms/{open_room['room_id']}/join", {})
    assert status == 200, body
    status, sent = await g.put(f"{V3}/rooms/{open_room['room_id']}/send/m.room.message/g1", {"msgtype": "m.text", "body": "hi"})
    assert status == 200
    status, page = await g.get(f"{V3}/rooms/{open_room['room_id']}/messages")
    assert status == 200 and page["chunk"][0]["event_id"] == sent["event_id"]
    status, body = await g.get(f"{V3}/rooms/{open_room['room_id']}/context/{sent['event_id']}")
    assert status == 200
    status, body = await g.get(f"{V3}/rooms/{open_room['room_id']}/event/{sent['event_id']}")
    assert status == 200
    # Revoking guest access makes the guest leave.
    status, _ = await alice.put(f"{V3}/rooms/{open_room['room_id']}/state/m.room.guest_access/", {"guest_access": "forbidden"})
    assert status == 200
    status, member = await alice.get(f"{V3}/rooms/{open_room['room_id']}/state/m.room.member/{info['user_id']}")
    assert member["membership"] == "leave"


async def test_guests_cannot_use_other_endpoints(client, alice):
    info, g = await guest(client)
    for method, path, body in (
        ("POST", f"{V3}/createRoom", {}),
        ("GET", f"{V3}/joined_rooms", None),
        ("POST", f"{V3}/account/password", {"new_password": "x"}),
        ("PUT", f"{V3}/profile/{info['user_id']}/avatar_url", {"avatar_url": "mxc://a/b"}),
        ("POST", f"{V3}/publicRooms", {}),
    ):
        status, resp = await g.request(method, path, body)
        assert status == 403 and resp["errcode"] == "M_GUEST_ACCESS_FORBIDDEN", (method, path, resp)
    status, _ = await g.put(f"{V3}/profile/{info['user_id']}/displayname", {"displayname": "Visitor"})
    assert status == 200


async def test_guest_upgrade_keeps_the_user_id(client):
    info, g = await guest(client)
    localpart = info["user_id"][1:].split(":")[0]
    status, body = await client.post(f"{V3}/register", {
        "username": localpart, "password": "now-a-member", "guest_access_token": info["access_token"],
        "auth": {"type": "m.login.dummy"},
    })
    assert status == 200, body
    assert body["user_id"] == info["user_id"]
    status, who = await client.get(f"{V3}/account/whoami", token=body["access_token"])
    assert who["is_guest"] is False
    status, login = await client.post(f"{V3}/login", {"type": "m.login.password", "identifier": {
        "type": "m.id.user", "user": localpart}, "password": "now-a-member"})
    assert status == 200
    status, body = await client.post(f"{V3}/register", {
        "username": "someoneelse", "password": "x", "guest_access_token": login["access_token"],
        "auth": {"type": "m.login.dummy"}})
    assert status == 403


class TestGuestsDisabled:
    @pytest.fixture
    def config_overrides(self):
        return {}

    async def test_guest_registration_refused_by_default(self, client):
        status, body = await client.post(f"{V3}/register?kind=guest", {})
        assert status == 403 and body["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


async def test_guest_joins_by_room_id_or_alias_and_has_a_display_name(client, alice):
    info, g = await guest(client)
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = room["room_id"]
    status, body = await g.post(f"{V3}/join/{room_id}", {})
    assert status == 403 and body["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"  # the room's rule, not the route's
    status, _ = await alice.put(f"{V3}/rooms/{room_id}/state/m.room.guest_access/", {"guest_access": "can_join"})
    status, body = await g.post(f"{V3}/join/{room_id}", {})
    assert status == 200, body
    # Named after its localpart, as Synapse names guests; readable by the guest itself.
    status, body = await g.get(f"{V3}/profile/{info['user_id']}/displayname")
    assert status == 200 and body["displayname"] == info["user_id"][1:].split(":")[0]
