"""Fuzzing with schemathesis over the spec's own OpenAPI files: no request may get a 5xx,
and every 4xx must be a Matrix error ({"errcode", "error"}).

Runs against a real server process on a fresh database. Operations that would end the
fuzzing session itself (logout, deactivation, password change, device deletion) are left
out; they have targeted tests. Skipped when ../shared/matrix-spec is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.fuzzing import EXAMPLES, fault_of, live_server, post_json

SPEC = Path(__file__).resolve().parents[3] / "shared" / "matrix-spec" / "data" / "api" / "client-server"
# Operations whose success would end the fuzzing session's own token or account.
SKIP = {"logout", "logout_all", "deactivateAccount", "changePassword", "deleteDevice", "deleteDevices"}

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="../shared/matrix-spec is absent")


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, pg_server_url):
    """The live server, a registered user's token, and a public room of theirs."""
    for base in live_server(tmp_path_factory.mktemp("fuzz"), pg_server_url, "chatgo_fuzz"):
        user = post_json(f"{base}/_matrix/client/v3/register", {"username": "fuzzer", "password": "fuzz-pass",
                                                               "auth": {"type": "m.login.dummy"}})
        room = post_json(f"{base}/_matrix/client/v3/createRoom", {"preset": "public_chat"}, user["access_token"])
        yield base, user["access_token"], room["room_id"]


def _served_operations():
    from homeserver.api.http import routes_table
    from homeserver.app import modules_for

    return {info.handler_name for info in routes_table(modules_for(["client"]))}


def _spec_files():
    return sorted(p for p in SPEC.glob("*.yaml")) if SPEC.exists() else []


@pytest.mark.parametrize("spec_file", _spec_files(), ids=lambda p: p.stem)
def test_fuzz_spec_file(fuzz_target, spec_file):
    import re

    import schemathesis
    from hypothesis import HealthCheck, given, settings

    base, token, room_id = fuzz_target
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
            fault = fault_of(case, response)
            if fault:
                failures.append(fault)

        run()
    assert not failures, "\n".join(failures[:20])
