"""A minimal Matrix client for the federation tests: real HTTP over TLS to a test server."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp


class Client:
    def __init__(self, base_url: str, ca_file: str | None = None) -> None:
        self.base_url = base_url
        self.ssl = ssl.create_default_context(cafile=ca_file) if ca_file else False
        self.token: str | None = None
        self.user_id: str | None = None
        self.next_batch: str | None = None

    async def request(self, method: str, path: str, body: Any = None, *, query: dict | None = None,
                      expect: int | None = 200) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.base_url + path, json=body, params=query, headers=headers,
                                       ssl=self.ssl, timeout=aiohttp.ClientTimeout(total=120)) as resp:
                data = await resp.json(content_type=None)
                if expect is not None:
                    assert resp.status == expect, (method, path, resp.status, data)
                return resp.status, data

    async def login(self, user: str, password: str) -> "Client":
        _, body = await self.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password})
        self.token, self.user_id = body["access_token"], body["user_id"]
        return self

    async def create_room(self, **body: Any) -> str:
        _, answer = await self.request("POST", "/_matrix/client/v3/createRoom", body)
        return answer["room_id"]

    async def join(self, room: str, via: list[str] = (), expect: int = 200) -> tuple[int, Any]:
        return await self.request("POST", f"/_matrix/client/v3/join/{quote(room)}", {},
                                  query=[("via", s) for s in via] or None, expect=expect)

    async def send(self, room_id: str, body: str, msgtype: str = "m.text") -> str:
        _, answer = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
            {"msgtype": msgtype, "body": body})
        return answer["event_id"]

    async def state(self, room_id: str, event_type: str, state_key: str = "", expect: int = 200) -> tuple[int, Any]:
        return await self.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}", expect=expect)

    async def membership(self, room_id: str, verb: str, user_id: str | None = None, expect: int = 200, **extra):
        body = {"user_id": user_id, **extra} if user_id else dict(extra)
        return await self.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/{verb}", body, expect=expect)

    async def sync(self, timeout_ms: int = 0, since: str | None = None) -> dict[str, Any]:
        query = {"timeout": str(timeout_ms)}
        if since or self.next_batch:
            query["since"] = since or self.next_batch
        _, body = await self.request("GET", "/_matrix/client/v3/sync", query=query)
        self.next_batch = body["next_batch"]
        return body

    async def wait_for(self, predicate, timeout_s: float = 20.0) -> dict[str, Any]:
        """Long-poll /sync until `predicate(sync_body)` is true; returns that body."""
        deadline = time.monotonic() + timeout_s
        while True:
            body = await self.sync(timeout_ms=1000)
            if predicate(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {self.user_id}'s sync")
            await asyncio.sleep(0)


def timeline(body: dict[str, Any], room_id: str, section: str = "join") -> list[dict[str, Any]]:
    return body.get("rooms", {}).get(section, {}).get(room_id, {}).get("timeline", {}).get("events", [])


def messages(body: dict[str, Any], room_id: str) -> list[str]:
    return [e["content"].get("body") for e in timeline(body, room_id) if e["type"] == "m.room.message"]


async def new_user(server, tls_files, localpart: str) -> Client:
    """A user made on a test server (`homeservers()`), logged in over TLS."""
    await server.services.accounts.create_user(localpart, "password-" + localpart)
    return await Client(server.url, str(tls_files.ca_cert)).login(localpart, "password-" + localpart)
