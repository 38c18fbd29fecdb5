"""Canonical JSON (https://spec.matrix.org/v1.19/appendices/#canonical-json).

From room version 6, events must not contain floats or integers outside the IEEE-754 safe
range (https://spec.matrix.org/v1.19/rooms/v6/#canonical-json).

Encoded by orjson (sorted keys, no whitespace, UTF-8, the same string escapes) when the value
holds only objects, arrays, strings, booleans, null and integers in the safe range (checked
by a walk of types, then by orjson's strict-integer option); otherwise by canonicaljson (the
stdlib encoder, several times slower). Floats always go to canonicaljson: orjson writes some
of them differently (1e-05 as 0.00001) and NaN as null. Events are hashed and signed several
times each on the hot send path: this was most of their cost.
"""

from __future__ import annotations

from typing import Any

import canonicaljson
import orjson

MIN_SAFE_INT = -(2**53) + 1
MAX_SAFE_INT = 2**53 - 1

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER  # an integer past 2**53 - 1 raises
_CONTAINERS = (dict, list, tuple)


class NonCanonicalJSON(ValueError):
    """A value canonical JSON (strict form) cannot hold."""


def _plain(value: Any) -> bool:
    """Whether `value` is made of dicts, lists, tuples, strings, integers, booleans and None
    alone (exact types: no floats, no subclasses or other types orjson might write its way).
    Scalars are checked in the loop, without a call each: this runs on every event hashed."""
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind is str or kind is int or kind is bool or value is None
    for item in items:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind in _CONTAINERS and _plain(item):
            continue
        return False
    return True


def _fast(value: Any) -> bytes | None:
    """orjson's encoding when it is certainly the canonical one and strict (no floats, every
    integer in the safe range); None otherwise (then ask canonicaljson)."""
    if not _plain(value):
        return None
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # an integer out of range, a non-string key, a lone surrogate
        return None


def encode_canonical_json(value: Any) -> bytes:
    out = _fast(value)
    return out if out is not None else canonicaljson.encode_canonical_json(value)


def encode_canonical_json_strict(value: Any) -> bytes:
    """The canonical encoding of a value that must also pass `check_strict` (raises
    NonCanonicalJSON otherwise): one pass when orjson's encoding already shows it is strict."""
    out = _fast(value)
    if out is not None:
        return out
    check_strict(value)
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
