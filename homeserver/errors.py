"""Matrix errors: what a client or a peer sees when a request fails.

Services raise `MatrixError`; the HTTP layer renders it as `{"errcode", "error", ...}` with
its status. Anything else escaping a handler is a bug and becomes a logged 500.
"""

from __future__ import annotations

from typing import Any


class Codes:
    FORBIDDEN = "M_FORBIDDEN"
    # MSC3895 (as Synapse): a server whose state of the room is still partial (faster joins).
    UNABLE_DUE_TO_PARTIAL_STATE = "ORG.MATRIX.MSC3895_UNABLE_DUE_TO_PARTIAL_STATE"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    SERVER_NOT_TRUSTED = "M_SERVER_NOT_TRUSTED"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    USER_LOCKED = "M_USER_LOCKED"
    BAD_JSON = "M_BAD_JSON"
    NOT_JSON = "M_NOT_JSON"
    NOT_FOUND = "M_NOT_FOUND"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    UNKNOWN = "M_UNKNOWN"
    UNAUTHORIZED = "M_UNAUTHORIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    THREEPID_IN_USE = "M_THREEPID_IN_USE"
    THREEPID_NOT_FOUND = "M_THREEPID_NOT_FOUND"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
    BAD_STATE = "M_BAD_STATE"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    MISSING_PARAM = "M_MISSING_PARAM"
    INVALID_PARAM = "M_INVALID_PARAM"
    TOO_LARGE = "M_TOO_LARGE"
    EXCLUSIVE = "M_EXCLUSIVE"
    RESOURCE_LIMIT_EXCEEDED = "M_RESOURCE_LIMIT_EXCEEDED"
    CANNOT_LEAVE_SERVER_NOTICE_ROOM = "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    UNSUPPORTED_METHOD = "M_UNSUPPORTED_METHOD"  # not spec'd; we use 405 + M_UNRECOGNIZED
    UNABLE_TO_AUTHORISE_JOIN = "M_UNABLE_TO_AUTHORISE_JOIN"
    UNABLE_TO_GRANT_JOIN = "M_UNABLE_TO_GRANT_JOIN"
    CANNOT_OVERWRITE_MEDIA = "M_CANNOT_OVERWRITE_MEDIA"
    NOT_YET_UPLOADED = "M_NOT_YET_UPLOADED"
    UNKNOWN_DEVICE = "M_UNKNOWN_DEVICE"
    # Application services (spec: "Application Service API"; "Pinging").
    APPSERVICE_LOGIN_UNSUPPORTED = "M_APPSERVICE_LOGIN_UNSUPPORTED"
    URL_NOT_SET = "M_URL_NOT_SET"
    BAD_STATUS = "M_BAD_STATUS"
    CONNECTION_FAILED = "M_CONNECTION_FAILED"
    CONNECTION_TIMEOUT = "M_CONNECTION_TIMEOUT"


class MatrixError(Exception):
    """An error with a Matrix errcode. `extra` fields are merged into the JSON body."""

    def __init__(self, status: int, errcode: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}

    def __repr__(self) -> str:
        return f"MatrixError({self.status}, {self.errcode!r}, {self.message!r})"


class DatabaseUnavailable(MatrixError):
    """The database cannot be reached (down, restarting, connections cut): 503, so clients and
    load balancers retry later, rather than a 500 that reads as a bug."""

    def __init__(self) -> None:
        super().__init__(503, Codes.UNKNOWN, "The database is unavailable; try again later")


def bad_json(message: str) -> MatrixError:
    return MatrixError(400, Codes.BAD_JSON, message)


def invalid_param(message: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, message)


def missing_param(message: str) -> MatrixError:
    return MatrixError(400, Codes.MISSING_PARAM, message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, Codes.FORBIDDEN, message)


def not_found(message: str) -> MatrixError:
    return MatrixError(404, Codes.NOT_FOUND, message)


class InteractiveAuthRequired(MatrixError):
    """401 with the user-interactive auth flows (spec: "User-interactive authentication API").

    The body is the UIA object itself (flows, params, session, completed), plus errcode/error
    when a stage was attempted and failed.
    """

    def __init__(self, body: dict[str, Any], errcode: str | None = None, message: str | None = None,
                 *, session_id: str | None = None) -> None:
        super().__init__(401, errcode or "", message or "")
        self.body = body
        self.session_id = session_id

    def to_json(self) -> dict[str, Any]:
        body = dict(self.body)
        if self.errcode:
            body["errcode"] = self.errcode
            body["error"] = self.message
        return body
