"""Two server processes on one database wake each other through LISTEN/NOTIFY.

Both serve the same server name from the same config and signing key, each on its own port:
a sync waiting on one process returns as soon as a message, a typing notification or a
receipt is committed through the other, and a token logged out on one stops working on both.
Sends into one room through both at once keep the room one linear history.
"""

import asyncio
import contextlib
import json
import time
import uuid

import aiohttp
import asyncpg
import pytest
import yaml

from tests.test_cli import free_port, generate, run_server, stop, wait_for


@pytest.fixture
async def two_processes(tmp_path, db_url):
    async with running_two(tmp_path, db_url) as urls:
        yield urls


@pytest.fixture
async def two_unlimited_processes(tmp_path, db_url):
    """The same, with rate limiting off (many sends from one user)."""
    async with running_two(tmp_path, db_url, {"rate_limiting": {"enabled": False}}) as urls:
        yield urls


@contextlib.asynccontextmanager
async def running_two(tmp_path, db_url, config=None):
    config_path, port_a, _ = generate(tmp_path, "--enable-registration")
    if config:
        config_path.write_text(yaml.safe_dump({**yaml.safe_load(config_path.read_text()), **config}))
    port_b = free_port()
    procs = []
    for port in (port_a, port_b):
        listeners = json.dumps([{"port": port, "bind_addresses": ["127.0.0.1"], "resources": ["client"]}])
        procs.append(run_server(config_path, env={"CHATGO_DATABASE_URL": db_url, "CHATGO_LISTENERS": listeners}))
    try:
        for port, proc in zip((port_a, port_b), procs):
            await asyncio.to_thread(wait_for, f"http://127.0.0.1:{port}/_matrix/client/versions", proc)
        yield f"http://127.0.0.1:{port_a}/_matrix/client/v3", f"http://127.0.0.1:{port_b}/_matrix/client/v3"
    finally:
        for proc in procs:
            await asyncio.to_thread(stop, proc)


async def call(http, method, url, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def register(http, base, name):
    status, body = await call(http, "POST", f"{base}/register",
                              body={"username": name, "password": "pw-" + name, "auth": {"type": "m.login.dummy"}})
    assert status == 200, body
    return body["access_token"]


async def test_sync_on_one_process_wakes_for_changes_made_on_the_other(two_processes):
    a, b = two_processes
    async with aiohttp.ClientSession() as http:
        alice = await register(http, a, "alice")
        bob = await register(http, a, "bob")
        status, room = await call(http, "POST", f"{a}/createRoom", alice, {"preset": "public_chat"})
        room = room["room_id"]
        assert (await call(http, "POST", f"{b}/rooms/{room}/join", bob, {}))[0] == 200  # written by B

        status, body = await call(http, "GET", f"{b}/sync", bob)
        assert room in body["rooms"]["join"]
        token = body["next_batch"]

        # A message sent through A wakes bob's sync waiting on B.
        waiting = asyncio.create_task(call(http, "GET", f"{b}/sync?timeout=10000&since={token}", bob))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        status, sent = await call(http, "PUT", f"{a}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}", alice,
                                  {"msgtype": "m.text", "body": "across processes"})
        assert status == 200, sent
        status, body = await waiting
        assert time.monotonic() - started < 1.5
        assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == [sent["event_id"]]
        token = body["next_batch"]

        # Typing (in memory) set through A reaches a sync on B.
        waiting = asyncio.create_task(call(http, "GET", f"{b}/sync?timeout=10000&since={token}", bob))
        await asyncio.sleep(0.3)
        await call(http, "PUT", f"{a}/rooms/{room}/typing/@alice:cli.test", alice, {"typing": True, "timeout": 20000})
        status, body = await waiting
        typing = [e for e in body["rooms"]["join"][room]["ephemeral"]["events"] if e["type"] == "m.typing"]
        assert typing and typing[0]["content"]["user_ids"] == ["@alice:cli.test"]
        token = body["next_batch"]

        # B sends (its own room snapshot was refreshed by A's announcement) and a sync on A sees it.
        status, body = await call(http, "GET", f"{a}/sync", alice)
        alice_token = body["next_batch"]
        waiting = asyncio.create_task(call(http, "GET", f"{a}/sync?timeout=10000&since={alice_token}", alice))
        await asyncio.sleep(0.3)
        status, reply = await call(http, "PUT", f"{b}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}", bob,
                                   {"msgtype": "m.text", "body": "reply"})
        assert status == 200, reply
        status, body = await waiting
        events = body["rooms"]["join"][room]["timeline"]["events"]
        assert reply["event_id"] in [e["event_id"] for e in events]
        # The reply follows alice's message in one linear history (no fork).
        assert events[-1]["event_id"] == reply["event_id"]

        # An idle sync waits out its timeout.
        status, body = await call(http, "GET", f"{b}/sync", bob)
        started = time.monotonic()
        status, idle = await call(http, "GET", f"{b}/sync?timeout=800&since={body['next_batch']}", bob)
        assert status == 200 and time.monotonic() - started >= 0.7
        assert idle["rooms"] == {}

        # Logging out through A ends the token on B too (B had it cached).
        assert (await call(http, "POST", f"{a}/logout", bob))[0] == 200
        deadline = time.monotonic() + 3
        while True:
            status, body = await call(http, "GET", f"{b}/account/whoami", bob)
            if status == 401 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_a_room_deleted_through_one_process_is_dropped_from_the_others_cache(two_processes, db_url):
    import asyncpg

    a, b = two_processes
    admin_api_a = a.replace("/_matrix/client/v3", "/_synapse/admin")
    admin_api_b = b.replace("/_matrix/client/v3", "/_synapse/admin")
    async with aiohttp.ClientSession() as http:
        alice = await register(http, a, "alice")
        admin = await register(http, a, "root")
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("UPDATE users SET is_admin = TRUE WHERE user_id = '@root:cli.test'")
        finally:
            await conn.close()
        status, room = await call(http, "POST", f"{a}/createRoom", alice, {"preset": "public_chat"})
        room = room["room_id"]
        assert (await call(http, "POST", f"{a}/rooms/{room}/leave", alice, {}))[0] == 200
        # B reads the room's state from its cached snapshot of the room (loaded after the leave,
        # which made every process drop the one before).
        await asyncio.sleep(0.5)
        status, state = await call(http, "GET", f"{admin_api_b}/v1/rooms/{room}/state", admin)
        assert status == 200 and state["state"]

        # Nobody is left to leave: the purge is the only change, announced by A on its own.
        status, result = await call(http, "DELETE", f"{admin_api_a}/v1/rooms/{room}", admin, {})
        assert status == 200 and result["kicked_users"] == [], result
        # B hears of the purge and drops the room: it answers from the database again.
        deadline = time.monotonic() + 5
        while (status := (await call(http, "GET", f"{admin_api_b}/v1/rooms/{room}/state", admin))[0]) == 200:
            assert time.monotonic() < deadline, "process B still serves the deleted room's state"
            await asyncio.sleep(0.1)
        assert status == 404


async def test_admin_restrictions_and_erasure_reach_the_other_process(two_processes, db_url):
    """A lock set through A refuses the user's requests on B, and an erasure done through A
    redacts on B, though B had the user's flags and erasure cached."""
    import asyncpg

    a, b = two_processes
    admin_base = a.removesuffix("/_matrix/client/v3")
    async with aiohttp.ClientSession() as http:
        root = await register(http, a, "root")
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("UPDATE users SET is_admin = TRUE WHERE user_id = '@root:cli.test'")
        finally:
            await conn.close()
        # Registrations are limited per address and process (rc_registration): some on each.
        alice, bob, carol = await register(http, a, "alice"), await register(http, b, "bob"), await register(http, b, "carol")
        status, room = await call(http, "POST", f"{a}/createRoom", alice, {"preset": "public_chat"})
        room = room["room_id"]
        status, sent = await call(http, "PUT", f"{a}/rooms/{room}/send/m.room.message/t1", alice,
                                  {"msgtype": "m.text", "body": "soon erased"})
        assert (await call(http, "POST", f"{b}/rooms/{room}/join", carol, {}))[0] == 200
        status, event = await call(http, "GET", f"{b}/rooms/{room}/event/{sent['event_id']}", carol)
        assert event["content"]["body"] == "soon erased"  # B has cached alice as not erased
        assert (await call(http, "GET", f"{b}/account/whoami", bob))[0] == 200  # ... and bob's flags

        status, body = await call(http, "PUT", f"{admin_base}/_matrix/client/v1/admin/lock/@bob:cli.test", root,
                                  {"locked": True})
        assert status == 200, body
        status, body = await call(http, "POST", f"{admin_base}/_synapse/admin/v1/deactivate/@alice:cli.test", root,
                                  {"erase": True})
        assert status == 200, body
        deadline = time.monotonic() + 5
        while True:
            locked = await call(http, "GET", f"{b}/account/whoami", bob)
            status, event = await call(http, "GET", f"{b}/rooms/{room}/event/{sent['event_id']}", carol)
            if (locked[0] == 401 and event["content"] == {}) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert locked == (401, {"errcode": "M_USER_LOCKED", "error": "This account has been locked", "soft_logout": True})
        assert event["content"] == {}


async def test_concurrent_sends_through_two_processes_do_not_fork_the_room(two_unlimited_processes, db_url):
    a, b = two_unlimited_processes
    async with aiohttp.ClientSession() as http:
        alice = await register(http, a, "alice")
        bob = await register(http, a, "bob")
        status, room = await call(http, "POST", f"{a}/createRoom", alice, {"preset": "public_chat"})
        room = room["room_id"]
        assert (await call(http, "POST", f"{b}/rooms/{room}/join", bob, {}))[0] == 200

        async def sender(base: str, token: str, name: str) -> list[str]:
            ids = []
            for n in range(10):
                status, sent = await call(http, "PUT", f"{base}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                                          token, {"msgtype": "m.text", "body": f"{name}-{n}"})
                assert status == 200, sent
                ids.append(sent["event_id"])
            return ids

        # Five senders through each process at once, both processes writing the room together.
        sent = await asyncio.gather(*(sender(a, alice, f"a{k}") for k in range(5)),
                                    *(sender(b, bob, f"b{k}") for k in range(5)))
        expected = sorted(f"{p}{k}-{n}" for p in "ab" for k in range(5) for n in range(10))
        for base, token in ((a, alice), (b, bob)):
            status, page = await call(http, "GET", f"{base}/rooms/{room}/messages?dir=f&limit=1000", token)
            assert status == 200, page
            texts = [e["content"]["body"] for e in page["chunk"] if e["type"] == "m.room.message"]
            assert sorted(texts) == expected  # every message once, through either process

    conn = await asyncpg.connect(db_url)
    try:
        # One forward extremity: the room never forked.
        extremities = await conn.fetch("SELECT event_id FROM forward_extremities WHERE room_id = $1", room)
        assert len(extremities) == 1
        rows = await conn.fetch(
            """SELECT e.event_id, e.depth, array_remove(array_agg(p.prev_event_id), NULL) AS prevs
               FROM events e LEFT JOIN event_edges p USING (event_id)
               WHERE e.room_id = $1 AND NOT e.outlier GROUP BY e.event_id, e.depth, e.stream_ordering
               ORDER BY e.stream_ordering""", room)
    finally:
        await conn.close()
    # A linear DAG: each event's only prev_event is the event before it.
    for before, row in zip(rows, rows[1:]):
        assert list(row["prevs"]) == [before["event_id"]], row["event_id"]
        assert row["depth"] == before["depth"] + 1
    assert rows[-1]["event_id"] == extremities[0]["event_id"]
    chain = [r["event_id"] for r in rows]
    for ids in sent:  # each sender's messages in the order it sent them
        assert sorted(ids, key=chain.index) == ids


async def test_hierarchy_pages_and_registration_nonces_work_across_processes(tmp_path, db_url):
    """Short-lived sessions live in the database: /hierarchy's next page and the shared-secret
    registration after its nonce may each reach the other process."""
    import hashlib
    import hmac

    secret = "multi-process-secret"
    config = {"rate_limiting": {"enabled": False},
              "registration": {"enabled": True, "shared_secret": secret}}
    async with running_two(tmp_path, db_url, config) as (a, b), aiohttp.ClientSession() as http:
        token = await register(http, a, "spacer")
        status, space = await call(http, "POST", f"{a}/createRoom", token,
                                   {"preset": "public_chat", "creation_content": {"type": "m.space"}})
        assert status == 200, space
        children = []
        for _ in range(3):
            status, room = await call(http, "POST", f"{a}/createRoom", token, {"preset": "public_chat"})
            children.append(room["room_id"])
            status, _ = await call(http, "PUT", f"{a}/rooms/{space['room_id']}/state/m.space.child/{room['room_id']}",
                                   token, {"via": ["localhost"]})
            assert status == 200
        v1 = lambda base: base.replace("/v3", "/v1")  # noqa: E731
        status, first = await call(http, "GET", f"{v1(a)}/rooms/{space['room_id']}/hierarchy?limit=2", token)
        assert status == 200 and "next_batch" in first, first
        status, second = await call(http, "GET", f"{v1(b)}/rooms/{space['room_id']}/hierarchy?limit=2"
                                    f"&from={first['next_batch']}", token)
        assert status == 200, second
        seen = [r["room_id"] for r in first["rooms"] + second["rooms"]]
        assert sorted(seen) == sorted([space["room_id"], *children]) and "next_batch" not in second
        # A page token is used once.
        status, again = await call(http, "GET", f"{v1(a)}/rooms/{space['room_id']}/hierarchy?limit=2"
                                   f"&from={first['next_batch']}", token)
        assert status == 400 and again["errcode"] == "M_INVALID_PARAM"

        admin_a = a.replace("/_matrix/client/v3", "/_synapse/admin/v1")
        admin_b = b.replace("/_matrix/client/v3", "/_synapse/admin/v1")
        status, body = await call(http, "GET", f"{admin_a}/register")
        assert status == 200
        nonce = body["nonce"]
        mac = hmac.new(secret.encode(), b"\x00".join([nonce.encode(), b"scripted", b"pw-scripted", b"notadmin"]),
                       hashlib.sha1).hexdigest()
        request = {"nonce": nonce, "username": "scripted", "password": "pw-scripted", "mac": mac}
        status, body = await call(http, "POST", f"{admin_b}/register", body=request)
        assert status == 200 and body["user_id"].startswith("@scripted:"), body
        status, body = await call(http, "POST", f"{admin_a}/register", body=request)  # the nonce is spent
        assert status == 400 and body["error"] == "unrecognised nonce"


async def test_typing_through_either_process_reaches_the_appservice(tmp_path, db_url):
    """One process feeds an appservice (it holds the lease); typing through the other one
    reaches the appservice too, replicated to the feeding process."""
    from tests.api.appservices.conftest import FakeAppService, write_registration

    bridge = FakeAppService("bridge", "hs-bridge")
    await bridge.start()
    registration = bridge.registration(receive_ephemeral=True)
    registration["namespaces"]["users"] = [{"exclusive": False, "regex": "@.*"}]  # every user concerns it
    path = write_registration(tmp_path / "bridge.yaml", registration)
    config = {"rate_limiting": {"enabled": False}, "app_service_config_files": [str(path)],
              "appservice": {"retry_min_interval_ms": 50, "retry_max_interval_ms": 200}}
    try:
        async with running_two(tmp_path, db_url, config) as (a, b), aiohttp.ClientSession() as http:
            alice, bob = await register(http, a, "alice"), await register(http, b, "bob")
            status, room = await call(http, "POST", f"{a}/createRoom", alice, {"preset": "public_chat"})
            assert status == 200
            room_id = room["room_id"]
            assert (await call(http, "POST", f"{b}/rooms/{room_id}/join", bob, {}))[0] == 200

            def typers() -> list[list[str]]:
                return [e["content"]["user_ids"] for e in bridge.body_values("ephemeral")
                        if e["type"] == "m.typing" and e.get("room_id") == room_id]

            for base, token, user in ((a, alice, "@alice:cli.test"), (b, bob, "@bob:cli.test")):
                status, _ = await call(http, "PUT", f"{base}/rooms/{room_id}/typing/{user}", token,
                                       {"typing": True, "timeout": 30000})
                assert status == 200
                await bridge.wait_for(lambda user=user: any(user in ids for ids in typers()))
                status, _ = await call(http, "PUT", f"{base}/rooms/{room_id}/typing/{user}", token, {"typing": False})
                assert status == 200
    finally:
        await bridge.stop()
