"""Appservice tests: fake appservices (small aiohttp servers on loopback) registered with the
server under test through real registration files.

`bridge` is registered as `@_bridge_.*` (exclusive) and `#_bridge_.*` (exclusive), with
ephemeral data and MSC3202; `plain` as `@_plain_.*` without them. Both feeds run
(`services.appservice_sender` is started) and back off quickly (50 ms doubling to 200 ms).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.server_fixtures import MatrixClient

V3 = "/_matrix/client/v3"
SERVER = "test.local"


class FakeAppService:
    """An appservice: records the transactions, queries and pings it gets, answers as told."""

    def __init__(self, name: str, hs_token: str) -> None:
        self.name = name
        self.hs_token = hs_token
        self.transactions: list[tuple[str, dict[str, Any]]] = []  # accepted, in order of arrival
        self.attempts: list[str] = []  # every PUT's txnId, refused ones too
        self.pings: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.down = False  # answer transactions with 503
        self.ping_status = 200
        self.ping_delay = 0.0  # seconds before answering a ping
        self.on_user: Callable[[str], Awaitable[bool]] | None = None
        self.on_alias: Callable[[str], Awaitable[bool]] | None = None
        self.bad_auth: list[str] = []
        # Third-party lookups: what follows /thirdparty/ in the path -> the JSON answer (an int:
        # answer with that status; absent: 404), and the lookups asked (path, query pairs).
        self.thirdparty: dict[str, Any] = {}
        self.lookups: list[tuple[str, list[tuple[str, str]]]] = []
        self._arrived = asyncio.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.runner: web.AppRunner | None = None

    def registration(self, **extra: Any) -> dict[str, Any]:
        return {"id": self.name, "url": self.url, "as_token": f"as-{self.name}", "hs_token": self.hs_token,
                "sender_localpart": f"{self.name}bot",
                "namespaces": {"users": [{"exclusive": True, "regex": f"@_{self.name}_.*"}],
                               "aliases": [{"exclusive": True, "regex": f"#_{self.name}_.*"}],
                               "rooms": [{"exclusive": False, "regex": f"!_{self.name}_.*"}]},
                "rate_limited": False, **extra}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_put("/_matrix/app/v1/transactions/{txn}", self._transaction)
        app.router.add_get("/_matrix/app/v1/users/{user}", self._user)
        app.router.add_get("/_matrix/app/v1/rooms/{alias}", self._alias)
        app.router.add_post("/_matrix/app/v1/ping", self._ping)
        app.router.add_get("/_matrix/app/v1/thirdparty/{what:.*}", self._thirdparty)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def _authorised(self, request: web.Request) -> bool:
        ok = request.headers.get("Authorization") == f"Bearer {self.hs_token}"
        if not ok:
            self.bad_auth.append(request.path)
        return ok

    async def _transaction(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        txn_id = request.match_info["txn"]
        self.attempts.append(txn_id)
        if self.down:
            return web.json_response({"errcode": "M_UNKNOWN"}, status=503)
        self.transactions.append((txn_id, await request.json()))
        self._arrived.set()
        return web.json_response({})

    async def _user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user"]
        self.queries.append(user_id)
        if self._authorised(request) and self.on_user is not None and await self.on_user(user_id):
            return web.json_response({})
        return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)

    async def _alias(self, request: web.Request) -> web.Response:
        alias = request.match_info["alias"]
        self.queries.append(alias)
        if self._authorised(request) and self.on_alias is not None and await self.on_alias(alias):
            return web.json_response({})
        return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)

    async def _ping(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        self.pings.append(await request.json())
        await asyncio.sleep(self.ping_delay)
        if self.ping_status != 200:
            return web.json_response({"errcode": "M_UNKNOWN", "error": "not today"}, status=self.ping_status)
        return web.json_response({})

    async def _thirdparty(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        what = request.match_info["what"]
        self.lookups.append((what, list(request.query.items())))
        answer = self.thirdparty.get(what)
        if answer is None:
            return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)
        if isinstance(answer, int):
            return web.json_response({"errcode": "M_UNKNOWN"}, status=answer)
        if isinstance(answer, bytes):
            return web.Response(body=answer, content_type="application/json")
        return web.json_response(answer)

    # --- what arrived --------------------------------------------------------------------------

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [e for _, body in self.transactions for e in body["events"]
                if event_type is None or e["type"] == event_type]

    def body_values(self, key: str) -> list[Any]:
        return [item for _, body in self.transactions for item in body.get(key, [])]

    async def wait_for(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `check()` is truthy (re-checked as transactions arrive); returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = check()
            if found:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name} never got what the test waited for; got {self.transactions}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.1))
            except asyncio.TimeoutError:
                pass


def write_registration(path: Path, registration: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(registration))
    return path


@pytest.fixture
async def bridge() -> FakeAppService:
    service = FakeAppService("bridge", "hs-bridge")
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def plain() -> FakeAppService:
    service = FakeAppService("plain", "hs-plain")
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def registrations(tmp_path, bridge, plain) -> list[str]:
    return [
        str(write_registration(tmp_path / "bridge.yaml", bridge.registration(
            receive_ephemeral=True, **{"org.matrix.msc3202": True}))),
        str(write_registration(tmp_path / "plain.yaml", plain.registration())),
    ]


def appservice_config(registrations: list[str], **extra: Any) -> dict[str, Any]:
    return {"app_service_config_files": registrations,
            "appservice": {"retry_min_interval_ms": 50, "retry_max_interval_ms": 200, "request_timeout_ms": 5000},
            **extra}


@pytest.fixture
def config_overrides(registrations) -> dict:
    return appservice_config(registrations)


@pytest.fixture
async def feeds(services):
    """The appservice feeds running (as `chatgo run` starts them)."""
    services.appservice_sender.start()
    yield services.appservice_sender
    await services.appservice_sender.stop()


@pytest.fixture
def as_bridge(client) -> MatrixClient:
    """The bridge's client: its as_token."""
    return client.with_token("as-bridge")


@pytest.fixture
def as_plain(client) -> MatrixClient:
    return client.with_token("as-plain")


async def register_ghost(as_client: MatrixClient, localpart: str, **extra: Any) -> dict[str, Any]:
    status, body = await as_client.post(f"{V3}/register", {"type": "m.login.application_service",
                                                           "username": localpart, **extra})
    assert status == 200, body
    return body
