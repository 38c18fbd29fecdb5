"""What the schemathesis fuzz tests share: a real server process on a fresh database, and the
check that every answer is either a success or a Matrix error (never a 5xx)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = int(os.environ.get("CHATGO_FUZZ_EXAMPLES", "15"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_json(url: str, body: dict, token: str | None = None, method: str = "POST") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def live_server(data: Path, pg_server_url: str, database: str,
                edit_config: Callable[[dict], None] = lambda raw: None) -> Iterator[str]:
    """Run `chatgo run` on a fresh database `database` and yield its base URL; on exit, stop it
    and fail if it logged any unexpected exception."""
    import asyncpg

    from tests.conftest import database_url

    async def create_db():
        conn = await asyncpg.connect(pg_server_url, database="postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await conn.execute(f'CREATE DATABASE "{database}"')
        await conn.close()

    asyncio.run(create_db())
    port = _free_port()
    subprocess.run([sys.executable, "-m", "homeserver", "generate-config", "--server-name", "fuzz.test",
                    "--data-dir", str(data), "--enable-registration"], check=True, capture_output=True)
    config = data / "homeserver.yaml"
    raw = yaml.safe_load(config.read_text())
    # No rate limiting, cheap password hashing: the fuzzer sends many requests.
    raw["rate_limiting"]["enabled"] = False
    raw["auth"]["argon2_time_cost"] = 1
    raw["auth"]["argon2_memory_cost_kib"] = 8
    # No federation: a fuzzed remote user or alias must not make the server look up real domains.
    raw["federation"]["domain_allowlist"] = []
    raw.setdefault("identity", {})["server_allowlist"] = []  # nor fuzzed identity servers
    edit_config(raw)
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "CHATGO_DATABASE_URL": database_url(pg_server_url, database),
           "CHATGO_LISTENERS": json.dumps([{"port": port, "resources": ["client"]}])}
    # The log goes to a file, not a pipe: the access log writes a line per request, and a pipe
    # nobody reads until the end fills up and stalls the server.
    log_path = data / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "homeserver", "run", "-c", str(config)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/_matrix/client/versions", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    log.close()
    out = log_path.read_text()
    # The server logs every unexpected exception; there must be none.
    assert "Traceback" not in out, out[-5000:]


def fault_of(case: Any, response: Any) -> str | None:
    """Why this answer is a fault (a 5xx, or a 4xx that is not a Matrix error), or None."""
    label = f"{case.method} {case.formatted_path} -> {response.status_code}"
    if response.status_code >= 500:
        return f"{label}: {response.text[:300]}"
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            return f"{label}: not JSON: {response.text[:200]}"
        if not (isinstance(body, dict) and "errcode" in body) and response.status_code != 401:
            return f"{label}: not a Matrix error: {response.text[:200]}"
    return None
