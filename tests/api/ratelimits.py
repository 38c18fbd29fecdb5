"""Helpers for rate-limit tests: a config with every limit generous but the ones under test,
and the check that a request is refused as the spec says (429 M_LIMIT_EXCEEDED with
retry_after_ms, and a Retry-After header in whole seconds rounded up)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from homeserver.config import FederationRateLimits, RateLimit, RateLimitConfig

GENEROUS = {"per_second": 1000, "burst_count": 1000}


def limits(changes: dict[str, Any] | None = None, *, enabled: bool = True) -> dict[str, Any]:
    """`config_overrides` with rate limiting on, every limit at GENEROUS but those in
    `changes` (shaped as the config: {"rc_login": {"address": {...}}})."""
    section: dict[str, Any] = {"enabled": enabled, "per_second": 1000, "burst": 1000}
    defaults = RateLimitConfig()
    for f in dataclasses.fields(RateLimitConfig):
        value = getattr(defaults, f.name)
        if isinstance(value, RateLimit):
            section[f.name] = dict(GENEROUS)
        elif dataclasses.is_dataclass(value) and not isinstance(value, FederationRateLimits):
            section[f.name] = {sub.name: dict(GENEROUS) for sub in dataclasses.fields(value)}
    _merge(section, changes or {})
    return {"rate_limiting": section}


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


async def assert_limited(user: Any, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                         max_retry_ms: int | None = None) -> dict[str, Any]:
    """Send the request (with `user`'s token, if any) and check it is refused for its rate."""
    headers = {"Authorization": f"Bearer {user.token}"} if user.token else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if raw is not None:
        kwargs["data"] = raw
    elif body is not None:
        kwargs["json"] = body
    resp = await user.http.request(method, path, **kwargs)
    data = await resp.json(content_type=None)
    assert resp.status == 429, (resp.status, data)
    assert data["errcode"] == "M_LIMIT_EXCEEDED", data
    retry_ms = data["retry_after_ms"]
    assert isinstance(retry_ms, int) and retry_ms > 0, data
    if max_retry_ms is not None:
        assert retry_ms <= max_retry_ms, data
    assert resp.headers["Retry-After"] == str(math.ceil(retry_ms / 1000)), dict(resp.headers)
    return data
