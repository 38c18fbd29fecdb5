"""Client requests answered by asking another server: a remote user's profile."""

from __future__ import annotations

import ssl
from urllib.parse import quote

import aiohttp
import pytest

from federation.client import RemoteError


async def client_get(server, token: str, path: str, tls_files):
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, ssl=context) as resp:
            return resp.status, await resp.json()


async def login(server, user_id: str, password: str, tls_files) -> str:
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/_matrix/client/v3/login", ssl=context, json={
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                "password": password}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return body["access_token"]


async def test_remote_profile_through_federation(homeservers, tls_files):
    a = await homeservers()
    b = await homeservers()
    bob = await a.services.accounts.create_user("bob", "password-2")
    alice = await b.services.accounts.create_user("alice", "password-1")
    await b.services.profiles._profiles.set_displayname(alice, "Alice")
    token = await login(a, bob, "password-2", tls_files)

    status, body = await client_get(a, token, f"/_matrix/client/v3/profile/{quote(alice)}", tls_files)
    assert (status, body) == (200, {"displayname": "Alice"})
    status, body = await client_get(a, token, f"/_matrix/client/v3/profile/{quote(alice)}/displayname", tls_files)
    assert (status, body) == (200, {"displayname": "Alice"})
    status, body = await client_get(a, token, f"/_matrix/client/v3/profile/{quote('@nobody:' + b.name)}", tls_files)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    # A server nobody can reach: 502, not a 500 and not a misleading 404.
    status, body = await client_get(a, token, f"/_matrix/client/v3/profile/{quote('@x:localhost:1')}", tls_files)
    assert status == 502 and body["errcode"] == "M_UNKNOWN"


async def test_remote_alias_through_federation_and_peers_get_only_local_answers(homeservers, tls_files):
    a = await homeservers()
    b = await homeservers()
    bob = await a.services.accounts.create_user("bob", "password-2")
    alice = await b.services.accounts.create_user("alice", "password-1")
    room_id = await b.services.rooms.create_room(alice, {})
    await b.services.directory.create_alias(alice, f"#lobby:{b.name}", room_id)
    token = await login(a, bob, "password-2", tls_files)
    status, body = await client_get(a, token, f"/_matrix/client/v3/directory/room/{quote('#lobby:' + b.name)}",
                                    tls_files)
    assert (status, body) == (200, {"room_id": room_id, "servers": [b.name]})
    status, body = await client_get(a, token, f"/_matrix/client/v3/directory/room/{quote('#none:' + b.name)}",
                                    tls_files)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    # A peer asking us about a third server's user or alias is not forwarded.
    client = b.services.federation_client
    with pytest.raises(RemoteError) as err:
        await client.get_json(a.name, "/_matrix/federation/v1/query/profile", {"user_id": alice})
    assert err.value.status == 404
    with pytest.raises(RemoteError) as err:
        await client.get_json(a.name, "/_matrix/federation/v1/query/directory", {"room_alias": f"#lobby:{b.name}"})
    assert err.value.status == 404
    # A user of ours without an avatar: the field is simply absent (404 would mean no such user).
    assert await b.services.federation_client.get_json(
        a.name, "/_matrix/federation/v1/query/profile", {"user_id": bob, "field": "avatar_url"}) == {}
    with pytest.raises(RemoteError) as err:
        await client.get_json(a.name, "/_matrix/federation/v1/query/profile",
                              {"user_id": f"@nobody:{a.name}", "field": "avatar_url"})
    assert err.value.status == 404
    # GET /query/{queryType}: a query type with no handler is 404 M_UNRECOGNIZED.
    with pytest.raises(RemoteError) as err:
        await client.get_json(a.name, "/_matrix/federation/v1/query/weather", {"city": "Paris"})
    assert err.value.status == 404 and err.value.body["errcode"] == "M_UNRECOGNIZED"


async def test_domain_allowlist_keeps_other_servers_out_of_reach(homeservers, tls_files):
    b = await homeservers()
    a = await homeservers(federation={"domain_allowlist": []})
    bob = await a.services.accounts.create_user("bob", "password-2")
    alice = await b.services.accounts.create_user("alice", "password-1")
    token = await login(a, bob, "password-2", tls_files)
    status, body = await client_get(a, token, f"/_matrix/client/v3/profile/{quote(alice)}", tls_files)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN") and "domain_allowlist" in body["error"]
