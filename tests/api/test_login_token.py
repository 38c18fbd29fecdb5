"""POST /_matrix/client/v1/login/get_token: a signed-in device gets a one-time token that signs
in another (m.login.token), after user-interactive auth; off unless configured."""

import pytest

V1, V3 = "/_matrix/client/v1", "/_matrix/client/v3"


@pytest.fixture
def config_overrides(request) -> dict:
    return getattr(request, "param", {})


async def test_off_by_default(alice, client):
    status, body = await alice.get(f"{V3}/capabilities")
    assert body["capabilities"]["m.get_login_token"] == {"enabled": False}
    status, body = await alice.post(f"{V1}/login/get_token", {})
    assert status == 400 and body["errcode"] == "M_FORBIDDEN"
    status, flows = await client.get(f"{V3}/login")
    # No m.login.token flow (application services always have theirs, as Synapse lists it).
    assert [f["type"] for f in flows["flows"]] == ["m.login.password", "m.login.application_service"]


@pytest.mark.parametrize("config_overrides", [{"login_via_existing_session": {"enabled": True}}], indirect=True)
async def test_a_token_after_uia_signs_in_a_new_device_once(alice, client):
    status, body = await alice.get(f"{V3}/capabilities")
    assert body["capabilities"]["m.get_login_token"] == {"enabled": True}
    status, flows = await client.get(f"{V3}/login")
    assert {"type": "m.login.token", "get_login_token": True} in flows["flows"]

    status, challenge = await alice.post(f"{V1}/login/get_token", {})
    assert status == 401 and challenge["session"] and ["m.login.password"] in [f["stages"] for f in challenge["flows"]]
    status, body = await alice.post(f"{V1}/login/get_token", {"auth": {
        "type": "m.login.password", "session": challenge["session"], "password": "s3cret-pass",
        "identifier": {"type": "m.id.user", "user": "alice"}}})
    assert status == 200, body
    assert body["expires_in_ms"] == 300000 and body["login_token"]

    status, login = await client.post(f"{V3}/login", {"type": "m.login.token", "token": body["login_token"]})
    assert status == 200, login
    assert login["user_id"] == "@alice:test.local" and login["device_id"] != alice.token
    status, again = await client.post(f"{V3}/login", {"type": "m.login.token", "token": body["login_token"]})
    assert status == 403 and again["errcode"] == "M_FORBIDDEN"  # single use


@pytest.mark.parametrize("config_overrides", [{"login_via_existing_session": {
    "enabled": True, "require_ui_auth": False, "token_timeout_ms": 60000}}], indirect=True)
async def test_without_uia_and_a_shorter_lifetime(alice, client):
    status, body = await alice.post(f"{V1}/login/get_token", {})
    assert status == 200 and body["expires_in_ms"] == 60000
    status, login = await client.post(f"{V3}/login", {"type": "m.login.token", "token": body["login_token"]})
    assert status == 200 and login["user_id"] == "@alice:test.local"
