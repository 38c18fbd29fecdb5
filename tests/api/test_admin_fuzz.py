"""Fuzzing the admin API with schemathesis over the hand-written OpenAPI files in
docs/api/admin/ (the spec has none for it): no request may get a 5xx, and every 4xx must be a
Matrix error. Runs as a server admin against a real server process on a fresh database, with
path parameters aimed now and then at a real user, room and event so handlers get past
"not found". An operation marked `x-fuzz-skip: true` is left out (say why beside it).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from tests.api.fuzzing import EXAMPLES, fault_of, get_json, live_server, post_json

ADMIN_SPECS = Path(__file__).resolve().parents[2] / "docs" / "api" / "admin"
SECRET = "fuzz-shared-secret"


@pytest.fixture(scope="module")
def admin_target(tmp_path_factory, pg_server_url):
    """The live server, an admin's token, and real IDs to aim at: a user, their room and event."""
    def with_secret(raw: dict) -> None:
        raw["registration"]["shared_secret"] = SECRET
        raw["server_notices"] = {"system_mxid_localpart": "notices"}  # so that notices are really sent

    for base in live_server(tmp_path_factory.mktemp("admin-fuzz"), pg_server_url, "chatgo_admin_fuzz", with_secret):
        nonce = get_json(f"{base}/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(SECRET.encode(), b"\x00".join([nonce.encode(), b"root", b"root-pass", b"admin"]),
                       hashlib.sha1).hexdigest()
        admin = post_json(f"{base}/_synapse/admin/v1/register",
                          {"nonce": nonce, "username": "root", "password": "root-pass", "admin": True, "mac": mac})
        user = post_json(f"{base}/_matrix/client/v3/register", {"username": "victim", "password": "victim-pass",
                                                               "auth": {"type": "m.login.dummy"}})
        room = post_json(f"{base}/_matrix/client/v3/createRoom", {"preset": "public_chat"}, user["access_token"])
        event = post_json(f"{base}/_matrix/client/v3/rooms/{room['room_id']}/send/m.room.message/t1",
                          {"msgtype": "m.text", "body": "hello"}, user["access_token"], method="PUT")
        real = {"userId": user["user_id"], "user_id": user["user_id"], "roomId": room["room_id"],
                "room_id": room["room_id"], "eventId": event["event_id"], "event_id": event["event_id"]}
        yield base, admin["access_token"], real


def _admin_specs() -> list[Path]:
    return sorted(ADMIN_SPECS.glob("*.yaml"))


def test_every_admin_route_is_described():
    """Each served admin path appears in one of the hand-written files, so the fuzz reaches it."""
    import yaml

    from homeserver.api import admin as admin_api
    from homeserver.api.http import routes_table

    described = {(method.upper(), path) for spec in _admin_specs()
                 for path, item in yaml.safe_load(spec.read_text())["paths"].items() for method in item
                 if method in ("get", "put", "post", "delete", "patch")}
    served = {(info.method, full) for info in routes_table(admin_api.MODULES) for full in info.full_paths()}
    # Shared-secret registration ends in a new account per success: tested in tests/api/admin/test_register.py.
    served -= {("GET", "/_synapse/admin/v1/register"), ("POST", "/_synapse/admin/v1/register")}
    missing = {(m, p) for m, p in served if (m, _openapi_path(p)) not in described}
    assert not missing, f"admin routes missing from docs/api/admin/*.yaml: {sorted(missing)}"


def _openapi_path(router_path: str) -> str:
    """aiohttp's `{name:regex}` placeholders as OpenAPI's `{name}`."""
    import re

    return re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", router_path)


@pytest.mark.parametrize("spec_file", _admin_specs(), ids=lambda p: p.stem)
def test_fuzz_admin_file(admin_target, spec_file):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    base, token, real = admin_target
    schema = schemathesis.openapi.from_path(str(spec_file))
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if not op.definition.raw.get("x-fuzz-skip")]
    failures: list[str] = []
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            if case.path_parameters and hash(str(case.body)) % 2:
                for name in case.path_parameters:
                    if name in real:
                        case.path_parameters[name] = real[name]
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            fault = fault_of(case, response)
            if fault:
                failures.append(fault)

        run()
    assert not failures, "\n".join(failures[:20])
