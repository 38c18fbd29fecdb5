"""Shared-secret registration: GET/POST /_synapse/admin/v1/register, as Synapse serves it."""

import hashlib
import hmac

import pytest

from homeserver.web_app import make_web_app
from tests.server_fixtures import MatrixClient

ADMIN = "/_synapse/admin/v1"
SECRET = "reg_secret"


@pytest.fixture
def config_overrides() -> dict:
    return {"registration": {"enabled": False, "shared_secret": SECRET}}


def mac(nonce: str, user: str, password: str, admin: bool, user_type: str | None = None, secret: str = SECRET) -> str:
    fields = [nonce, user, password, "admin" if admin else "notadmin"] + ([user_type] if user_type else [])
    return hmac.new(secret.encode(), "\x00".join(fields).encode(), hashlib.sha1).hexdigest()


async def nonce_of(client) -> str:
    status, body = await client.get(f"{ADMIN}/register")
    assert status == 200, body
    return body["nonce"]


async def test_registers_a_user_and_logs_in_even_with_registration_closed(client):
    nonce = await nonce_of(client)
    status, body = await client.post(f"{ADMIN}/register", {
        "nonce": nonce, "username": "Bob", "password": "pw-bob-1", "displayname": "Bobby",
        "admin": False, "mac": mac(nonce, "Bob", "pw-bob-1", False)})
    assert status == 200, body
    assert body["user_id"] == "@bob:test.local"  # lower-cased, as Synapse
    assert body["home_server"] == "test.local" and body["device_id"]
    bob = client.with_token(body["access_token"])
    status, who = await bob.get("/_matrix/client/v3/account/whoami")
    assert who["user_id"] == "@bob:test.local"
    status, profile = await client.get("/_matrix/client/v3/profile/@bob:test.local")
    assert profile["displayname"] == "Bobby"
    # The password works for a normal login.
    status, login = await client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "pw-bob-1"})
    assert status == 200, login


async def test_admin_flag_and_user_type_are_covered_by_the_mac(client, services):
    nonce = await nonce_of(client)
    status, body = await client.post(f"{ADMIN}/register", {
        "nonce": nonce, "username": "root", "password": "pw-root-1", "admin": True, "user_type": "bot",
        "mac": mac(nonce, "root", "pw-root-1", True, "bot")})
    assert status == 200, body
    assert (await services.auth.authenticate(body["access_token"])).is_admin

    # A MAC made for a non-admin does not make an admin.
    nonce = await nonce_of(client)
    status, body = await client.post(f"{ADMIN}/register", {
        "nonce": nonce, "username": "mallory", "password": "pw-m-1", "admin": True,
        "mac": mac(nonce, "mallory", "pw-m-1", False)})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_nonce_is_single_use_and_bad_input_gets_matrix_errors(client):
    nonce = await nonce_of(client)
    wrong = {"nonce": nonce, "username": "eve", "password": "pw-eve-1", "mac": mac(nonce, "eve", "pw-eve-1", False, secret="x")}
    status, body = await client.post(f"{ADMIN}/register", wrong)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # The nonce was spent by the failed attempt.
    right = {**wrong, "mac": mac(nonce, "eve", "pw-eve-1", False)}
    status, body = await client.post(f"{ADMIN}/register", right)
    assert status == 400 and "nonce" in body["error"]
    status, body = await client.post(f"{ADMIN}/register", {"nonce": await nonce_of(client), "username": 5})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await client.post(f"{ADMIN}/register", {"username": "x"})
    assert status == 400
    # A taken name: the MAC is right, the account exists.
    nonce = await nonce_of(client)
    await client.post(f"{ADMIN}/register", {"nonce": nonce, "username": "eve", "password": "pw-eve-1",
                                            "mac": mac(nonce, "eve", "pw-eve-1", False)})
    nonce = await nonce_of(client)
    status, body = await client.post(f"{ADMIN}/register", {"nonce": nonce, "username": "eve", "password": "pw-eve-1",
                                                           "mac": mac(nonce, "eve", "pw-eve-1", False)})
    assert (status, body["errcode"]) == (400, "M_USER_IN_USE")


async def test_served_on_admin_listeners_and_off_without_a_secret(aiohttp_client, services, db, signing_key):
    admin_only = MatrixClient(await aiohttp_client(make_web_app(services, ["admin"])))
    assert (await admin_only.get(f"{ADMIN}/register"))[0] == 200
    assert (await admin_only.get("/_matrix/client/v3/account/whoami"))[0] == 404

    from homeserver.app import build_services
    from tests.conftest import make_test_config

    no_secret = build_services(make_test_config(), db, signing_key=signing_key)
    client = MatrixClient(await aiohttp_client(make_web_app(no_secret, ["client"])))
    status, body = await client.get(f"{ADMIN}/register")
    assert status == 400 and "not enabled" in body["error"]
    await no_secret.devices.flush()
    await no_secret.pushers.close()
