"""GET/POST /login, /logout, /logout/all, whoami and token errors."""

import pytest

V3 = "/_matrix/client/v3"


async def login(client, user="alice", password="pw-alice-1", **extra):
    return await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password, **extra,
    })


@pytest.fixture
async def alice(client):
    return await client.register("alice", "pw-alice-1")


async def test_login_flows(client):
    status, body = await client.get(f"{V3}/login")
    assert status == 200
    # As Synapse: m.login.application_service is always offered (appservices log their users in).
    assert body == {"flows": [{"type": "m.login.password"}, {"type": "m.login.application_service"}]}


async def test_login_with_identifier_creates_a_new_device(client, alice):
    status, body = await login(client, initial_device_display_name="phone")
    assert status == 200, body
    assert body["user_id"] == "@alice:test.local"
    assert body["device_id"] != alice["device_id"]
    assert body["access_token"] != alice["access_token"]
    status, devices = await client.get(f"{V3}/devices", token=body["access_token"])
    assert {d["device_id"] for d in devices["devices"]} == {alice["device_id"], body["device_id"]}


async def test_login_with_legacy_user_field_and_full_user_id(client, alice):
    status, body = await client.post(f"{V3}/login", {"type": "m.login.password", "user": "alice", "password": "pw-alice-1"})
    assert status == 200, body
    status, body = await login(client, user="@alice:test.local")
    assert status == 200, body
    status, body = await login(client, user="ALICE")  # localparts are matched case-insensitively
    assert status == 200, body


async def test_wrong_password_and_unknown_user_are_403(client, alice):
    status, body = await login(client, password="nope")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await login(client, user="nobody")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await login(client, user="@alice:other.server")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_login_bad_requests(client, alice):
    status, body = await client.post(f"{V3}/login", {"type": "m.login.foo"})
    assert status == 400 and body["errcode"] == "M_UNKNOWN"
    status, body = await client.post(f"{V3}/login", {"type": "m.login.password", "password": "x"})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": 7}, "password": "x"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "a@b"},
        "password": "x"})
    assert status == 403


async def test_login_reusing_device_id_revokes_its_old_tokens(client, alice):
    status, first = await login(client, device_id="MYDEVICE")
    assert status == 200 and first["device_id"] == "MYDEVICE"
    status, second = await login(client, device_id="MYDEVICE")
    assert status == 200 and second["device_id"] == "MYDEVICE"
    status, body = await client.get(f"{V3}/account/whoami", token=first["access_token"])
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    status, body = await client.get(f"{V3}/account/whoami", token=second["access_token"])
    assert status == 200 and body["device_id"] == "MYDEVICE"


async def test_missing_and_unknown_tokens(client):
    status, body = await client.get(f"{V3}/account/whoami")
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"
    status, body = await client.get(f"{V3}/account/whoami", token="cgo_not_a_real_token")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    assert body["soft_logout"] is False
    status, body = await client.get(f"{V3}/account/whoami", headers={"Authorization": "Basic abc"})
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"


async def test_token_in_query_string_is_accepted(client, alice):
    status, body = await client.get(f"{V3}/account/whoami?access_token={alice['access_token']}")
    assert status == 200 and body["user_id"] == "@alice:test.local"


async def test_logout_revokes_token_and_deletes_device(client, alice):
    status, other = await login(client)
    status, body = await client.post(f"{V3}/logout", {}, token=alice["access_token"])
    assert status == 200 and body == {}
    status, body = await client.get(f"{V3}/account/whoami", token=alice["access_token"])
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    status, devices = await client.get(f"{V3}/devices", token=other["access_token"])
    assert [d["device_id"] for d in devices["devices"]] == [other["device_id"]]


async def test_logout_all_revokes_every_token(client, alice):
    status, other = await login(client)
    status, body = await client.post(f"{V3}/logout/all", {}, token=other["access_token"])
    assert status == 200
    for token in (alice["access_token"], other["access_token"]):
        status, body = await client.get(f"{V3}/account/whoami", token=token)
        assert status == 401
    status, again = await login(client)
    status, devices = await client.get(f"{V3}/devices", token=again["access_token"])
    assert [d["device_id"] for d in devices["devices"]] == [again["device_id"]]


class TestRateLimit:
    @pytest.fixture
    def config_overrides(self):
        return {"rate_limiting": {"enabled": True, "per_second": 0.1, "burst": 3}}

    async def test_login_is_rate_limited_with_retry_after(self, client):
        statuses = []
        for _ in range(5):
            status, body = await login(client, user="nobody", password="x")
            statuses.append(status)
        assert statuses[:3] == [403, 403, 403]
        assert statuses[3] == 429
        status, body = await login(client, user="nobody", password="x")
        assert body["errcode"] == "M_LIMIT_EXCEEDED"
        assert body["retry_after_ms"] > 0
