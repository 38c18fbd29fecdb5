"""Phone numbers (msisdn): the requestToken endpoints of registration, adding a 3PID and
password reset. ChatGO sends no SMS and has no msisdn delegate (Synapse's
`account_threepid_delegate_msisdn`), so a well-formed request is answered as Synapse answers it
without one: 400, registration with M_UNKNOWN, the others with M_THREEPID_MEDIUM_NOT_SUPPORTED.
The body is checked first, so a bad request still says what is wrong with it."""

from __future__ import annotations

import re
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.email import CLIENT_SECRET

# What Synapse's phone number parsing accepts, near enough without a numbering-plan library:
# an ISO 3166-1 alpha-2 country, and digits with the usual separators.
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_PHONE_NUMBER = re.compile(r"^\+?[0-9 ()./-]{1,40}$")
_NOT_SUPPORTED = {
    "register": (Codes.UNKNOWN, "Registration by phone number is not supported on this homeserver"),
    "add": ("M_THREEPID_MEDIUM_NOT_SUPPORTED", "Adding phone numbers to user account is not supported by this homeserver"),
    "password": ("M_THREEPID_MEDIUM_NOT_SUPPORTED", "Password reset by phone number is not supported by this homeserver"),
}


class PhoneValidationService:
    def request_token(self, body: dict[str, Any], purpose: str) -> dict[str, str]:
        """POST /register|/account/3pid|/account/password /msisdn/requestToken."""
        for key in ("client_secret", "country", "phone_number", "send_attempt"):
            if key not in body:
                raise MatrixError(400, Codes.MISSING_PARAM, f"Missing '{key}'")
        secret, country, number, attempt = (body[k] for k in ("client_secret", "country", "phone_number",
                                                              "send_attempt"))
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise MatrixError(400, Codes.BAD_JSON, "'send_attempt' must be an integer")
        if not all(isinstance(v, str) for v in (secret, country, number)):
            raise MatrixError(400, Codes.BAD_JSON, "'client_secret', 'country' and 'phone_number' must be strings")
        if not isinstance(body.get("next_link", ""), str):
            raise MatrixError(400, Codes.BAD_JSON, "'next_link' must be a string")
        if not CLIENT_SECRET.match(secret):
            raise MatrixError(400, Codes.INVALID_PARAM, "'client_secret' must be 1-255 characters of [0-9a-zA-Z.=_-]")
        if not _COUNTRY.match(country) or not _PHONE_NUMBER.match(number) or not any(c.isdigit() for c in number):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unable to parse phone number")
        errcode, message = _NOT_SUPPORTED[purpose]
        raise MatrixError(400, errcode, message)
