"""Every route is one hop from its URL: spec path, handler name, module, docstring.

Checked against the spec's OpenAPI files in ../shared/matrix-spec (skipped when absent).
"""

import functools
import re
from pathlib import Path

import pytest
import yaml

from homeserver.api.http import ROOT, routes_table
from homeserver.web_app import modules_for

SPEC = Path(__file__).resolve().parents[2] / "shared" / "matrix-spec" / "data" / "api"
# Routes with no OpenAPI file in the spec (pages, features without one) live in feature modules.
NO_SPEC_FILE = {"homeserver.api.pages", "homeserver.api.health", "homeserver.api.client.sliding_sync",
                "homeserver.api.client.room_send_without_txn", "homeserver.api.client.cas",
                "federation.api.third_party_onbind_post", "homeserver.api.client.email_validation",
                "homeserver.api.client.delayed_events", "homeserver.api.metrics",
                "homeserver.api.client.appservice_room_directory_delete", "homeserver.api.client.dehydrated_device",
                "homeserver.api.admin_page", "homeserver.api.admin_page_moderation"}


def snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name).lower()


@functools.cache  # parsing every spec file takes seconds: once per session, not per route
def spec_operations():
    ops = {}
    for api in ("client-server", "server-server"):
        for path in (SPEC / api).glob("*.yaml"):
            doc = yaml.safe_load(path.read_text())
            for url, methods in (doc.get("paths") or {}).items():
                for method, op in methods.items():
                    if isinstance(op, dict) and "operationId" in op:
                        # Some path keys carry stray spaces ("/rooms/{roomId}/invite ").
                        ops[(api, path.stem, url.strip(), method.upper())] = op["operationId"]
    return ops


ALL_ROUTES = routes_table(modules_for(["client", "federation", "keys", "media", "admin", "metrics"]))


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/matrix-spec is absent")
@pytest.mark.parametrize("info", ALL_ROUTES, ids=lambda i: f"{i.method} {i.path}")
def test_route_matches_the_spec(info):
    if info.module in NO_SPEC_FILE or info.module.startswith("homeserver.api.admin."):
        return
    module_file = info.module.rsplit(".", 1)[1]
    api = "server-server" if info.module.startswith("federation.") else "client-server"
    path = info.variant_of or info.path
    if info.prefixes == ROOT and path.startswith("/_matrix/client"):
        path = path[len("/_matrix/client"):]  # versions.yaml writes /versions
    matches = {k: v for k, v in spec_operations().items() if k[2] == path and k[3] == info.method}
    assert matches, f"{info.method} {info.path} is not a path of the spec"
    # Some paths are defined by two files (POST /rooms/{roomId}/invite: inviting, third_party_membership).
    by_file = {k[1].replace("-", "_"): (k[0], v) for k, v in matches.items()}
    assert module_file in by_file, f"handler should live in one of the modules {sorted(by_file)}"
    spec_api, operation_id = by_file[module_file]
    assert spec_api == api, f"{info.module} serves a {spec_api} endpoint"
    if info.variant_of is None:
        assert info.handler_name == snake(operation_id), f"handler should be named {snake(operation_id)}"


@pytest.mark.parametrize("info", ALL_ROUTES, ids=lambda i: f"{i.method} {i.path}")
def test_docstring_opens_with_the_full_url(info):
    import importlib

    handler = getattr(importlib.import_module(info.module), info.handler_name)
    first_line = (handler.__doc__ or "").strip().splitlines()[0]
    assert first_line.split(" ", 1)[0] == info.method
    assert first_line.split(" ", 1)[1] in info.full_paths(), first_line


def test_snake_case():
    assert snake("getTokenOwner") == "get_token_owner"
    assert snake("requestTokenToRegisterMSISDN") == "request_token_to_register_msisdn"
    assert snake("logout_all") == "logout_all"


def test_docs_openapi_is_up_to_date():
    from importlib.metadata import version

    from homeserver.api.openapi import render_openapi

    committed = (Path(__file__).resolve().parent.parent / "docs" / "api" / "openapi.yaml").read_text()
    current = render_openapi(modules_for(["client", "federation", "keys", "media", "admin", "metrics"]),
                             version("chatgo"))
    assert committed == current, "run `chatgo openapi -o docs/api/openapi.yaml`"
