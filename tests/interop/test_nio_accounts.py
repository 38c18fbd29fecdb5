"""The real matrix-nio client library against the real server over HTTP."""

import pytest
from nio import (
    AsyncClient, AsyncClientConfig, DeleteDevicesAuthResponse, DeleteDevicesResponse, DevicesResponse,
    LoginError, LoginResponse, LogoutResponse, RegisterResponse, WhoamiResponse,
)


@pytest.fixture
async def homeserver_url(client):
    return str(client.http.make_url("")).rstrip("/")


async def new_nio(url: str, user: str = "") -> AsyncClient:
    return AsyncClient(url, user, config=AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False))


async def test_register_login_whoami_logout(homeserver_url):
    nio = await new_nio(homeserver_url)
    try:
        registered = await nio.register("niouser", "nio-password-1", device_name="nio reg")
        assert isinstance(registered, RegisterResponse), registered
        assert registered.user_id == "@niouser:test.local"

        nio2 = await new_nio(homeserver_url, "@niouser:test.local")
        try:
            logged_in = await nio2.login("nio-password-1", device_name="nio login")
            assert isinstance(logged_in, LoginResponse), logged_in
            assert logged_in.device_id and nio2.access_token

            who = await nio2.whoami()
            assert isinstance(who, WhoamiResponse), who
            assert who.user_id == "@niouser:test.local"
            assert who.device_id == logged_in.device_id

            devices = await nio2.devices()
            assert isinstance(devices, DevicesResponse)
            names = {d.display_name for d in devices.devices}
            assert names == {"nio reg", "nio login"}

            out = await nio2.logout()
            assert isinstance(out, LogoutResponse), out
            again = await nio2.whoami()
            assert not isinstance(again, WhoamiResponse)
        finally:
            await nio2.close()
    finally:
        await nio.close()


async def test_wrong_password_is_a_login_error(homeserver_url):
    nio = await new_nio(homeserver_url)
    try:
        await nio.register("nio2", "right-password")
        other = await new_nio(homeserver_url, "@nio2:test.local")
        try:
            response = await other.login("wrong-password")
            assert isinstance(response, LoginError)
            assert response.status_code == "M_FORBIDDEN"
        finally:
            await other.close()
    finally:
        await nio.close()


async def test_delete_devices_with_uia(homeserver_url):
    nio = await new_nio(homeserver_url)
    try:
        await nio.register("nio3", "pw-nio3-abc", device_name="first")
        second = await new_nio(homeserver_url, "@nio3:test.local")
        try:
            login = await second.login("pw-nio3-abc", device_name="second")
            challenge = await nio.delete_devices([login.device_id])
            assert isinstance(challenge, DeleteDevicesAuthResponse), challenge
            done = await nio.delete_devices([login.device_id], auth={
                "type": "m.login.password", "user": "nio3", "password": "pw-nio3-abc",
                "session": challenge.session,
            })
            assert isinstance(done, DeleteDevicesResponse), done
            assert not isinstance(await second.whoami(), WhoamiResponse)
        finally:
            await second.close()
    finally:
        await nio.close()
