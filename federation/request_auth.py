"""Authenticating incoming federation requests (X-Matrix), for `Auth.SERVER` routes.

https://spec.matrix.org/v1.19/server-server-api/#request-authentication: the request's
method, URI (path and query exactly as sent), origin, destination and JSON body must carry a
valid signature by the origin; a `destination` naming another server is refused. Any failure
is 401 M_UNAUTHORIZED, but for a malformed X-Matrix header: 400 M_UNAUTHORIZED. Several X-Matrix headers (one per key) are accepted when they name one
origin; each signature is then checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from federation.keys import Clock, Keyring
from homeserver.core.signing import InvalidSignature
from homeserver.core.x_matrix import SCHEME, InvalidAuthorization, parse_authorization, signed_request_json
from homeserver.errors import Codes, MatrixError


def unauthorized(message: str) -> MatrixError:
    return MatrixError(401, Codes.UNAUTHORIZED, message)


class RequestAuthenticator:
    def __init__(self, keyring: Keyring, server_name: str, clock: Clock) -> None:
        self._keyring = keyring
        self._server_name = server_name
        self._clock = clock

    async def authenticate(self, method: str, uri: str, authorization: Iterable[str], content: Any) -> str:
        """The origin server of a signed request, or MatrixError 401 M_UNAUTHORIZED.
        `authorization`: the values of every Authorization header; `content`: the parsed JSON
        body, None when the request has none."""
        headers = [h for h in authorization if h.strip().lower().startswith(SCHEME.lower() + " ")]
        if not headers:
            raise unauthorized("Missing X-Matrix Authorization header")
        try:
            parsed = [parse_authorization(h) for h in headers]
        except InvalidAuthorization as err:
            # A malformed header (say an origin that is no server name) is a bad request: 400,
            # with the errcode of the other failures, as Synapse answers.
            raise MatrixError(400, Codes.UNAUTHORIZED, f"Invalid X-Matrix Authorization header: {err}") from None
        origin = parsed[0].origin
        if any(p.origin != origin for p in parsed):
            raise unauthorized("X-Matrix headers name different origins")
        for p in parsed:
            if p.destination is not None and p.destination != self._server_name:
                raise unauthorized(f"Request is for {p.destination}, not {self._server_name}")
        signed = signed_request_json(parsed[0], method, uri, self._server_name, content)
        for p in parsed[1:]:
            signed["signatures"][origin][p.key_id] = p.signature
        try:
            await self._keyring.verify_json_for_server(origin, signed, self._clock.now_ms())
        except InvalidSignature as err:
            raise unauthorized(f"Request signature check failed: {err}") from None
        return origin
