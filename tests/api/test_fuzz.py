"""Fuzzing with schemathesis over the spec's own OpenAPI files: no request may get a 5xx,
and every 4xx must be a Matrix error ({"errcode", "error"}).

Runs against a real server process on a fresh database. Operations that would end the
fuzzing session itself (logout, deactivation, password change, device deletion) are left
out; they have targeted tests. Skipped when ../shared/matrix-spec is absent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

SPEC = Path(__file__).resolve().parents[3] / "shared" / "matrix-spec" / "data" / "api" / "client-server"
EXAMPLES = int(os.environ.get("CHATGO_FUZZ_EXAMPLES", "15"))
# Operations whose success would end the fuzzing session's own token or account.
SKIP = {"logout", "logout_all", "deactivateAccount", "changePassword", "deleteDevice", "deleteDevices"}

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="../shared/matrix-spec is absent")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, pg_server_url):
    import asyncio

    import asyncpg

    from tests.conftest import database_url

    async def create_db():
        conn = await asyncpg.connect(pg_server_url, database="postgres")
        await conn.execute('DROP DATABASE IF EXISTS "chatgo_fuzz"')
        await conn.execute('CREATE DATABASE "chatgo_fuzz"')
        await conn.close()

    asyncio.run(create_db())
    data = tmp_path_factory.mktemp("fuzz")
    port = _free_port()
    subprocess.run([sys.executable, "-m", "homeserver", "generate-config", "--server-name", "fuzz.test",
                    "--data-dir", str(data), "--enable-registration"], check=True, capture_output=True)
    config = data / "homeserver.yaml"
    text = config.read_text().replace("enabled: true\n", "enabled: true\n", 1)
    # Cheap password hashing and no rate limiting: the fuzzer sends many requests.
    text = text.replace("argon2_time_cost: 2", "argon2_time_cost: 1").replace("argon2_memory_cost_kib: 19456", "argon2_memory_cost_kib: 8")
    raw = yaml.safe_load(text)
    raw["rate_limiting"]["enabled"] = False
    # No federation: a fuzzed remote user or alias must not make the server look up real domains.
    raw["federation"]["domain_allowlist"] = []
    raw.setdefault("identity", {})["server_allowlist"] = []  # nor fuzzed identity servers
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "CHATGO_DATABASE_URL": database_url(pg_server_url, "chatgo_fuzz"),
           "CHATGO_LISTENERS": json.dumps([{"port": port, "resources": ["client"]}])}
    proc = subprocess.Popen([sys.executable, "-m", "homeserver", "run", "-c", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/_matrix/client/versions", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    user = _post(f"{base}/_matrix/client/v3/register", {"username": "fuzzer", "password": "fuzz-pass",
                                                        "auth": {"type": "m.login.dummy"}})
    room = _post(f"{base}/_matrix/client/v3/createRoom", {"preset": "public_chat"}, user["access_token"])
    yield base, user["access_token"], room["room_id"]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    # The server logs every unexpected exception; there must be none.
    assert "Traceback" not in out, out[-5000:]


def _served_operations():
    from homeserver.api.http import routes_table
    from homeserver.app import modules_for

    return {info.handler_name for info in routes_table(modules_for(["client"]))}


def _spec_files():
    return sorted(p for p in SPEC.glob("*.yaml")) if SPEC.exists() else []


@pytest.mark.parametrize("spec_file", _spec_files(), ids=lambda p: p.stem)
def test_fuzz_spec_file(live_server, spec_file):
    import re

    import schemathesis
    from hypothesis import HealthCheck, given, settings

    base, token, room_id = live_server
    served = _served_operations()
    schema = schemathesis.openapi.from_path(str(spec_file))
    base_path = schema.raw_schema.get("servers", [{}])[0].get("variables", {}).get("basePath", {}).get("default", "")
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operation_id = operation.definition.raw.get("operationId", "")
        handler = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation_id)
        handler = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", handler).lower()
        if handler in served and operation_id not in SKIP:
            operations.append(operation)
    if not operations:
        pytest.skip("no operation of this file is served yet")
    failures: list[str] = []
    for operation in operations:
        long_poll = any(p.get("in") == "query" and p.get("name") == "timeout"
                        for p in operation.definition.raw.get("parameters", []))

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            # Aim at a real room now and then, so handlers get past "unknown room".
            if case.path_parameters and "roomId" in case.path_parameters and hash(str(case.body)) % 2:
                case.path_parameters["roomId"] = room_id
            if long_poll:
                # A long-poll is not a fault; neither a generated timeout nor the default one
                # (30 s for /events) may hold the request.
                case.query = {**(case.query or {}), "timeout": 0}
            response = case.call(base_url=base + base_path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:300]}")
            elif response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    failures.append(f"{label}: not JSON: {response.text[:200]}")
                    return
                if not (isinstance(body, dict) and "errcode" in body) and response.status_code != 401:
                    failures.append(f"{label}: not a Matrix error: {response.text[:200]}")

        run()
    assert not failures, "\n".join(failures[:20])
