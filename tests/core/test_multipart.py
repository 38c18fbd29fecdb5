"""multipart/mixed reading and writing (homeserver.core.multipart)."""

import pytest

from homeserver.core import multipart


def test_round_trip_keeps_binary_bodies_exactly():
    boundary = "abc123"
    tricky = b"\r\n--abc12\r\n--abc1234 not quite\r\n\x00\xff"
    body = (b"preamble\r\n" + multipart.part_head(boundary, {"Content-Type": "application/json"}) + b"{}"
            + multipart.part_head(boundary, {"Content-Type": "image/png", "Content-Disposition": "inline"})
            + tricky + multipart.closing(boundary) + b"epilogue")
    parts = multipart.parse(body, boundary)
    assert [(p.headers, p.body) for p in parts] == [
        ({"content-type": "application/json"}, b"{}"),
        ({"content-type": "image/png", "content-disposition": "inline"}, tricky),
    ]


def test_first_part_at_the_very_start_and_parts_without_headers():
    body = b"--b\r\n\r\nno headers\r\n--b  \r\nX-A: 1\r\n\r\n\r\n--b--"
    assert [(p.headers, p.body) for p in multipart.parse(body, "b")] == [({}, b"no headers"), ({"x-a": "1"}, b"")]


@pytest.mark.parametrize("content_type, boundary", [
    ("multipart/mixed; boundary=xyz", "xyz"),
    ('Multipart/Mixed; charset=x; boundary="a b:c"', "a b:c"),
])
def test_boundary_of(content_type, boundary):
    assert multipart.boundary_of(content_type) == boundary


@pytest.mark.parametrize("content_type", [
    "application/json", "multipart/mixed", "multipart/mixed; boundary=", "multipart/mixed; boundary=" + "x" * 71,
])
def test_bad_content_types(content_type):
    with pytest.raises(multipart.MultipartError):
        multipart.boundary_of(content_type)


@pytest.mark.parametrize("body", [
    b"no delimiter at all", b"--b\r\nX: 1\r\n\r\nunterminated", b"--b\r\nno blank line\r\n--b--", b"--bjunk\r\n",
])
def test_malformed_bodies(body):
    with pytest.raises(multipart.MultipartError):
        multipart.parse(body, "b")


def test_header_values_cannot_break_lines():
    with pytest.raises(ValueError):
        multipart.part_head("b", {"Location": "https://x\r\nEvil: 1"})
