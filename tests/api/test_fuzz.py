"""Fuzzing with schemathesis over the spec's own OpenAPI files: no request may get a 5xx,
and every 4xx must be a Matrix error ({"errcode", "error"}).

Runs against a real server process on a fresh database. Operations that would end the
fuzzing session itself (logout, deactivation, password change, device deletion) are fuzzed
apart, each example with a user registered for it. Skipped when ../shared/matrix-spec is
absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.fuzzing import EXAMPLES, fault_of, live_server, post_json

SPEC = Path(__file__).resolve().parents[3] / "shared" / "matrix-spec" / "data" / "api" / "client-server"
# Operations whose success would end the fuzzing session's own token or account: fuzzed apart,
# each example with a user of its own (test_fuzz_operations_that_end_the_session).
SESSION_ENDING = {"logout", "logout_all", "deactivateAccount", "changePassword", "deleteDevice", "deleteDevices"}

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
    from homeserver.web_app import modules_for

    return {info.handler_name for info in routes_table(modules_for(["client"]))}


def _spec_files():
    return sorted(p for p in SPEC.glob("*.yaml")) if SPEC.exists() else []


@pytest.mark.parametrize("spec_file", _spec_files(), ids=lambda p: p.stem)
def test_fuzz_spec_file(fuzz_target, spec_file):
    base, token, room_id = fuzz_target
    base_path, operations = _operations(spec_file, lambda operation_id: operation_id not in SESSION_ENDING)
    if not operations:
        pytest.skip("no operation of this file is served yet")
    failures: list[str] = []
    for operation in operations:
        _fuzz(operation, base + base_path, lambda: token, room_id, failures)
    assert not failures, "\n".join(failures[:20])


def test_fuzz_operations_that_end_the_session(fuzz_target):
    """Each example of logout, deactivation, password change and device deletion gets a user
    of its own, registered just before: whatever it ends is nobody else's."""
    base, _, room_id = fuzz_target
    users = iter(range(1_000_000))

    def fresh_token() -> str:
        user = post_json(f"{base}/_matrix/client/v3/register", {
            "username": f"fuzz-ending-{next(users)}", "password": "fuzz-pass", "auth": {"type": "m.login.dummy"}})
        return user["access_token"]
    failures: list[str] = []
    fuzzed = set()
    for spec_file in _spec_files():
        base_path, operations = _operations(spec_file, lambda operation_id: operation_id in SESSION_ENDING)
        for operation in operations:
            fuzzed.add(operation.definition.raw["operationId"])
            _fuzz(operation, base + base_path, fresh_token, room_id, failures)
    assert fuzzed == SESSION_ENDING, SESSION_ENDING - fuzzed
    assert not failures, "\n".join(failures[:20])


def _operations(spec_file: Path, wanted) -> tuple[str, list]:
    """The spec file's base path and its operations that this server serves and `wanted`
    (an operationId -> bool) keeps."""
    import re

    import schemathesis

    served = _served_operations()
    schema = schemathesis.openapi.from_path(str(spec_file))
    base_path = schema.raw_schema.get("servers", [{}])[0].get("variables", {}).get("basePath", {}).get("default", "")
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operation_id = operation.definition.raw.get("operationId", "")
        handler = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation_id)
        handler = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", handler).lower()
        if handler in served and wanted(operation_id):
            operations.append(operation)
    return base_path, operations


def _fuzz(operation, base_url: str, token_for, room_id: str, failures: list[str]) -> None:
    """EXAMPLES generated requests of `operation`, each with the token `token_for()` gives;
    what answers them wrongly (fault_of) is added to `failures`."""
    from hypothesis import HealthCheck, given, settings

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
        response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token_for()}"}, timeout=10)
        fault = fault_of(case, response)
        if fault:
            failures.append(fault)

    run()
