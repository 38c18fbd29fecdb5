"""POST /register, GET /register/available and registration tokens."""

import pytest

V3 = "/_matrix/client/v3"


async def test_register_with_dummy_auth_without_session(client):
    status, body = await client.post(f"{V3}/register", {
        "username": "alice", "password": "pw-alice-1", "auth": {"type": "m.login.dummy"},
        "initial_device_display_name": "Alice's laptop",
    })
    assert status == 200, body
    assert body["user_id"] == "@alice:test.local"
    assert body["access_token"] and body["device_id"]
    assert "refresh_token" not in body
    status, who = await client.get(f"{V3}/account/whoami", token=body["access_token"])
    assert status == 200
    assert who == {"user_id": "@alice:test.local", "device_id": body["device_id"], "is_guest": False}
    status, devices = await client.get(f"{V3}/devices", token=body["access_token"])
    assert devices["devices"][0]["display_name"] == "Alice's laptop"


async def test_register_uia_round_trip_with_session(client):
    status, challenge = await client.post(f"{V3}/register", {"username": "bob", "password": "pw-bob-123"})
    assert status == 401
    assert challenge["flows"] == [{"stages": ["m.login.dummy"]}]
    assert challenge["session"]
    assert "errcode" not in challenge
    status, body = await client.post(f"{V3}/register", {
        "username": "bob", "password": "pw-bob-123",
        "auth": {"type": "m.login.dummy", "session": challenge["session"]},
    })
    assert status == 200, body
    assert body["user_id"] == "@bob:test.local"
    # A finished session cannot register another user...
    status, _ = await client.post(f"{V3}/register", {
        "username": "bob2", "auth": {"type": "m.login.dummy", "session": challenge["session"]},
    })
    assert status == 400
    # ...but a retry of it is idempotent, as in Synapse: it logs the same user in again.
    status, again = await client.post(f"{V3}/register", {
        "username": "bob", "password": "pw-bob-123",
        "auth": {"type": "m.login.dummy", "session": challenge["session"]},
    })
    assert status == 200, again
    assert again["user_id"] == "@bob:test.local" and again["access_token"] != body["access_token"]
    status, again = await client.post(f"{V3}/register", {"auth": {"type": "m.login.dummy", "session": challenge["session"]}})
    assert status == 200 and again["user_id"] == "@bob:test.local"


async def test_register_session_remembers_parameters(client):
    status, challenge = await client.post(f"{V3}/register", {
        "username": "dora", "password": "pw-dora-123", "device_id": "XYZZY", "initial_device_display_name": "phone",
    })
    assert status == 401
    status, body = await client.post(f"{V3}/register", {"auth": {"type": "m.login.dummy", "session": challenge["session"]}})
    assert status == 200, body
    assert body["user_id"] == "@dora:test.local" and body["device_id"] == "XYZZY"
    status, device = await client.get(f"{V3}/devices/XYZZY", token=body["access_token"])
    assert device["display_name"] == "phone"
    # The password given in the first request was kept (as a hash) for the account.
    status, login = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dora"}, "password": "pw-dora-123",
    })
    assert status == 200, login


async def test_register_inhibit_login_through_the_session(client):
    status, challenge = await client.post(f"{V3}/register", {"username": "eve", "password": "pw-eve-1234", "inhibit_login": True})
    status, body = await client.post(f"{V3}/register", {"auth": {"type": "m.login.dummy", "session": challenge["session"]}})
    assert status == 200, body
    assert body["user_id"] == "@eve:test.local"
    assert "access_token" not in body and "device_id" not in body


async def test_register_lower_cases_the_username(client):
    status, body = await client.post(f"{V3}/register", {
        "username": "MixedCase", "password": "pw-mixed-1", "auth": {"type": "m.login.dummy"},
    })
    assert status == 200, body
    assert body["user_id"] == "@mixedcase:test.local"


async def test_register_taken_username_is_m_user_in_use(client):
    await client.register("carol")
    status, body = await client.post(f"{V3}/register", {
        "username": "carol", "password": "x-password", "auth": {"type": "m.login.dummy"},
    })
    assert status == 400
    assert body["errcode"] == "M_USER_IN_USE"


@pytest.mark.parametrize("username", ["has space", "émile", "a:b", "12345", "_reserved", "x" * 300])
async def test_register_invalid_username(client, username):
    status, body = await client.post(f"{V3}/register", {
        "username": username, "password": "x-password", "auth": {"type": "m.login.dummy"},
    })
    assert status == 400
    assert body["errcode"] == "M_INVALID_USERNAME"


async def test_register_without_username_generates_one(client):
    status, body = await client.post(f"{V3}/register", {"password": "pw", "auth": {"type": "m.login.dummy"}})
    assert status == 200
    assert body["user_id"].startswith("@") and body["user_id"].endswith(":test.local")


async def test_register_inhibit_login_returns_only_user_id(client):
    status, body = await client.post(f"{V3}/register", {
        "username": "dave", "password": "pw-dave-1", "auth": {"type": "m.login.dummy"}, "inhibit_login": True,
    })
    assert status == 200
    assert body == {"user_id": "@dave:test.local"}


async def test_register_with_refresh_token(client):
    body = await client.register("erin", refresh_token=True)
    assert body["refresh_token"].startswith("cgr_")
    assert body["expires_in_ms"] == 300000


async def test_register_bad_field_types(client):
    status, body = await client.post(f"{V3}/register", {"username": 5, "auth": {"type": "m.login.dummy"}})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await client.post(f"{V3}/register", {"username": "frank", "auth": "dummy"})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await client.post(f"{V3}/register", {"username": "frank", "auth": {"type": "m.login.bogus"}})
    assert status == 400


async def test_guest_registration_is_refused(client):
    status, body = await client.post(f"{V3}/register?kind=guest", {})
    assert status == 403
    assert body["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


async def test_username_availability(client):
    status, body = await client.get(f"{V3}/register/available?username=newbie")
    assert status == 200 and body == {"available": True}
    await client.register("newbie")
    status, body = await client.get(f"{V3}/register/available?username=newbie")
    assert status == 400 and body["errcode"] == "M_USER_IN_USE"
    status, body = await client.get(f"{V3}/register/available?username=Bad Name")
    assert status == 400 and body["errcode"] == "M_INVALID_USERNAME"
    status, body = await client.get(f"{V3}/register/available")
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"


class TestRegistrationDisabled:
    @pytest.fixture
    def config_overrides(self):
        return {"registration": {"enabled": False}}

    async def test_register_is_forbidden(self, client):
        status, body = await client.post(f"{V3}/register", {
            "username": "nobody", "password": "pw", "auth": {"type": "m.login.dummy"},
        })
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"

    async def test_availability_is_forbidden(self, client):
        status, body = await client.get(f"{V3}/register/available?username=nobody")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"


class TestRegistrationTokens:
    @pytest.fixture
    def config_overrides(self):
        return {"registration": {"enabled": True, "requires_token": True}}

    async def test_token_flow_and_use_limit(self, client, services):
        token = (await services.registration_tokens.create("tok-1", uses_allowed=1)).token
        status, body = await client.get(f"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}")
        assert status == 200 and body == {"valid": True}

        status, challenge = await client.post(f"{V3}/register", {"username": "gina", "password": "pw-gina"})
        assert status == 401
        assert challenge["flows"] == [{"stages": ["m.login.registration_token"]}]
        # Dummy auth is not enough when a token is required.
        status, body = await client.post(f"{V3}/register", {
            "username": "gina", "password": "pw-gina",
            "auth": {"type": "m.login.dummy", "session": challenge["session"]},
        })
        assert status == 400
        status, body = await client.post(f"{V3}/register", {
            "username": "gina", "password": "pw-gina",
            "auth": {"type": "m.login.registration_token", "token": "wrong", "session": challenge["session"]},
        })
        assert status == 401 and body["errcode"] == "M_FORBIDDEN"
        status, body = await client.post(f"{V3}/register", {
            "username": "gina", "password": "pw-gina",
            "auth": {"type": "m.login.registration_token", "token": token, "session": challenge["session"]},
        })
        assert status == 200, body
        # The single use is spent.
        status, body = await client.get(f"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}")
        assert body == {"valid": False}
        status, body = await client.post(f"{V3}/register", {
            "username": "hank", "password": "pw-hank",
            "auth": {"type": "m.login.registration_token", "token": token},
        })
        assert status == 401 and body["errcode"] == "M_FORBIDDEN"

    async def test_validity_rejects_malformed_tokens(self, client):
        status, body = await client.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=bad%20token")
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
        status, body = await client.get("/_matrix/client/v1/register/m.login.registration_token/validity")
        assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
