"""Password change and deactivation, both behind user-interactive auth."""

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture
async def alice(client):
    return await client.register("alice", "old-password")


async def login(client, password):
    return await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": password,
    })


def password_auth(password, session=None, user="alice"):
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
    if session:
        auth["session"] = session
    return auth


async def test_change_password_full_uia_flow(client, alice):
    _, other = await login(client, "old-password")
    token = alice["access_token"]
    status, challenge = await client.post(f"{V3}/account/password", {"new_password": "new-password"}, token=token)
    assert status == 401
    assert challenge["flows"] == [{"stages": ["m.login.password"]}]
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "new-password", "auth": password_auth("wrong", challenge["session"]),
    }, token=token)
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    assert body["session"] == challenge["session"]
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "new-password", "auth": password_auth("old-password", challenge["session"]),
    }, token=token)
    assert status == 200, body
    # The old password no longer works, the new one does.
    status, _ = await login(client, "old-password")
    assert status == 403
    status, _ = await login(client, "new-password")
    assert status == 200
    # logout_devices defaults to true: the other device is gone, this one stays.
    status, _ = await client.get(f"{V3}/account/whoami", token=other["access_token"])
    assert status == 401
    status, _ = await client.get(f"{V3}/account/whoami", token=token)
    assert status == 200


async def test_change_password_keeping_other_devices(client, alice):
    _, other = await login(client, "old-password")
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "another", "logout_devices": False, "auth": password_auth("old-password"),
    }, token=alice["access_token"])
    assert status == 200, body
    status, _ = await client.get(f"{V3}/account/whoami", token=other["access_token"])
    assert status == 200


async def test_change_password_bad_input(client, alice):
    token = alice["access_token"]
    status, body = await client.post(f"{V3}/account/password", {"auth": password_auth("old-password")}, token=token)
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    # Without a token it is a password reset: proven by e-mail (tests/api/test_password_reset_email.py).
    status, body = await client.post(f"{V3}/account/password", {"new_password": "x"})
    assert status == 401 and body["flows"] == [{"stages": ["m.login.email.identity"]}], body
    # Its UIA session is not one of the user's.
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "x", "auth": password_auth("old-password", body["session"])}, token=token)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    # UIA with another user's (valid) password is refused outright, as Synapse does.
    await client.register("mallory", "mallory-pw")
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "pwned", "auth": password_auth("mallory-pw", user="mallory"),
    }, token=token)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_uia_session_cannot_switch_operation(client, alice):
    token = alice["access_token"]
    status, challenge = await client.post(f"{V3}/account/password", {"new_password": "x1"}, token=token)
    status, body = await client.post(f"{V3}/account/deactivate", {
        "auth": password_auth("old-password", challenge["session"]),
    }, token=token)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "x1", "auth": password_auth("old-password", "no-such-session"),
    }, token=token)
    assert status == 400


async def test_deactivate_account(client, alice):
    _, other = await login(client, "old-password")
    status, room = await client.post(f"{V3}/createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    bob = await client.register("bob")
    await client.post(f"{V3}/rooms/{room['room_id']}/join", {}, token=bob["access_token"])
    status, challenge = await client.post(f"{V3}/account/deactivate", {}, token=alice["access_token"])
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
    status, body = await client.post(f"{V3}/account/deactivate", {
        "auth": password_auth("old-password", challenge["session"]), "erase": False,
    }, token=alice["access_token"])
    assert status == 200, body
    assert body == {"id_server_unbind_result": "success"}  # nothing was bound (as Synapse answers)
    for token in (alice["access_token"], other["access_token"]):
        status, _ = await client.get(f"{V3}/account/whoami", token=token)
        assert status == 401
    status, body = await login(client, "old-password")
    assert status == 403
    # Alice left her room.
    status, member = await client.get(f"{V3}/rooms/{room['room_id']}/state/m.room.member/@alice:test.local",
                                      token=bob["access_token"])
    assert member["membership"] == "leave"
    # The user ID stays taken forever.
    status, body = await client.get(f"{V3}/register/available?username=alice")
    assert status == 400 and body["errcode"] == "M_USER_IN_USE"


async def test_deactivate_with_wrong_password_changes_nothing(client, alice):
    status, body = await client.post(f"{V3}/account/deactivate", {
        "auth": password_auth("wrong"),
    }, token=alice["access_token"])
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    status, _ = await client.get(f"{V3}/account/whoami", token=alice["access_token"])
    assert status == 200


async def test_deactivate_with_erase_marks_the_user_erased(client, alice, services):
    _, challenge = await client.post(f"{V3}/account/deactivate", {}, token=alice["access_token"])
    status, body = await client.post(f"{V3}/account/deactivate", {
        "auth": password_auth("old-password", challenge["session"]), "erase": True,
    }, token=alice["access_token"])
    assert status == 200, body
    accounts = services.accounts._accounts
    assert await accounts.erased_among(["@alice:test.local", "@bob:test.local"]) == {"@alice:test.local"}
