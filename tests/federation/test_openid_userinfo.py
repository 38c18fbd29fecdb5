"""OpenID tokens checked over federation, as a widget or integration server checks them: a
user asks their homeserver for a token (POST /user/{userId}/openid/request_token), and another
party asks that homeserver who it belongs to (GET /_matrix/federation/v1/openid/userinfo),
resolving `matrix_server_name` like any federation destination. Here the asking party is
another server's federation client: a second ChatGO asks ChatGO, and ChatGO asks Synapse."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from federation.client import RemoteError
from tests.federation.matrix_client import new_user

USERINFO = "/_matrix/federation/v1/openid/userinfo"


async def test_a_chatgo_token_is_checked_by_another_server(homeservers, tls_files):
    a, b = await homeservers(), await homeservers()
    alice = await new_user(a, tls_files, "alice")
    status, token = await alice.request("POST", f"/_matrix/client/v3/user/{quote(alice.user_id)}/openid/request_token", {})
    assert status == 200, token
    assert token["matrix_server_name"] == a.name and token["token_type"] == "Bearer" and token["expires_in"] > 0

    fed = b.services.federation_client
    info = await fed.get_json(token["matrix_server_name"], USERINFO, {"access_token": token["access_token"]})
    assert info == {"sub": alice.user_id}
    with pytest.raises(RemoteError) as err:
        await fed.get_json(a.name, USERINFO, {"access_token": token["access_token"] + "x"})
    assert (err.value.status, err.value.errcode) == (401, "M_UNKNOWN_TOKEN")
    # The user's access token is not an OpenID token.
    with pytest.raises(RemoteError) as err:
        await fed.get_json(a.name, USERINFO, {"access_token": alice.token})
    assert err.value.status == 401


async def test_chatgo_checks_a_synapse_token(homeservers, synapse):
    a = await homeservers()
    carol = await synapse.register("openid-carol")
    token = await carol.call("POST", f"/_matrix/client/v3/user/{quote(carol.user_id)}/openid/request_token", {})
    assert token["matrix_server_name"] == synapse.name
    info = await a.services.federation_client.get_json(synapse.name, USERINFO, {"access_token": token["access_token"]})
    assert info == {"sub": carol.user_id}
    with pytest.raises(RemoteError) as err:
        await a.services.federation_client.get_json(synapse.name, USERINFO, {"access_token": "not-a-token"})
    assert err.value.status == 401
