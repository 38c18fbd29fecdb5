"""OpenGraph extraction for URL previews: pure functions, no network."""

from homeserver.services.media.opengraph import MAX_VALUE_LENGTH, decode_html, parse_open_graph


def test_og_tags_win_and_entities_are_decoded():
    html = """<html><head><title>T</title><meta property="og:title" content="Caf&eacute; &amp; co">
    <meta property="OG:Description" content=" two
    lines "><meta name="twitter:title" content="ignored"></head></html>"""
    assert parse_open_graph(html) == {"og:title": "Café & co", "og:description": "two lines"}


def test_fallbacks_twitter_then_title_heading_description_and_first_image():
    assert parse_open_graph("""<meta name="twitter:title" content="Tw"><meta name="twitter:image" content="/t.png">
        <title>Title</title>""") == {"og:title": "Tw", "og:image": "/t.png"}
    assert parse_open_graph("""<body><h2> A <b>bold</b> heading </h2><img src="a.jpg"><img src="b.jpg">
        <meta name="description" content="Desc"></body>""") == {
        "og:title": "A bold heading", "og:description": "Desc", "og:image": "a.jpg"}
    assert parse_open_graph("<p>nothing here</p>") == {}


def test_overlong_values_and_keys_are_dropped():
    html = (f'<meta property="og:title" content="{"x" * (MAX_VALUE_LENGTH + 1)}">'
            f'<meta property="og:{"k" * 60}" content="v"><meta property="og:type" content="website">')
    assert parse_open_graph(html) == {"og:type": "website"}


def test_malformed_markup_keeps_what_was_read():
    assert parse_open_graph('<meta property="og:title" content="ok"><<<<![CDATA[ <div <title>')["og:title"] == "ok"


def test_charset_from_header_then_meta_then_utf8():
    body = '<meta charset="iso-8859-1"><title>Caf\xe9</title>'.encode("latin-1")
    assert "Café" in decode_html(body, None)
    assert "Café" in decode_html("<title>Café</title>".encode(), None)
    assert "Café" in decode_html("Café".encode("cp1252"), "cp1252")
    assert decode_html(b"ok", "no-such-charset") == "ok"
