"""Versions, well-known, capabilities, the landing page, and Matrix errors for bad requests."""

import pytest

V3 = "/_matrix/client/v3"


async def test_versions_lists_spec_versions_up_to_v1_19(client):
    status, body = await client.get("/_matrix/client/versions")
    assert status == 200
    assert "v1.19" in body["versions"] and "r0.6.1" in body["versions"]
    assert isinstance(body["unstable_features"], dict)


async def test_cors_headers_on_responses_and_preflight(client):
    resp = await client.http.get("/_matrix/client/versions")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    preflight = await client.http.options(f"{V3}/login", headers={
        "Origin": "https://app.element.io", "Access-Control-Request-Method": "POST",
    })
    assert preflight.status == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


async def test_unknown_endpoint_is_m_unrecognized_404(client):
    status, body = await client.get(f"{V3}/no/such/endpoint")
    assert status == 404
    assert body["errcode"] == "M_UNRECOGNIZED"
    # CORS applies to errors too, or browsers cannot read them.
    resp = await client.http.get(f"{V3}/nothing")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_wrong_method_is_405_m_unrecognized(client):
    status, body = await client.request("DELETE", f"{V3}/login")
    assert status == 405
    assert body["errcode"] == "M_UNRECOGNIZED"


@pytest.mark.parametrize("raw,errcode", [
    (b"{not json", "M_NOT_JSON"),
    (b"", "M_NOT_JSON"),
    (b"[1, 2]", "M_BAD_JSON"),
    (b'"a string"', "M_BAD_JSON"),
])
async def test_bad_bodies(client, raw, errcode):
    status, body = await client.post(f"{V3}/login", raw=raw)
    assert status == 400
    assert body["errcode"] == errcode


async def test_oversized_body_is_413_m_too_large(client):
    raw = b'{"type": "m.login.password", "password": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, body = await client.post(f"{V3}/login", raw=raw)
    assert status == 413
    assert body["errcode"] == "M_TOO_LARGE"


async def test_client_well_known(client):
    status, body = await client.get("/.well-known/matrix/client")
    assert status == 200
    assert body == {"m.homeserver": {"base_url": "https://test.local/"}}


async def test_server_well_known_names_the_federation_port(client):
    status, body = await client.get("/.well-known/matrix/server")
    assert status == 200
    assert body == {"m.server": "test.local:8448"}


async def test_capabilities_require_auth_and_list_room_versions(client):
    status, body = await client.get(f"{V3}/capabilities")
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"
    user = await client.register("cap")
    status, body = await client.get(f"{V3}/capabilities", token=user["access_token"])
    assert status == 200
    versions = body["capabilities"]["m.room_versions"]
    assert versions["default"] == "12"
    assert set(versions["available"]) >= {str(v) for v in range(1, 13)}
    assert body["capabilities"]["m.change_password"] == {"enabled": True}


async def test_landing_page_is_html(client):
    resp = await client.http.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    text = await resp.text()
    assert "test.local" in text and "ChatGO" in text


async def test_r0_prefix_serves_the_same_endpoints(client):
    status, body = await client.get("/_matrix/client/r0/login")
    assert status == 200
    assert {"type": "m.login.password"} in body["flows"]


async def test_null_characters_in_json_bodies_are_refused(alice):
    status, body = await alice.put("/_matrix/client/v3/user/@alice:test.local/account_data/x.y",
                                   raw=b'{"text": "a\\u0000b"}', headers={"Content-Type": "application/json"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
