"""The public room directory over federation: served to peers, and asked of a peer for a
client (`/publicRooms?server=`)."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
import yaml

from federation.client import RemoteError
from homeserver.services.auth import Requester
from tests.federation.test_remote_queries import login

PUBLIC_ROOMS = "/_matrix/federation/v1/publicRooms"


async def client_request(server, method: str, path: str, tls_files, token: str | None = None, json=None):
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.url + path, headers=headers, json=json, ssl=context) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def directory(homeservers, tmp_path):
    """Server `a` publishes two rooms (and keeps one private, which its appservice `irc`
    publishes for its network `libera`); `b` has a user with a token."""
    registration = tmp_path / "irc.yaml"
    registration.write_text(yaml.safe_dump({
        "id": "irc", "url": None, "as_token": "as-irc", "hs_token": "hs-irc", "sender_localpart": "ircbot",
        "namespaces": {"users": [{"exclusive": True, "regex": "@irc_.*"}]}, "protocols": ["irc"]}))
    a = await homeservers(app_service_config_files=[str(registration)],
                          federation={"allow_public_rooms_over_federation": True})
    b = await homeservers()
    alice = await a.services.accounts.create_user("alice", "password-1")
    lobby = await a.services.rooms.create_room(alice, {"visibility": "public", "name": "Lobby", "topic": "hi"})
    games = await a.services.rooms.create_room(alice, {"visibility": "public", "name": "Games"})
    secret = await a.services.rooms.create_room(alice, {"name": "Secret"})
    irc = Requester(user_id="@ircbot:" + a.name, device_id="", token_id=-1, is_admin=False, is_guest=False,
                    app_service_id="irc")
    await a.services.directory.set_network_visibility(irc, "libera", secret, "public")
    await b.services.accounts.create_user("bob", "password-2")
    return a, b, lobby, games, secret


async def test_peers_get_our_public_rooms(directory):
    a, b, lobby, games, secret = directory
    fed = b.services.federation_client
    body = await fed.get_json(a.name, PUBLIC_ROOMS)
    assert sorted(r["room_id"] for r in body["chunk"]) == sorted([lobby, games])
    assert body["total_room_count_estimate"] == 2
    entry = next(r for r in body["chunk"] if r["room_id"] == lobby)
    assert entry == {"room_id": lobby, "name": "Lobby", "topic": "hi", "num_joined_members": 1,
                     "world_readable": False, "guest_can_join": False, "join_rule": "public"}

    page = await fed.get_json(a.name, PUBLIC_ROOMS, query={"limit": 1})
    assert len(page["chunk"]) == 1 and "next_batch" in page
    rest = await fed.get_json(a.name, PUBLIC_ROOMS, query={"limit": 1, "since": page["next_batch"]})
    assert {page["chunk"][0]["room_id"], rest["chunk"][0]["room_id"]} == {lobby, games}

    found = await fed.post_json(a.name, PUBLIC_ROOMS, content={"filter": {"generic_search_term": "lobb"}})
    assert [r["room_id"] for r in found["chunk"]] == [lobby]
    # The appservice's network directory: alone with its instance ID, beside ours with all networks.
    everything = await fed.post_json(a.name, PUBLIC_ROOMS, content={"include_all_networks": True})
    assert sorted(r["room_id"] for r in everything["chunk"]) == sorted([lobby, games, secret])
    everything = await fed.get_json(a.name, PUBLIC_ROOMS, query={"include_all_networks": "true"})
    assert len(everything["chunk"]) == 3
    libera = await fed.get_json(a.name, PUBLIC_ROOMS, query={"third_party_instance_id": "irc|libera"})
    assert [r["room_id"] for r in libera["chunk"]] == [secret] and libera["total_room_count_estimate"] == 1
    libera = await fed.post_json(a.name, PUBLIC_ROOMS, content={"third_party_instance_id": "irc|libera"})
    assert [r["room_id"] for r in libera["chunk"]] == [secret]
    none = await fed.get_json(a.name, PUBLIC_ROOMS, query={"third_party_instance_id": "irc|freenode"})
    assert none == {"chunk": [], "total_room_count_estimate": 0}
    for request in (
        fed.get_json(a.name, PUBLIC_ROOMS, query={"include_all_networks": "true", "third_party_instance_id": "x|y"}),
        fed.get_json(a.name, PUBLIC_ROOMS, query={"third_party_instance_id": "irc-freenode"}),
        fed.get_json(a.name, PUBLIC_ROOMS, query={"include_all_networks": "yes"}),
        fed.get_json(a.name, PUBLIC_ROOMS, query={"limit": "many"}),
        fed.get_json(a.name, PUBLIC_ROOMS, query={"since": "garbage"}),
        fed.post_json(a.name, PUBLIC_ROOMS, content={"filter": "lobby"}),
        fed.post_json(a.name, PUBLIC_ROOMS, content={"include_all_networks": "yes"}),
    ):
        with pytest.raises(RemoteError) as err:
            await request
        assert err.value.status == 400 and err.value.errcode in ("M_INVALID_PARAM", "M_BAD_JSON")


async def test_clients_ask_another_server_for_its_directory(directory, tls_files):
    a, b, lobby, games, secret = directory
    token = await login(b, "@bob:" + b.name, "password-2", tls_files)

    status, body = await client_request(b, "GET", f"/_matrix/client/v3/publicRooms?server={a.name}", tls_files)
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")  # relayed for users only
    status, body = await client_request(b, "GET", f"/_matrix/client/v3/publicRooms?server={a.name}", tls_files,
                                        token)
    assert status == 200 and sorted(r["room_id"] for r in body["chunk"]) == sorted([lobby, games])
    status, body = await client_request(b, "GET", f"/_matrix/client/v3/publicRooms?server={a.name}&limit=1",
                                        tls_files, token)
    assert status == 200 and len(body["chunk"]) == 1 and body["next_batch"]
    status, body = await client_request(b, "POST", f"/_matrix/client/v3/publicRooms?server={a.name}", tls_files,
                                        token, {"filter": {"generic_search_term": "games"}, "limit": 5})
    assert status == 200 and [r["room_id"] for r in body["chunk"]] == [games]
    # Our own name is our own directory (b has none published).
    status, body = await client_request(b, "GET", f"/_matrix/client/v3/publicRooms?server={b.name}", tls_files)
    assert (status, body["chunk"]) == (200, [])

    # The peer's own 400 is passed on; a server nobody can reach is a 502; a bad name a 400.
    status, body = await client_request(b, "GET", f"/_matrix/client/v3/publicRooms?server={a.name}&since=x",
                                        tls_files, token)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await client_request(b, "GET", "/_matrix/client/v3/publicRooms?server=localhost:1", tls_files,
                                        token)
    assert (status, body["errcode"]) == (502, "M_UNKNOWN")
    status, body = await client_request(b, "GET", "/_matrix/client/v3/publicRooms?server=bad%20name", tls_files,
                                        token)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await client_request(b, "POST", f"/_matrix/client/v3/publicRooms?server={a.name}", tls_files,
                                        token, {"limit": "ten"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_peers_are_refused_the_directory_unless_the_setting_allows_it(homeservers, tls_files):
    """allow_public_rooms_over_federation: false by default, as in Synapse: 403 M_FORBIDDEN to
    GET and POST; a client asking for such a server's directory gets the refusal passed on."""
    a, b = await homeservers(), await homeservers()
    alice = await a.services.accounts.create_user("alice", "password-1")
    await a.services.rooms.create_room(alice, {"visibility": "public", "name": "Lobby"})
    await b.services.accounts.create_user("bob", "password-2")
    fed = b.services.federation_client
    for request in (fed.get_json(a.name, PUBLIC_ROOMS), fed.post_json(a.name, PUBLIC_ROOMS, content={})):
        with pytest.raises(RemoteError) as err:
            await request
        assert err.value.status == 403 and err.value.errcode == "M_FORBIDDEN"
    token = await login(b, "@bob:" + b.name, "password-2", tls_files)
    status, body = await client_request(b, "GET", f"/_matrix/client/v3/publicRooms?server={a.name}", tls_files,
                                        token)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    # The server's own clients still read it.
    status, body = await client_request(a, "GET", "/_matrix/client/v3/publicRooms", tls_files)
    assert status == 200 and [r["name"] for r in body["chunk"]] == ["Lobby"]
