"""X-Matrix request authentication: the signed request object and the `Authorization` header.

https://spec.matrix.org/v1.19/server-server-api/#request-authentication: the sender signs
`{"method", "uri", "origin", "destination", "content"}` with the JSON signing algorithm and
sends the signature as `Authorization: X-Matrix origin=...,destination=...,key=...,sig=...`.
The header follows RFC 9110 section 11.4 (auth-params): names are case-insensitive, values are
tokens or quoted strings with backslash escapes, and for older servers a bare value may hold
colons. Pure functions; the receiver's key look-up lives in `federation.request_auth`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from homeserver.core.ids import is_valid_server_name
from homeserver.core.signing import sign_object

SCHEME = "X-Matrix"
# Key IDs: algorithm ":" version, the version of [a-zA-Z0-9_] (spec: "Retrieving server keys").
_KEY_ID = re.compile(r"ed25519:[A-Za-z0-9_]+")
# RFC 9110 5.6.2 tchar, plus ":" that the spec tells recipients to allow in bare values.
_BARE_VALUE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z:/=\[\]]+")
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class InvalidAuthorization(ValueError):
    """The Authorization header is absent, not X-Matrix, or malformed."""


@dataclass(frozen=True, slots=True)
class XMatrixAuth:
    origin: str
    destination: str | None  # optional for servers older than v1.3
    key_id: str
    signature: str


def request_json(method: str, uri: str, origin: str, destination: str,
                 content: Any = None) -> dict[str, Any]:
    """The object that is signed (step 1). `content` is omitted when the request has no body."""
    obj: dict[str, Any] = {"method": method.upper(), "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    return obj


def sign_request(method: str, uri: str, origin: str, destination: str, signing_key: Any,
                 content: Any = None) -> str:
    """The `Authorization` header value for a request (step 2), written the compatible way:
    one space after the scheme, lower-case names, no whitespace around the commas."""
    signed = sign_object(request_json(method, uri, origin, destination, content), origin, signing_key)
    key_id, sig = next(iter(signed["signatures"][origin].items()))
    return f'{SCHEME} origin="{origin}",destination="{destination}",key="{key_id}",sig="{sig}"'


def signed_request_json(auth: XMatrixAuth, method: str, uri: str, destination: str,
                        content: Any = None) -> dict[str, Any]:
    """The object the receiver verifies: the request as it arrived, with the header's signature.
    `destination` is the receiver's own name (the header's, when present, must equal it)."""
    obj = request_json(method, uri, auth.origin, destination, content)
    obj["signatures"] = {auth.origin: {auth.key_id: auth.signature}}
    return obj


def parse_authorization(header: str) -> XMatrixAuth:
    """Parse one `Authorization` header value; InvalidAuthorization unless a well-formed X-Matrix."""
    scheme, sep, rest = header.strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not sep:
        raise InvalidAuthorization("Authorization scheme is not X-Matrix")
    params = _parse_params(rest)
    missing = [name for name in ("origin", "key", "sig") if not params.get(name)]
    if missing:
        raise InvalidAuthorization(f"X-Matrix header lacks {', '.join(missing)}")
    origin, key_id = params["origin"], params["key"]
    if not is_valid_server_name(origin):
        raise InvalidAuthorization("X-Matrix origin is not a valid server name")
    if not _KEY_ID.fullmatch(key_id):
        raise InvalidAuthorization("X-Matrix key is not an ed25519 key ID")
    destination = params.get("destination")
    return XMatrixAuth(origin=origin, destination=destination, key_id=key_id, signature=params["sig"])


def _parse_params(text: str) -> dict[str, str]:
    """`name=value` pairs separated by commas with optional spaces and tabs around them.
    The first occurrence of a name wins; unknown names are kept (the caller ignores them)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            return params
        match = _NAME.match(text, i)
        if not match or match.end() >= n or text[match.end()] != "=":
            raise InvalidAuthorization("malformed X-Matrix parameter")
        name = match.group().lower()
        i = match.end() + 1
        if i < n and text[i] == '"':
            value, i = _quoted(text, i + 1)
        else:
            bare = _BARE_VALUE.match(text, i)
            if not bare:
                raise InvalidAuthorization(f"X-Matrix parameter {name!r} has no value")
            value, i = bare.group(), bare.end()
        params.setdefault(name, value)
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise InvalidAuthorization("X-Matrix parameters must be separated by commas")


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted-string's value from just after its opening quote, and the index after its end."""
    out: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise InvalidAuthorization("unterminated quoted value in X-Matrix header")
