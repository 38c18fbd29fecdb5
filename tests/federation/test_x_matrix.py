"""The X-Matrix Authorization header: signing, and parsing what the spec allows (RFC 9110 auth-params)."""

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json

from homeserver.core.x_matrix import (
    InvalidAuthorization, XMatrixAuth, parse_authorization, request_json, sign_request, signed_request_json,
)

KEY = generate_signing_key("k1")


def test_sign_then_parse_then_verify():
    header = sign_request("put", "/_matrix/federation/v1/send/1?x=%20", "a.test", "b.test:8448", KEY, {"pdus": []})
    assert header.startswith('X-Matrix origin="a.test",destination="b.test:8448",key="ed25519:k1",sig="')
    auth = parse_authorization(header)
    assert (auth.origin, auth.destination, auth.key_id) == ("a.test", "b.test:8448", "ed25519:k1")
    signed = signed_request_json(auth, "PUT", "/_matrix/federation/v1/send/1?x=%20", "b.test:8448", {"pdus": []})
    verify_signed_json(signed, "a.test", get_verify_key(KEY))


def test_request_json_leaves_content_out_when_there_is_no_body():
    assert request_json("GET", "/x", "a", "b") == {"method": "GET", "uri": "/x", "origin": "a", "destination": "b"}
    assert request_json("POST", "/x", "a", "b", {})["content"] == {}


@pytest.mark.parametrize("header", [
    'X-Matrix origin="a.test",destination="b.test",key="ed25519:k1",sig="c2ln"',
    'x-matrix origin=a.test,destination=b.test,key=ed25519:k1,sig=c2ln',          # bare values, colons
    'X-MATRIX   ORIGIN="a.test" ,\tDestination="b.test" , Key="ed25519:k1",SIG="c2ln"',
    'X-Matrix sig="c2ln",key="ed25519:k1",destination="b.test",origin="a.test",future="x y"',
    'X-Matrix origin="a\\.test",destination="b.test",key="ed25519:k1",sig="c2ln"',  # escapes
    'X-Matrix origin="a.test",destination="b.test",key="ed25519:k1",sig="c2ln",',  # trailing comma
])
def test_accepted_forms(header):
    assert parse_authorization(header) == XMatrixAuth("a.test", "b.test", "ed25519:k1", "c2ln")


def test_destination_is_optional_for_older_servers():
    assert parse_authorization('X-Matrix origin="[::1]:8448",key="ed25519:k1",sig="c2ln"').destination is None


@pytest.mark.parametrize("header", [
    "Bearer abc",
    "X-Matrix",
    'X-Matrixorigin="a"',
    'X-Matrix origin="a.test",key="ed25519:k1"',                      # no sig
    'X-Matrix key="ed25519:k1",sig="c2ln"',                           # no origin
    'X-Matrix origin="a.test",key="k1",sig="c2ln"',                   # key without algorithm
    'X-Matrix origin="a.test",key="curve25519:k1",sig="c2ln"',
    'X-Matrix origin="not a name",key="ed25519:k1",sig="c2ln"',
    'X-Matrix origin="a.test",key="ed25519:k1",sig="unterminated',
    'X-Matrix origin="a.test" key="ed25519:k1",sig="c2ln"',           # missing comma
    'X-Matrix origin=,key="ed25519:k1",sig="c2ln"',
    'X-Matrix =x,origin="a.test",key="ed25519:k1",sig="c2ln"',
])
def test_refused_forms(header):
    with pytest.raises(InvalidAuthorization):
        parse_authorization(header)
