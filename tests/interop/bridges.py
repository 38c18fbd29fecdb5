"""What the bridge interop tests share: a small fake remote chat network, the registration of a
bridge to it, and the scenario every bridge must pass against ChatGO.

The network has channels where remote users talk. A bridge relays what Matrix users say in a
portal room to the network (`POST {network}/channels/{channel}/messages` with `sender` and
`body`), and the network tells the bridge what its users say by posting to the bridge's webhook
(`POST {bridge}/network/messages` with `channel`, `user`, `body` and `ts`, the time the remote
user spoke), which answers with the event ID it sent. Bridges are built on real frameworks
(mautrix, matrix-bot-sdk) and talk to the real server over real HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

SERVER = "test.local"
PREFIX = "fakenet"  # ghosts @fakenet_<user>, portals #fakenet_<channel>, the bot @fakenetbot
# The time the remote user spoke (2020-09-13): the ghost's message must carry it, not "now".
REMOTE_TS = 1_600_000_000_000


def free_port() -> int:
    """A loopback port nobody listens on now, for a bridge whose URL goes in its registration
    before the bridge starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def registration(appservice_id: str, port: int) -> dict[str, Any]:
    return {
        "id": appservice_id, "url": f"http://127.0.0.1:{port}",
        "as_token": f"as-{appservice_id}-token", "hs_token": f"hs-{appservice_id}-token",
        "sender_localpart": f"{PREFIX}bot",
        "namespaces": {"users": [{"exclusive": True, "regex": f"@{PREFIX}_.*"}],
                       "aliases": [{"exclusive": True, "regex": f"#{PREFIX}_.*"}], "rooms": []},
        "rate_limited": False, "protocols": [PREFIX],
    }


def server_config(path: Path, reg: dict[str, Any]) -> dict[str, Any]:
    """The server's config overrides: the registration file written by the test, loaded at start."""
    path.write_text(yaml.safe_dump(reg))
    return {"app_service_config_files": [str(path)],
            "appservice": {"retry_min_interval_ms": 100, "retry_max_interval_ms": 1000}}


class FakeNetwork:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []  # what bridges relayed from Matrix, in order
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/channels/{channel}/messages", self._relayed)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _relayed(self, request: web.Request) -> web.Response:
        self.received.append({"channel": request.match_info["channel"], **await request.json()})
        self._arrived.set()
        return web.json_response({"ok": True})

    async def wait_for(self, channel: str, body: str, timeout: float = 20.0) -> dict[str, Any]:
        """The message a bridge relayed to `channel` with `body`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for message in self.received:
                if message["channel"] == channel and message.get("body") == body:
                    return message
            if loop.time() > deadline:
                raise AssertionError(f"the network never got {body!r} in {channel}; it got {self.received}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), 0.2)
            except asyncio.TimeoutError:
                pass

    async def say(self, bridge_url: str, channel: str, user: str, body: str, ts: int) -> str:
        """A remote user speaks: the network tells the bridge; returns the event ID it sent."""
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{bridge_url}/network/messages",
                                    json={"channel": channel, "user": user, "body": body, "ts": ts}) as resp:
                answer = await resp.json(content_type=None)
                assert resp.status == 200, answer
                return answer["event_id"]


@pytest.fixture
async def network():
    """A FakeNetwork running for the test."""
    network = FakeNetwork()
    await network.start()
    yield network
    await network.stop()


async def relay_both_ways(client, alice, network: FakeNetwork, bridge_url: str) -> dict[str, Any]:
    """The scenario every bridge passes: alice joins a portal the bridge creates on demand
    (alias query), her message reaches the network through a transaction, and a remote user's
    message appears in the room from a ghost the bridge registered, at the remote time."""
    alias = f"#{PREFIX}_general:{SERVER}"
    status, joined = await alice.post(f"/_matrix/client/v3/join/{urllib.parse.quote(alias)}", {})
    assert status == 200, joined  # the bridge created the portal while we asked it about the alias
    room_id = joined["room_id"]

    status, sent = await alice.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/m1",
                                   {"msgtype": "m.text", "body": "hello remote people"})
    assert status == 200, sent
    relayed = await network.wait_for("general", "hello remote people")
    assert relayed["sender"] == f"@alice:{SERVER}"

    event_id = await network.say(bridge_url, "general", "carol", "hi from afar", REMOTE_TS)
    ghost = f"@{PREFIX}_carol:{SERVER}"
    status, event = await alice.get(f"/_matrix/client/v3/rooms/{room_id}/event/{event_id}")
    assert status == 200, event
    assert (event["sender"], event["content"]["body"], event["origin_server_ts"]) == (ghost, "hi from afar", REMOTE_TS)
    status, members = await alice.get(f"/_matrix/client/v3/rooms/{room_id}/joined_members")
    assert status == 200 and ghost in members["joined"] and f"@{PREFIX}bot:{SERVER}" in members["joined"]
    assert members["joined"][ghost]["display_name"] == "carol (FakeNet)"
    # Transactions keep the room's order: the ghost's message reached the bridge before alice's
    # next one, and the bridge, seeing its own ghost, did not send it back to the network.
    status, _ = await alice.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/m2",
                                {"msgtype": "m.text", "body": "welcome carol"})
    assert status == 200
    await network.wait_for("general", "welcome carol")
    assert [m["body"] for m in network.received] == ["hello remote people", "welcome carol"]
    return {"room_id": room_id, "ghost": ghost, "event_id": event_id}
