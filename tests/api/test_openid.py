"""OpenID tokens: POST /user/{userId}/openid/request_token, then a third party's
GET /_matrix/federation/v1/openid/userinfo (spec client-server and server-server "OpenID")."""

from homeserver.web_app import make_web_app
from tests.server_fixtures import MatrixClient

V3 = "/_matrix/client/v3"


async def test_token_is_exchanged_for_the_user_id(aiohttp_client, services, alice):
    status, body = await alice.post(f"{V3}/user/@alice:test.local/openid/request_token", {})
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["matrix_server_name"] == "test.local"
    assert body["expires_in"] == 3600 and body["access_token"]

    # The third party asks the federation listener, with no X-Matrix signature.
    peer_facing = MatrixClient(await aiohttp_client(make_web_app(services, ["federation"])))
    status, info = await peer_facing.get(f"/_matrix/federation/v1/openid/userinfo?access_token={body['access_token']}")
    assert (status, info) == (200, {"sub": "@alice:test.local"})

    # The token is good for nothing else.
    status, who = await alice.with_token(body["access_token"]).get(f"{V3}/account/whoami")
    assert (status, who["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_bad_tokens_and_other_users(aiohttp_client, services, alice):
    peer_facing = MatrixClient(await aiohttp_client(make_web_app(services, ["federation"])))
    for query in ("", "?access_token=", "?access_token=nope"):
        status, body = await peer_facing.get(f"/_matrix/federation/v1/openid/userinfo{query}")
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN"), query
    status, body = await alice.post(f"{V3}/user/@bob:test.local/openid/request_token", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await alice.post(f"{V3}/user/@alice:test.local/openid/request_token", [])
    assert status == 400


async def test_expired_tokens_are_refused_and_swept(services):
    store = services.openid._tokens
    await store.add("old", "@alice:test.local", expires_ts=1_000, now_ts=500)
    assert await store.user_of("old", 999) == "@alice:test.local"
    assert await store.user_of("old", 1_000) is None  # expired at its expiry time
    # Issuing a token sweeps the expired ones.
    await store.add("new", "@alice:test.local", expires_ts=5_000, now_ts=2_000)
    assert await store.user_of("old", 0) is None
    assert await store.user_of("new", 2_000) == "@alice:test.local"
