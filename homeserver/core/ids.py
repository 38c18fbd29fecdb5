"""Identifiers: user IDs, room IDs, event IDs, room aliases and server names.

Grammar: https://spec.matrix.org/v1.19/appendices/#identifier-grammar
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_ID_LENGTH = 255  # bytes, for every identifier with a sigil

# https://spec.matrix.org/v1.19/appendices/#user-identifiers: a-z 0-9 . _ = - / +
_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")
# Historical user IDs (remote users may still have them): any printable ASCII but ':'.
_HISTORICAL_LOCALPART = re.compile(r"[\x21-\x39\x3b-\x7e]+")
# https://spec.matrix.org/v1.19/appendices/#server-name
_DNS_NAME = re.compile(r"[A-Za-z0-9\-.]{1,255}")
_PORT = re.compile(r"[0-9]{1,5}")


class InvalidId(ValueError):
    """An identifier that does not follow the spec's grammar."""


def is_valid_localpart(localpart: str, historical: bool = False) -> bool:
    pattern = _HISTORICAL_LOCALPART if historical else _LOCALPART
    return bool(localpart) and pattern.fullmatch(localpart) is not None


def is_valid_server_name(server_name: str) -> bool:
    """host [":" port], host being an IPv4 literal, a bracketed IPv6 literal or a DNS name."""
    if not server_name:
        return False
    if server_name.startswith("["):
        end = server_name.find("]")
        if end == -1:
            return False
        try:
            ipaddress.IPv6Address(server_name[1:end])
        except ValueError:
            return False
        rest = server_name[end + 1:]
        return rest == "" or (rest.startswith(":") and _valid_port(rest[1:]))
    host, sep, port = server_name.partition(":")
    if sep and not _valid_port(port):
        return False
    return _DNS_NAME.fullmatch(host) is not None


def _valid_port(port: str) -> bool:
    return _PORT.fullmatch(port) is not None and 0 < int(port) <= 65535


@dataclass(frozen=True, slots=True)
class UserID:
    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.domain}"


@dataclass(frozen=True, slots=True)
class RoomAlias:
    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"#{self.localpart}:{self.domain}"


def _split(identifier: str, sigil: str, what: str) -> tuple[str, str]:
    if not isinstance(identifier, str) or not identifier.startswith(sigil):
        raise InvalidId(f"{what} must start with {sigil!r}")
    if len(identifier.encode()) > MAX_ID_LENGTH:
        raise InvalidId(f"{what} is longer than {MAX_ID_LENGTH} bytes")
    localpart, sep, domain = identifier[1:].partition(":")
    if not sep:
        raise InvalidId(f"{what} has no server name")
    if not is_valid_server_name(domain):
        raise InvalidId(f"{what} has an invalid server name {domain!r}")
    return localpart, domain


def parse_user_id(user_id: str, *, historical: bool = True) -> UserID:
    """A user ID; `historical` accepts the wider grammar older servers issued."""
    localpart, domain = _split(user_id, "@", "user ID")
    if not is_valid_localpart(localpart, historical=historical):
        raise InvalidId(f"invalid user ID localpart {localpart!r}")
    return UserID(localpart, domain)


def is_valid_user_id(user_id: object, *, historical: bool = True) -> bool:
    try:
        parse_user_id(user_id, historical=historical)  # type: ignore[arg-type]
        return True
    except InvalidId:
        return False


def parse_room_alias(alias: str) -> RoomAlias:
    localpart, domain = _split(alias, "#", "room alias")
    if not localpart:
        raise InvalidId("room alias has an empty localpart")
    return RoomAlias(localpart, domain)


def is_valid_room_id(room_id: object) -> bool:
    """`!opaque:server` (v1-v11) or `!hash` (v12: no server part)."""
    if not isinstance(room_id, str) or not room_id.startswith("!") or len(room_id) < 2:
        return False
    if len(room_id.encode()) > MAX_ID_LENGTH:
        return False
    opaque, sep, domain = room_id[1:].partition(":")
    return bool(opaque) and (not sep or is_valid_server_name(domain))


def is_valid_event_id(event_id: object) -> bool:
    """`$opaque:server` (v1-v2) or `$hash` (v3+)."""
    if not isinstance(event_id, str) or not event_id.startswith("$") or len(event_id) < 2:
        return False
    return len(event_id.encode()) <= MAX_ID_LENGTH


def server_name_of(identifier: str) -> str | None:
    """The server part of a sigil identifier, or None when it has none (v12 room IDs)."""
    _, sep, domain = identifier[1:].partition(":")
    return domain if sep else None
