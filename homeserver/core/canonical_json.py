"""Canonical JSON (https://spec.matrix.org/v1.19/appendices/#canonical-json), via canonicaljson.

From room version 6, events must not contain floats or integers outside the IEEE-754 safe
range (https://spec.matrix.org/v1.19/rooms/v6/#canonical-json).
"""

from __future__ import annotations

from typing import Any

import canonicaljson

MIN_SAFE_INT = -(2**53) + 1
MAX_SAFE_INT = 2**53 - 1


class NonCanonicalJSON(ValueError):
    """A value canonical JSON (strict form) cannot hold."""


def encode_canonical_json(value: Any) -> bytes:
    return canonicaljson.encode_canonical_json(value)


def check_strict(value: Any, path: str = "") -> None:
    """Refuse floats and out-of-range integers anywhere in `value` (v6+)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not MIN_SAFE_INT <= value <= MAX_SAFE_INT:
            raise NonCanonicalJSON(f"integer out of range at {path or 'top level'}")
        return
    if isinstance(value, float):
        raise NonCanonicalJSON(f"float at {path or 'top level'}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_strict(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strict(item, f"{path}[{i}]")
