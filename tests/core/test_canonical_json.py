"""Canonical JSON: our encoder (orjson where it is canonical) gives canonicaljson's bytes for
every value, and the strict form refuses what room versions 6+ refuse."""

import math
import random

import canonicaljson
import pytest
from signedjson.key import generate_signing_key
from signedjson.sign import sign_json

from homeserver.core.canonical_json import (
    MAX_SAFE_INT, MIN_SAFE_INT, NonCanonicalJSON, encode_canonical_json, encode_canonical_json_strict,
)
from homeserver.core.signing import sign_object

VALUES = [
    {},
    [],
    "",
    0,
    None,
    True,
    {"b": 1, "a": [1, 2, {"d": None, "c": False}], "": "empty key"},
    {"body": "".join(chr(i) for i in range(0x0, 0x800)) + "\u2028\u2029\ufeff\U0001f600"},
    {"\u00e9": 1, "e": 2, "\U0001f600": 3, "z": 4, "\u4e2d": 5},  # sorted by code point
    {"n": MAX_SAFE_INT, "m": MIN_SAFE_INT},
    {"big": MAX_SAFE_INT + 1, "small": MIN_SAFE_INT - 1, "huge": 10**30},  # v1-5 rooms allow them
    {"f": 1.5, "g": 1e-05, "h": 1e16, "i": -0.0, "j": 0.1},  # orjson writes 1e-05 otherwise
    1e-05,
    [1e-05, {"x": [2.5]}],
    ("a", "tuple"),
    {1: "a non-string key"},
    {"text": "looks like a float :1.5 and null"},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_same_bytes_as_canonicaljson(value):
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


def test_same_bytes_for_random_keys_and_strings():
    rng = random.Random(15)

    def text():
        ranges = [(0x0, 0x7f), (0x80, 0x7ff), (0x800, 0xd7ff), (0xe000, 0xffff), (0x10000, 0x10ffff)]
        return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(0, 6)))

    value = {text(): [text(), rng.randint(MIN_SAFE_INT, MAX_SAFE_INT), {text(): text()}] for _ in range(500)}
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


def test_nan_and_infinity_are_refused_as_by_canonicaljson():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            encode_canonical_json({"x": [bad]})


def test_strict_form_refuses_floats_and_integers_outside_the_safe_range():
    assert encode_canonical_json_strict({"n": MAX_SAFE_INT, "m": [MIN_SAFE_INT]}) == \
        b'{"m":[-9007199254740991],"n":9007199254740991}'
    for bad in ({"x": 1.0}, {"x": [MAX_SAFE_INT + 1]}, {"x": {"y": MIN_SAFE_INT - 1}}):
        with pytest.raises(NonCanonicalJSON):
            encode_canonical_json_strict(bad)


def test_sign_object_matches_signedjson_and_keeps_other_signatures_and_unsigned():
    key = generate_signing_key("k1")
    obj = {"b": [1, "x"], "a": {"c": None}, "signatures": {"other.example": {"ed25519:z": "sig"}},
           "unsigned": {"age": 5}}
    expected = sign_json({**obj, "signatures": {"other.example": {"ed25519:z": "sig"}}}, "here.example", key)
    signed = sign_object(obj, "here.example", key)
    assert signed == expected
    assert set(signed["signatures"]) == {"other.example", "here.example"}
    assert signed["unsigned"] == {"age": 5}
    assert obj["signatures"] == {"other.example": {"ed25519:z": "sig"}}  # the input is left alone
