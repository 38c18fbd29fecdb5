"""The federation client and its transport: IP denylist, TLS checks, errors carrying the peer's Matrix error."""

from __future__ import annotations

import pytest
from aiohttp import web

from federation.client import BadResponseError, RemoteError, UnreachableError, path
from federation.transport import IpRangeFilter
from homeserver.config import DEFAULT_IP_RANGE_DENYLIST
from tests.federation.conftest import bound_socket, make_federation_client


@pytest.fixture
async def clients(tls_files):
    made = []

    def make(**federation):
        client, _ = make_federation_client(tls_files, **federation)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def peer(stubs):
    stub = stubs()
    stub.route("GET", "/_matrix/federation/v1/version", lambda request: {"server": {"name": "stub"}})
    stub.route("GET", "/_matrix/federation/v1/forbidden",
               lambda request: web.json_response({"errcode": "M_FORBIDDEN", "error": "no"}, status=403))
    stub.route("GET", "/_matrix/federation/v1/broken", lambda request: web.Response(status=502, text="bad gateway"))
    stub.route("GET", "/_matrix/federation/v1/html", lambda request: web.Response(text="<html>"))
    return await stub.start()


@pytest.mark.parametrize("address,allowed", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.20.0.1", False), ("192.168.1.1", False),
    ("100.64.0.1", False), ("169.254.1.1", False), ("224.0.0.1", False), ("0.0.0.0", False),
    ("::1", False), ("fe80::1", False), ("fd00::1", False), ("ff02::1", False), ("::", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("8.8.8.8", True), ("2606:4700::1111", True), ("::ffff:8.8.8.8", True),
])
def test_default_denylist(address, allowed):
    assert IpRangeFilter(DEFAULT_IP_RANGE_DENYLIST).allows(address) is allowed


def test_allowlist_wins_but_never_for_the_unspecified_address():
    ip_filter = IpRangeFilter(DEFAULT_IP_RANGE_DENYLIST, ["127.0.0.0/8", "0.0.0.0/0"])
    assert ip_filter.allows("127.0.0.5")
    assert not ip_filter.allows("0.0.0.0")


async def test_loopback_is_refused_unless_allowlisted(clients, peer):
    with pytest.raises(UnreachableError, match="denied by federation.ip_range_denylist"):
        await clients(ip_range_allowlist=[]).get_json(peer.name, "/_matrix/federation/v1/version")
    with pytest.raises(UnreachableError, match="denied"):  # an IP literal too, not only resolved names
        await clients(ip_range_allowlist=[]).get_json(f"127.0.0.1:{peer.port}", "/_matrix/federation/v1/version")
    assert peer.hits == {}
    allowed = clients(ip_range_allowlist=["127.0.0.0/8"])
    assert await allowed.get_json(peer.name, "/_matrix/federation/v1/version") == {"server": {"name": "stub"}}
    # The certificate names 127.0.0.1 too, so the IP literal works with checks on.
    assert await allowed.get_json(f"127.0.0.1:{peer.port}", "/_matrix/federation/v1/version")


async def test_certificates_are_checked_against_the_configured_cas(clients, stubs):
    self_signed = stubs()
    self_signed.route("GET", "/_matrix/federation/v1/version", lambda request: {"ok": True})
    await self_signed.start(self_signed=True)
    with pytest.raises(UnreachableError, match="certificate"):
        await clients().get_json(self_signed.name, "/_matrix/federation/v1/version")
    # Checks off (development): accepted.
    assert await clients(verify_certificates=False).get_json(self_signed.name, "/_matrix/federation/v1/version") == {"ok": True}


async def test_the_system_cas_alone_do_not_trust_the_test_ca(clients, peer):
    with pytest.raises(UnreachableError, match="certificate"):
        await clients(ca_certificates=[]).get_json(peer.name, "/_matrix/federation/v1/version")


async def test_errors_carry_the_remote_matrix_error(clients, peer):
    client = clients()
    with pytest.raises(RemoteError) as err:
        await client.get_json(peer.name, "/_matrix/federation/v1/forbidden")
    assert (err.value.status, err.value.errcode, err.value.error) == (403, "M_FORBIDDEN", "no")
    assert err.value.to_matrix_error().to_json() == {"errcode": "M_FORBIDDEN", "error": "no"}
    with pytest.raises(RemoteError) as err:
        await client.get_json(peer.name, "/_matrix/federation/v1/broken")
    assert err.value.status == 502 and err.value.errcode is None
    assert err.value.to_matrix_error().status == 502
    with pytest.raises(RemoteError) as err:
        await client.get_json(peer.name, "/_matrix/federation/v1/nothing")
    assert err.value.status == 404
    # A peer refusing *us* must not look to a client like its own token was refused.
    assert RemoteError(peer.name, 401, {"errcode": "M_UNAUTHORIZED"}).to_matrix_error().status == 502
    with pytest.raises(BadResponseError):
        await client.get_json(peer.name, "/_matrix/federation/v1/html")


async def test_unreachable_servers(clients):
    with bound_socket() as closed:
        with pytest.raises(UnreachableError, match="cannot connect"):
            await clients().get_json(f"localhost:{closed.getsockname()[1]}", "/_matrix/federation/v1/version")
    with pytest.raises(UnreachableError):
        await clients().get_json("not a server", "/x")


def test_path_encodes_segments():
    assert path("/_matrix/federation/v1/send/{}", "a/b c") == "/_matrix/federation/v1/send/a%2Fb%20c"


async def test_version_endpoint(homeservers):
    a, b = await homeservers(), await homeservers()
    answer = await a.services.federation_client.get_json(b.name, "/_matrix/federation/v1/version", signed=False)
    assert answer["server"]["name"] == "ChatGO"
