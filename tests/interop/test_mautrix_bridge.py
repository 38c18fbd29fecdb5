"""A bridge built on mautrix (mautrix-python's AppService, what the mautrix bridges run on)
against ChatGO: registration file loaded at start, transactions to the bridge's HTTP server,
alias queries, ghosts registered and driven with `user_id`, bridged timestamps with `ts`.

The bridge runs in the test's event loop but talks to the server only over HTTP, as it would
from its own process.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.interop.bridges import (  # noqa: F401 (network: a fixture)
    PREFIX, SERVER, free_port, network, registration, relay_both_ways, server_config,
)

mautrix_appservice = pytest.importorskip("mautrix.appservice", reason="mautrix is not installed (the test extra)")
from mautrix.appservice.state_store.memory import ASStateStore  # noqa: E402
from mautrix.client.state_store import MemoryStateStore  # noqa: E402
from mautrix.types import (  # noqa: E402
    EventType, MessageType, RoomAlias, RoomCreatePreset, RoomID, TextMessageEventContent, UserID,
)


class MemoryASStateStore(ASStateStore, MemoryStateStore):
    """mautrix's in-memory state store with the appservice parts (who is registered)."""

    def __init__(self) -> None:
        ASStateStore.__init__(self)
        MemoryStateStore.__init__(self)


class MautrixFakeNetBridge:
    """Portals #fakenet_<channel> created on demand, ghosts @fakenet_<user> for remote users."""

    def __init__(self, homeserver: str, reg: dict[str, Any], network_url: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.network_url = network_url
        self.az = mautrix_appservice.AppService(
            server=homeserver, domain=SERVER, id=reg["id"], as_token=reg["as_token"], hs_token=reg["hs_token"],
            bot_localpart=reg["sender_localpart"], state_store=MemoryASStateStore(), query_alias=self.query_alias,
            log=logging.getLogger("mautrix-fakenet-bridge"))
        self.az.matrix_event_handler(self.on_matrix_event)
        self.az.app.router.add_post("/network/messages", self.on_network_message)
        self.requests: list[tuple[str, str]] = []  # what the server asked of the bridge
        self.az.app.middlewares.append(self._record)
        self.portals: dict[str, RoomID] = {}  # channel -> portal room
        self.matrix_events: list[str] = []  # IDs of the events transactions brought, in order

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    async def start(self) -> None:
        await self.az.start(host="127.0.0.1", port=self.port)
        await self.az.intent.ensure_registered()

    async def stop(self) -> None:
        await self.az.stop()

    def channel_of(self, room_id: str) -> str | None:
        return next((c for c, r in self.portals.items() if r == room_id), None)

    async def query_alias(self, alias: RoomAlias) -> dict[str, Any] | None:
        localpart = alias[1:].split(":", 1)[0]
        channel = localpart[len(PREFIX) + 1:]
        self.portals[channel] = await self.az.intent.create_room(
            alias_localpart=localpart, preset=RoomCreatePreset.PUBLIC, name=f"{channel} (FakeNet)")
        return {"room_id": self.portals[channel]}  # mautrix answers 404 for an empty (falsy) answer

    async def on_matrix_event(self, evt: Any) -> None:
        self.matrix_events.append(evt.event_id)
        channel = self.channel_of(evt.room_id)
        ours = evt.sender == self.az.bot_mxid or evt.sender.startswith(f"@{PREFIX}_")
        if evt.type != EventType.ROOM_MESSAGE or channel is None or ours:
            return  # not a portal's message, or one of ours (no echo)
        async with aiohttp.ClientSession() as session:
            await session.post(f"{self.network_url}/channels/{channel}/messages",
                               json={"sender": evt.sender, "body": evt.content.body})

    async def on_network_message(self, request: web.Request) -> web.Response:
        message = await request.json()
        room_id = self.portals[message["channel"]]
        ghost = self.az.intent.user(UserID(f"@{PREFIX}_{message['user']}:{SERVER}"))
        await ghost.ensure_registered()
        await ghost.set_displayname(f"{message['user']} (FakeNet)")
        await ghost.ensure_joined(room_id)
        event_id = await ghost.send_message_event(
            room_id, EventType.ROOM_MESSAGE, TextMessageEventContent(msgtype=MessageType.TEXT, body=message["body"]),
            timestamp=message["ts"])
        return web.json_response({"event_id": event_id})


@pytest.fixture
def reg() -> dict[str, Any]:
    return registration("mautrix-fakenet", free_port())


@pytest.fixture
def config_overrides(tmp_path, reg) -> dict:
    return server_config(tmp_path / "mautrix-fakenet.yaml", reg)


@pytest.fixture
async def bridge(client, services, network, reg):
    services.appservice_sender.start()  # as `chatgo run` does
    port = int(reg["url"].rsplit(":", 1)[1])
    bridge = MautrixFakeNetBridge(str(client.http.make_url("")).rstrip("/"), reg, network.url, port)
    await bridge.start()
    yield bridge
    await bridge.stop()


async def test_a_mautrix_bridge_relays_both_ways(client, alice, network, bridge):
    result = await relay_both_ways(client, alice, network, bridge.url)
    # The ghost is the bridge's: registered through it, in its exclusive namespace.
    status, body = await alice.post("/_matrix/client/v3/register", {"username": f"{PREFIX}_carol",
                                                                    "password": "x-pass-123",
                                                                    "auth": {"type": "m.login.dummy"}})
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
    assert result["event_id"] in bridge.matrix_events  # the ghost's own message came back in a transaction
    assert ("GET", f"/_matrix/app/v1/rooms/#{PREFIX}_general:{SERVER}") in bridge.requests  # the alias query
    assert all(path.startswith("/_matrix/app/v1/") or path == "/network/messages" for _, path in bridge.requests)


async def test_mautrix_pings_the_server_and_is_pinged(bridge):
    # mautrix's ping_self: POST /_matrix/client/v1/appservice/{id}/ping, which pings the bridge
    # back before answering. (It returns the server's duration_ms, or -1 for 0 ms.)
    duration = await bridge.az.ping_self("txn-ping")
    assert duration == -1 or duration > 0
    assert ("POST", "/_matrix/app/v1/ping") in bridge.requests
