"""The real server over real HTTP: `client` is an aiohttp test client on a loopback port.

Loaded as a plugin by tests/conftest.py, so every test folder can use these fixtures.
"""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.app import build_services
from homeserver.web_app import make_web_app
from tests.conftest import make_test_config


class MatrixClient:
    """A thin helper over the aiohttp test client that speaks JSON and remembers a token."""

    def __init__(self, http, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def with_token(self, token: str | None) -> "MatrixClient":
        return MatrixClient(self.http, token)

    async def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                      token: str | None = None, headers: dict | None = None) -> tuple[int, Any]:
        headers = dict(headers or {})
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        resp = await self.http.request(method, path, **kwargs)
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = await resp.text()
        return resp.status, data

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw):
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw):
        return await self.request("PUT", path, body, **kw)

    async def delete(self, path: str, body: Any = None, **kw):
        return await self.request("DELETE", path, body, **kw)

    async def register(self, username: str, password: str = "s3cret-pass", **extra) -> dict:
        status, body = await self.post("/_matrix/client/v3/register", {
            "username": username, "password": password, "auth": {"type": "m.login.dummy"}, **extra,
        })
        assert status == 200, body
        return body


@pytest.fixture
def config_overrides() -> dict:
    """Override in a test module to change the server's config."""
    return {}


@pytest.fixture(scope="session")
def signing_key():
    from signedjson.key import generate_signing_key

    return generate_signing_key("a_test")


@pytest.fixture
async def services(db, config_overrides, signing_key):
    services = build_services(make_test_config(**config_overrides), db, signing_key=signing_key)
    yield services
    await services.room_tasks.stop()
    await services.devices.flush()
    await services.pushers.close()
    await services.appservice_sender.stop()  # its HTTP client, opened by any query to an appservice


@pytest.fixture
async def client(aiohttp_client, services) -> MatrixClient:
    app = make_web_app(services, ["client"])
    return MatrixClient(await aiohttp_client(app))


@pytest.fixture
async def alice(client) -> MatrixClient:
    """A registered user's client (@alice:test.local); modules may override it."""
    return client.with_token((await client.register("alice"))["access_token"])


@pytest.fixture
async def bob(client) -> MatrixClient:
    return client.with_token((await client.register("bob"))["access_token"])


@pytest.fixture
async def admin(client, services) -> MatrixClient:
    """A server admin's client (@admin:test.local), for the Synapse admin API."""
    await services.accounts.create_user("admin", "pw-admin-1", admin=True)
    status, login = await client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "admin"}, "password": "pw-admin-1"})
    assert status == 200, login
    return client.with_token(login["access_token"])
