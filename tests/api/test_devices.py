"""GET/PUT/DELETE /devices/{deviceId}, GET /devices and POST /delete_devices."""

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture
async def alice(client):
    return await client.register("alice", "pw-alice-1", initial_device_display_name="laptop")


async def second_login(client):
    status, body = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "pw-alice-1", "initial_device_display_name": "phone",
    })
    assert status == 200
    return body


def password_auth(session=None, password="pw-alice-1"):
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": password}
    if session:
        auth["session"] = session
    return auth


async def test_get_and_rename_device(client, alice):
    client = client.with_token(alice["access_token"])
    device_id = alice["device_id"]
    status, body = await client.get(f"{V3}/devices/{device_id}")
    assert status == 200
    assert body["device_id"] == device_id and body["display_name"] == "laptop"
    status, body = await client.put(f"{V3}/devices/{device_id}", {"display_name": "work laptop"})
    assert status == 200 and body == {}
    status, body = await client.get(f"{V3}/devices/{device_id}")
    assert body["display_name"] == "work laptop"


async def test_unknown_device_is_404(client, alice):
    client = client.with_token(alice["access_token"])
    status, body = await client.get(f"{V3}/devices/NOPE")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await client.put(f"{V3}/devices/NOPE", {"display_name": "x"})
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


async def test_other_users_devices_are_invisible(client, alice):
    bob = await client.register("bob")
    status, body = await client.get(f"{V3}/devices/{alice['device_id']}", token=bob["access_token"])
    assert status == 404


async def test_rename_bad_input(client, alice):
    client = client.with_token(alice["access_token"])
    status, body = await client.put(f"{V3}/devices/{alice['device_id']}", {"display_name": 12})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await client.put(f"{V3}/devices/{alice['device_id']}", {"display_name": "x" * 101})
    assert status == 400
    status, body = await client.put(f"{V3}/devices/{alice['device_id']}", raw=b"nope")
    assert status == 400 and body["errcode"] == "M_NOT_JSON"


async def test_delete_device_needs_uia_and_revokes_its_tokens(client, alice):
    phone = await second_login(client)
    client = client.with_token(alice["access_token"])
    status, challenge = await client.delete(f"{V3}/devices/{phone['device_id']}")
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
    # Nothing is deleted before auth completes.
    status, _ = await client.get(f"{V3}/account/whoami", token=phone["access_token"])
    assert status == 200
    status, body = await client.delete(f"{V3}/devices/{phone['device_id']}", {
        "auth": password_auth(challenge["session"]),
    })
    assert status == 200, body
    status, body = await client.get(f"{V3}/account/whoami", token=phone["access_token"])
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    status, body = await client.get(f"{V3}/devices")
    assert [d["device_id"] for d in body["devices"]] == [alice["device_id"]]


async def test_delete_device_uia_must_be_the_owner_and_the_same_device(client, alice):
    phone = await second_login(client)
    tablet = await second_login(client)
    await client.register("eve", "pw-eve-123")
    owner = client.with_token(alice["access_token"])
    # Another user's valid credentials (a stolen token): 403, as Synapse answers.
    status, body = await owner.delete(f"{V3}/devices/{phone['device_id']}", {"auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "@eve:test.local"},
        "password": "pw-eve-123",
    }})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    # A session started to delete one device cannot be carried on to delete another.
    status, challenge = await owner.delete(f"{V3}/devices/{phone['device_id']}", {})
    assert status == 401
    status, body = await owner.delete(f"{V3}/devices/{tablet['device_id']}", {"auth": password_auth(challenge["session"])})
    assert status == 403
    status, body = await owner.get(f"{V3}/devices")
    assert len(body["devices"]) == 3


async def test_delete_devices_in_bulk(client, alice):
    phone = await second_login(client)
    tablet = await second_login(client)
    client = client.with_token(alice["access_token"])
    status, body = await client.post(f"{V3}/delete_devices", {
        "devices": [phone["device_id"], tablet["device_id"], "UNKNOWN"], "auth": password_auth(),
    })
    assert status == 200, body
    status, body = await client.get(f"{V3}/devices")
    assert [d["device_id"] for d in body["devices"]] == [alice["device_id"]]
    for token in (phone["access_token"], tablet["access_token"]):
        status, _ = await client.get(f"{V3}/account/whoami", token=token)
        assert status == 401


async def test_delete_devices_bad_input(client, alice):
    client = client.with_token(alice["access_token"])
    status, body = await client.post(f"{V3}/delete_devices", {"devices": "ABC", "auth": password_auth()})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await client.post(f"{V3}/delete_devices", {"devices": [alice["device_id"]],
                                                              "auth": password_auth(password="wrong")})
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    status, _ = await client.get(f"{V3}/account/whoami")
    assert status == 200


async def wait_for_last_seen(client, device_id):
    import asyncio

    for _ in range(50):
        status, body = await client.get(f"{V3}/devices/{device_id}")
        if body["last_seen_ts"] is not None:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("last_seen was never recorded")


async def test_devices_record_last_seen(client, alice):
    client = client.with_token(alice["access_token"])
    status, body = await client.get(f"{V3}/devices")
    # Keys are always present (null until known), as clients such as matrix-nio require.
    assert set(body["devices"][0]) == {"device_id", "display_name", "last_seen_ip", "last_seen_ts"}
    body = await wait_for_last_seen(client, alice["device_id"])
    assert body["last_seen_ip"] == "127.0.0.1"
    assert body["last_seen_ts"] > 1_600_000_000_000


class TestBehindProxy:
    @pytest.fixture
    async def client(self, aiohttp_client, services):
        from homeserver.web_app import make_web_app
        from tests.server_fixtures import MatrixClient

        return MatrixClient(await aiohttp_client(make_web_app(services, ["client"], x_forwarded=True)))

    async def test_x_forwarded_for_is_the_client_address(self, client, services):
        user = await client.register("proxied")
        client = client.with_token(user["access_token"])
        status, _ = await client.get(f"{V3}/account/whoami", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})
        assert status == 200
        await services.devices.flush()
        device = await services.devices.get_device(user["user_id"], user["device_id"])
        assert device.last_seen_ip == "203.0.113.7"


async def test_whois_lists_devices_and_their_last_connection(client, alice, services):
    """GET /admin/whois/{userId} (spec admin.yaml): for the user themself and server admins."""
    me = client.with_token(alice["access_token"])
    await me.request("GET", f"{V3}/account/whoami", headers={"User-Agent": "sytest-like/1.0"})
    await wait_for_last_seen(me, alice["device_id"])
    status, body = await me.get(f"{V3}/admin/whois/@alice:test.local")
    assert status == 200, body
    assert body["user_id"] == "@alice:test.local"
    (connection,) = body["devices"][alice["device_id"]]["sessions"][0]["connections"]
    assert connection["ip"] == "127.0.0.1" and connection["last_seen"] > 1_600_000_000_000
    assert connection["user_agent"]

    bob = await client.register("bob")
    status, body = await client.get(f"{V3}/admin/whois/@alice:test.local", token=bob["access_token"])
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    admin_id = await services.accounts.create_user("root", "pw-root-1", admin=True)
    status, login = await client.post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "root"}, "password": "pw-root-1"})
    root = client.with_token(login["access_token"])
    status, body = await root.get(f"{V3}/admin/whois/@alice:test.local")
    assert status == 200 and alice["device_id"] in body["devices"]
    status, body = await root.get(f"{V3}/admin/whois/@alice:elsewhere.example")
    assert status == 400
    assert admin_id == "@root:test.local"
