"""GET /voip/turnServer: TURN REST credentials from a shared secret, static ones, or {}."""

import base64
import hashlib
import hmac
import time

import pytest

URIS = ["turn:turn.test.local:3478?transport=udp", "turns:turn.test.local:5349?transport=tcp"]


@pytest.fixture
def config_overrides(request) -> dict:
    return getattr(request, "param", {})


async def test_no_turn_server_configured_answers_empty(alice):
    status, body = await alice.get("/_matrix/client/v3/voip/turnServer")
    assert status == 200 and body == {}


@pytest.mark.parametrize("config_overrides", [{"voip": {"turn_uris": URIS, "turn_shared_secret": "coturn-secret",
                                                        "turn_user_lifetime_ms": 86_400_000}}], indirect=True)
async def test_shared_secret_gives_coturn_credentials(client, alice):
    status, body = await alice.get("/_matrix/client/v3/voip/turnServer")
    assert status == 200, body
    assert body["uris"] == URIS and body["ttl"] == 86400
    expiry, user_id = body["username"].split(":", 1)
    assert user_id == "@alice:test.local"
    assert abs(int(expiry) - (time.time() + 86400)) < 60
    expected = base64.b64encode(hmac.new(b"coturn-secret", body["username"].encode(), hashlib.sha1).digest())
    assert body["password"] == expected.decode()
    status, body = await client.get("/_matrix/client/v3/voip/turnServer")
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("config_overrides", [{"voip": {"turn_uris": URIS, "turn_username": "u", "turn_password": "p",
                                                        "turn_allow_guests": False},
                                               "registration": {"enabled": True, "allow_guests": True}}], indirect=True)
async def test_static_credentials_and_guests_refused(client, alice):
    status, body = await alice.get("/_matrix/client/v3/voip/turnServer")
    assert status == 200 and body == {"username": "u", "password": "p", "uris": URIS, "ttl": 3600}
    status, guest = await client.post("/_matrix/client/v3/register?kind=guest", {})
    assert status == 200, guest
    status, body = await client.get("/_matrix/client/v3/voip/turnServer", token=guest["access_token"])
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("config_overrides", [{"support": {
    "contacts": [{"matrix_id": "@admin:test.local", "email_address": "admin@test.local", "role": "m.role.admin"},
                 {"email_address": "security@test.local", "role": "m.role.security"}],
    "support_page": "https://test.local/help"}}], indirect=True)
async def test_wellknown_support_serves_the_configured_contacts(client):
    status, body = await client.get("/.well-known/matrix/support")
    assert status == 200, body
    assert body == {"contacts": [{"matrix_id": "@admin:test.local", "email_address": "admin@test.local",
                                  "role": "m.role.admin"},
                                 {"email_address": "security@test.local", "role": "m.role.security"}],
                    "support_page": "https://test.local/help"}


async def test_wellknown_support_is_404_when_unset(client):
    status, body = await client.get("/.well-known/matrix/support")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
