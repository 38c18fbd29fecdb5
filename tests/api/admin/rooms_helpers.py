"""What the admin rooms tests share: creating rooms and sending into them as a client does."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

V3 = "/_matrix/client/v3"
ADMIN_V1 = "/_synapse/admin/v1"
ADMIN_V2 = "/_synapse/admin/v2"


def q(identifier: str) -> str:
    """A room ID, alias or event ID as a path segment."""
    return quote(identifier, safe="")


async def create_room(client, **body) -> str:
    status, resp = await client.post(f"{V3}/createRoom", body)
    assert status == 200, resp
    return resp["room_id"]


async def send_text(client, room_id: str, text: str) -> str:
    status, resp = await client.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
                                    {"msgtype": "m.text", "body": text})
    assert status == 200, resp
    return resp["event_id"]


async def join(client, room_id: str) -> None:
    status, resp = await client.post(f"{V3}/join/{q(room_id)}", {})
    assert status == 200, resp


async def sync(client, since: str | None = None) -> dict:
    status, body = await client.get(f"{V3}/sync" + (f"?since={since}" if since else ""))
    assert status == 200, body
    return body


async def wait_for(admin, path: str, done=lambda body: body.get("status") in ("complete", "failed")) -> dict:
    """Poll a status endpoint until `done` (a background task ran to its end)."""
    for _ in range(200):
        status, body = await admin.get(path)
        assert status == 200, body
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never finished: {body}")
