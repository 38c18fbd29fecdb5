"""Listeners serve any set of resources: clients and peers together on one TLS port, or apart."""

import ssl

import aiohttp

from homeserver.web_app import modules_for


def paths(resources):
    from homeserver.api.http import routes_table

    return {p for info in routes_table(modules_for(resources)) for p in info.full_paths()}


def test_resources_choose_the_handlers():
    federation_only = paths(["federation"])
    assert "/_matrix/federation/v1/version" in federation_only
    assert not any(p.startswith(("/_matrix/client", "/_matrix/key")) for p in federation_only)
    assert paths(["keys"]) - {"/health", "/health/ready"} == {
        "/_matrix/key/v2/server", "/_matrix/key/v2/server/{keyId}", "/_matrix/key/v2/query",
        "/_matrix/key/v2/query/{serverName}", "/_matrix/key/v2/query/{serverName}/{keyId}"}
    assert not any(p.startswith(("/_matrix/federation", "/_matrix/key")) for p in paths(["client"]))


async def test_one_tls_port_serves_clients_and_peers(homeservers, tls_files):
    server = await homeservers()  # client, federation, keys and media on one HTTPS listener
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    async with aiohttp.ClientSession() as session:
        for path in ("/_matrix/client/versions", "/_matrix/federation/v1/version", "/_matrix/key/v2/server",
                     "/.well-known/matrix/server"):
            async with session.get(server.url + path, ssl=context) as resp:
                assert resp.status == 200, path
