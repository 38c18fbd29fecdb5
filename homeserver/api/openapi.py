"""Our OpenAPI description, built from the route table (`chatgo openapi` writes docs/api/openapi.yaml).

It lists what ChatGO serves: each path under each prefix, with its method, operation ID,
summary (the handler's docstring) and security. The spec's own OpenAPI files describe the
bodies; this one says which of them we implement.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

import yaml

from homeserver.api.http import Auth, routes_table


def _operation_id(handler_name: str) -> str:
    head, *rest = handler_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def build_openapi(modules: Iterable[ModuleType], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for info in routes_table(modules):
        for full_path in info.full_paths():
            operation: dict[str, Any] = {
                "operationId": _operation_id(info.handler_name),
                "x-handler": f"{info.module}.{info.handler_name}",
            }
            doc = [line.strip() for line in (info_doc(info) or "").strip().splitlines()[1:] if line.strip()]
            operation["summary"] = " ".join(doc) if doc else f"{info.method} {full_path}"
            if info.auth is Auth.USER:
                operation["security"] = [{"accessTokenBearer": []}]
            elif info.auth is Auth.OPTIONAL:
                operation["security"] = [{}, {"accessTokenBearer": []}]
            elif info.auth is Auth.SERVER:
                operation["security"] = [{"signedRequest": []}]
            if info.rate_limited:
                operation["x-rate-limited"] = True
            paths.setdefault(full_path, {})[info.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "ChatGO homeserver", "version": version},
        "components": {"securitySchemes": {
            "accessTokenBearer": {"type": "http", "scheme": "bearer"},
            "signedRequest": {"type": "apiKey", "in": "header", "name": "Authorization",
                              "description": "X-Matrix request signature"},
        }},
        "paths": dict(sorted(paths.items())),
    }


def info_doc(info) -> str | None:
    import importlib

    return getattr(importlib.import_module(info.module), info.handler_name).__doc__


def render_openapi(modules: Iterable[ModuleType], version: str) -> str:
    return yaml.safe_dump(build_openapi(modules, version), sort_keys=False, width=100)
