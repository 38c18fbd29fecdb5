"""identity.server_allowlist: identity servers clients may name in 3PID binds and invites."""

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture
def config_overrides() -> dict:
    return {"identity": {"server_allowlist": ["id.trusted.example"]}}


async def test_untrusted_identity_servers_are_refused_before_anything_is_done(alice):
    bind = {"sid": "s", "client_secret": "c", "id_server": "id.elsewhere.example", "id_access_token": "t"}
    status, body = await alice.post(f"{V3}/account/3pid/bind", bind)
    assert (status, body["errcode"]) == (400, "M_SERVER_NOT_TRUSTED")
    status, room = await alice.post(f"{V3}/createRoom", {})
    invite = {"id_server": "id.elsewhere.example", "id_access_token": "t", "medium": "email",
              "address": "bob@example.org"}
    status, body = await alice.post(f"{V3}/rooms/{room['room_id']}/invite", invite)
    assert (status, body["errcode"]) == (400, "M_SERVER_NOT_TRUSTED")
    # createRoom with such an invite creates no room at all.
    status, before = await alice.get(f"{V3}/joined_rooms")
    status, body = await alice.post(f"{V3}/createRoom", {"invite_3pid": [invite]})
    assert (status, body["errcode"]) == (400, "M_SERVER_NOT_TRUSTED")
    status, after = await alice.get(f"{V3}/joined_rooms")
    assert after == before
