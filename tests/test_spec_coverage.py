"""Spec coverage: every operation of the spec's OpenAPI files (client-server and server-server,
in ../shared/matrix-spec; skipped when absent) is served by a route, or is in NOT_SERVED with
the reason it is not. Routes are matched to spec paths as tests/test_conventions.py does (a
route with `variant_of` counts for its spec path)."""

import pytest

from homeserver.api.http import ROOT
from tests.test_conventions import ALL_ROUTES, SPEC, spec_operations

# (API, METHOD, spec path) of the operations deliberately not served, each with its reason.
NOT_SERVED = {
    # No OAuth 2.0 authorisation server (MSC3861, "next-gen auth") here: clients use /login.
    ("client-server", "GET", "/auth_metadata"),
    # Policy servers (MSC4284): ChatGO is not one, and rooms naming one are not checked with it.
    ("client-server", "GET", "/matrix/policy_server"),
    ("server-server", "POST", "/sign"),
}

# The operations issue 17 ("The rest of the spec") asks for: they must stay served.
ISSUE_17 = {
    ("client-server", "GET", "/rooms/{roomId}/hierarchy"),
    ("client-server", "GET", "/room_summary/{roomIdOrAlias}"),
    ("client-server", "POST", "/rooms/{roomId}/upgrade"),
    ("client-server", "GET", "/voip/turnServer"),
    ("client-server", "POST", "/user/{userId}/openid/request_token"),
    ("client-server", "POST", "/login/get_token"),
    ("client-server", "GET", "/mutual_rooms"),
    ("client-server", "GET", "/matrix/support"),
    ("client-server", "POST", "/rooms/{roomId}/invite"),  # with id_server (third_party_membership)
    ("client-server", "GET", "/login/sso/redirect/{idpId}"),
    ("client-server", "POST", "/register/msisdn/requestToken"),
    ("client-server", "POST", "/account/3pid/msisdn/requestToken"),
    ("client-server", "POST", "/account/password/msisdn/requestToken"),
    ("client-server", "POST", "/account/password/email/requestToken"),
    ("server-server", "GET", "/hierarchy/{roomId}"),
    ("server-server", "GET", "/openid/userinfo"),
    ("server-server", "GET", "/query/{queryType}"),
    ("server-server", "PUT", "/3pid/onbind"),
    ("server-server", "PUT", "/exchange_third_party_invite/{roomId}"),
}

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="../shared/matrix-spec is absent")


def served() -> set[tuple[str, str, str]]:
    found = set()
    for info in ALL_ROUTES:
        api = "server-server" if info.module.startswith("federation.") else "client-server"
        path = info.variant_of or info.path
        if info.prefixes == ROOT and path.startswith("/_matrix/client"):
            path = path[len("/_matrix/client"):]  # versions.yaml writes /versions
        found.add((api, info.method, path))
    return found


def unserved() -> dict[tuple[str, str, str], str]:
    """The spec's operations no route serves, with the file and operationId defining them."""
    routes = served()
    return {(api, method, path): f"{spec_file}.yaml {operation_id}"
            for (api, spec_file, path, method), operation_id in spec_operations().items()
            if (api, method, path) not in routes}


def test_issue_17_operations_are_served():
    missing = sorted(op for op in ISSUE_17 if op in unserved())
    assert not missing, f"issue 17 asks for these: {missing}"
    spec = {(api, method, path) for api, _, path, method in spec_operations()}
    assert ISSUE_17 <= spec, f"not operations of the spec: {sorted(ISSUE_17 - spec)}"


def test_every_other_spec_operation_is_served():
    missing = {op: where for op, where in unserved().items() if op not in NOT_SERVED}
    assert not missing, "not served and not in NOT_SERVED: " + "; ".join(
        f"{method} {path} ({api}, {where})" for (api, method, path), where in sorted(missing.items()))


def test_not_served_is_exact():
    """An operation that gets served (or leaves the spec) leaves NOT_SERVED too."""
    stale = sorted(NOT_SERVED - set(unserved()))
    assert not stale, f"served now (or not in the spec): remove from NOT_SERVED: {stale}"
