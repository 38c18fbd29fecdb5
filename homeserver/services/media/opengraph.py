"""OpenGraph data from an HTML page (https://ogp.me/), for URL previews. Pure functions.

The page's own `og:*` meta tags win; missing ones are filled the way Synapse does: the title
from `twitter:title` or `<title>` (or the first heading), the description from
`twitter:description` or `<meta name="description">`, the image from `twitter:image` or the
first `<img>`. Overlong keys and values are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

MAX_KEY_LENGTH = 50
MAX_VALUE_LENGTH = 1000
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE)


def decode_html(body: bytes, charset: str | None) -> str:
    """The page's text: in the charset of its Content-Type, else of its <meta>, else UTF-8."""
    candidates = [charset] if charset else []
    if match := _META_CHARSET.search(body[:2048]):
        candidates.append(match.group(1).decode("ascii"))
    for candidate in [*candidates, "utf-8"]:
        try:
            return body.decode(candidate, errors="replace")
        except LookupError:  # an unknown charset name
            continue
    return body.decode("utf-8", errors="replace")


def parse_open_graph(html: str) -> dict[str, str]:
    """The OpenGraph properties of a page; `og:image` may be relative to the page's URL."""
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # html.parser gives up on some malformed markup; keep what it read
        pass
    og = dict(parser.og)
    fallbacks = {
        "og:title": (parser.twitter.get("twitter:title"), parser.title, parser.heading),
        "og:description": (parser.twitter.get("twitter:description"), parser.description),
        "og:image": (parser.twitter.get("twitter:image"), parser.first_image),
    }
    for key, values in fallbacks.items():
        if not og.get(key):
            value = next((v for v in values if v), None)
            if value:
                og[key] = value
    return {k: v for k, v in og.items() if len(k) <= MAX_KEY_LENGTH and len(v) <= MAX_VALUE_LENGTH}


def _collapse(text: str) -> str:
    return " ".join(text.split())


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.twitter: dict[str, str] = {}
        self.description: str | None = None
        self.title: str | None = None
        self.heading: str | None = None
        self.first_image: str | None = None
        self._text_of: str | None = None  # "title" or "heading" while inside one
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): value or "" for name, value in attrs}
        if tag == "meta":
            self._meta(attributes)
        elif tag == "title" and self.title is None:
            self._start_text("title")
        elif tag in ("h1", "h2", "h3") and self.heading is None and self._text_of is None:
            self._start_text("heading")
        elif tag == "img" and self.first_image is None and attributes.get("src"):
            self.first_image = attributes["src"].strip()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._text_of == "title" and tag == "title" or self._text_of == "heading" and tag in ("h1", "h2", "h3"):
            text = _collapse("".join(self._text))
            setattr(self, self._text_of, text or None)
            self._text_of = None

    def handle_data(self, data: str) -> None:
        if self._text_of is not None:
            self._text.append(data)

    def _start_text(self, which: str) -> None:
        self._text_of, self._text = which, []

    def _meta(self, attributes: dict[str, str]) -> None:
        key = (attributes.get("property") or attributes.get("name") or "").strip().lower()
        content = attributes.get("content")
        if not key or content is None:
            return
        content = _collapse(content)
        if key.startswith("og:"):
            self.og.setdefault(key, content)
        elif key.startswith("twitter:"):
            self.twitter.setdefault(key, content)
        elif key == "description" and content and self.description is None:
            self.description = content
