"""A bridge built on matrix-bot-sdk (npm; its Appservice class, what many JS bridges and bots
run on) against ChatGO, in its own Node process: tests/interop/js/bridge_bot_sdk.mjs relays
between a portal room and the test's fake network, answers third-party lookups and publishes
its portal in its network's room directory. Registration file written by the test and loaded
at start; everything over real HTTP.

matrix-bot-sdk's encryption module needs a native library that npm does not install
(js/optional_crypto.cjs says why and stands in for it: this bridge does no encryption).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from typing import Any

import pytest

from tests.interop.bridges import (  # noqa: F401 (network: a fixture)
    PREFIX, SERVER, free_port, network, registration, relay_both_ways, server_config,
)
from tests.interop.test_js_sdk import JS_DIR, _tail, base_url, node  # noqa: F401  (fixtures)

START_TIMEOUT_S = 30


@pytest.fixture
def reg() -> dict[str, Any]:
    return registration("botsdk-fakenet", free_port())


@pytest.fixture
def config_overrides(tmp_path, reg) -> dict:
    return server_config(tmp_path / "botsdk-fakenet.yaml", reg)


@pytest.fixture
async def bridge(node, base_url, services, network, reg, tmp_path):  # noqa: F811
    """The bridge's Node process, listening at its registration's URL; its URL."""
    services.appservice_sender.start()  # as `chatgo run` does
    inputs = {"homeserverUrl": base_url, "homeserverName": SERVER, "registration": reg,
              "networkUrl": network.url, "port": int(reg["url"].rsplit(":", 1)[1])}
    input_path = tmp_path / "bridge.input.json"
    input_path.write_text(json.dumps(inputs))
    proc = await asyncio.create_subprocess_exec(
        node, "--require", str(JS_DIR / "optional_crypto.cjs"), str(JS_DIR / "bridge_bot_sdk.mjs"), str(input_path),
        cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NODE_NO_WARNINGS": "1"})
    output = bytearray()

    async def read_until_ready() -> None:
        while not output.endswith(b"READY\n"):
            line = await proc.stdout.readline()
            if not line:
                raise EOFError
            output.extend(line)
    try:
        await asyncio.wait_for(read_until_ready(), START_TIMEOUT_S)
    except (EOFError, TimeoutError):
        proc.kill()
        await proc.wait()
        pytest.fail(f"the matrix-bot-sdk bridge did not start:\n{_tail(bytes(output))}")
    # Keep reading its output, so that it never blocks on a full pipe; printed (shown with a
    # failing test's report) when it stops.
    draining = asyncio.create_task(_drain(proc, output))
    yield reg["url"]
    proc.terminate()
    await proc.wait()
    await draining
    print(_tail(bytes(output)))


async def _drain(proc, output: bytearray) -> None:
    while line := await proc.stdout.readline():
        output.extend(line)


async def test_a_matrix_bot_sdk_bridge_relays_both_ways(client, alice, network, bridge):
    await relay_both_ways(client, alice, network, bridge)


async def test_its_third_party_lookups_and_network_directory(client, alice, network, bridge):
    result = await relay_both_ways(client, alice, network, bridge)  # the portal exists and is published

    status, protocols = await alice.get("/_matrix/client/v3/thirdparty/protocols")
    assert status == 200, protocols
    fakenet = protocols[PREFIX]
    assert fakenet["location_fields"] == ["channel"] and fakenet["icon"] == "mxc://fakenet.example/icon"
    instance = fakenet["instances"][0]
    assert (instance["network_id"], instance["instance_id"]) == ("fakenet-main", "botsdk-fakenet|fakenet-main")

    alias = f"#{PREFIX}_general:{SERVER}"
    status, locations = await alice.get(f"/_matrix/client/v3/thirdparty/location/{PREFIX}?channel=general")
    assert (status, locations) == (200, [{"alias": alias, "protocol": PREFIX, "fields": {"channel": "general"}}])
    status, users = await alice.get(f"/_matrix/client/v3/thirdparty/user/{PREFIX}?username=carol")
    assert (status, users) == (200, [{"userid": result["ghost"], "protocol": PREFIX, "fields": {"username": "carol"}}])
    status, body = await alice.get(f"/_matrix/client/v3/thirdparty/location/{PREFIX}")  # bot-sdk: 404, no mapping
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

    # The portal is in the bridge's network directory, not in the server's own.
    status, listed = await alice.post("/_matrix/client/v3/publicRooms", {"third_party_instance_id": instance["instance_id"]})
    assert status == 200 and [r["room_id"] for r in listed["chunk"]] == [result["room_id"]]
    assert listed["chunk"][0]["canonical_alias"] == alias
    status, main = await alice.post("/_matrix/client/v3/publicRooms", {})
    assert status == 200 and result["room_id"] not in [r["room_id"] for r in main["chunk"]]
    status, resolved = await alice.get(f"/_matrix/client/v3/directory/room/{urllib.parse.quote(alias)}")
    assert (status, resolved["room_id"]) == (200, result["room_id"])
