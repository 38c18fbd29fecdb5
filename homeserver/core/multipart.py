"""multipart/mixed bodies (RFC 2046, section 5.1), as the federation media endpoints use them.

Spec, server-server API "Content Repository": a download or thumbnail answer is
`multipart/mixed` with exactly two parts, JSON metadata (`{}` for now) first, then either the
bytes with their `Content-Type`/`Content-Disposition`, or a `Location` header to fetch them from.

Writing is done in pieces (`part_head`, `closing`) so that a transport can stream the bytes
between them; reading takes a whole body. Header names come out lower-cased.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_CRLF = b"\r\n"
# RFC 2046: 1 to 70 characters of bchars, not ending with a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class MultipartError(ValueError):
    """The body is not the multipart message it claims to be."""


@dataclass(frozen=True, slots=True)
class Part:
    headers: dict[str, str]  # lower-cased names
    body: bytes


def boundary_of(content_type: str) -> str:
    """The boundary of a `multipart/mixed` Content-Type; MultipartError when it is not one."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/mixed":
        raise MultipartError(f"not multipart/mixed: {kind.strip()!r}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if not _BOUNDARY.fullmatch(value):
                raise MultipartError("invalid boundary")
            return value
    raise MultipartError("no boundary")


def parse(body: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body; the preamble and epilogue are ignored."""
    delimiter = b"--" + boundary.encode("ascii")
    if body.startswith(delimiter) and _ends_delimiter(body, len(delimiter)):
        pos = len(delimiter)
    else:
        pos = _next_delimiter(body, delimiter, 0)
        if pos < 0:
            raise MultipartError("no delimiter")
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", pos):  # the close delimiter
            return parts
        start = body.find(_CRLF, pos) + 2  # past transport padding (checked by _ends_delimiter)
        end = _next_delimiter(body, delimiter, start - 2)
        if end < 0:
            raise MultipartError("no close delimiter")
        parts.append(_part(body[start:end - len(delimiter) - 2]))
        pos = end


def _next_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """Where the next CRLF + delimiter line at or after `start` ends (-1: none). Text that only
    begins like the delimiter (the boundary followed by more bchars) is part of the body."""
    separator = _CRLF + delimiter
    while True:
        found = body.find(separator, start)
        if found < 0:
            return -1
        after = found + len(separator)
        if _ends_delimiter(body, after):
            return after
        start = found + 1


def _ends_delimiter(body: bytes, pos: int) -> bool:
    """A delimiter ends at `pos`: `--` follows (close delimiter), or padding then CRLF."""
    if body.startswith(b"--", pos):
        return True
    line_end = body.find(_CRLF, pos)
    return line_end >= 0 and not body[pos:line_end].strip(b" \t")


def part_head(boundary: str, headers: Mapping[str, str], *, first: bool = False) -> bytes:
    """The delimiter and headers that open a part; its body follows."""
    lines = [b"--" + boundary.encode("ascii")]
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}".encode("utf-8"))
    return (b"" if first else _CRLF) + _CRLF.join(lines) + _CRLF + _CRLF


def closing(boundary: str) -> bytes:
    return _CRLF + b"--" + boundary.encode("ascii") + b"--" + _CRLF


def _part(raw: bytes) -> Part:
    if raw.startswith(_CRLF):  # no headers at all
        return Part({}, raw[2:])
    head, sep, body = raw.partition(_CRLF + _CRLF)
    if not sep:
        raise MultipartError("part without a blank line after its headers")
    headers: dict[str, str] = {}
    for line in head.split(_CRLF):
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon or not name.strip():
            raise MultipartError("malformed part header")
        headers[name.strip().lower()] = value.strip()
    return Part(headers, body)
