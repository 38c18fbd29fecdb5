"""Server discovery, step by step: a real .well-known server over TLS on loopback, a fake DNS
resolver for SRV (the one outside part), and a hand-moved clock for the caches."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import dns.name
import dns.resolver
import pytest
from aiohttp import web

from federation.discovery import Discovery, Route, cache_period
from federation.transport import Transport
from tests.conftest import make_test_config
from tests.federation.conftest import federation_overrides

WELL_KNOWN = "/.well-known/matrix/server"


class FakeDNS:
    """SRV records by query name; anything else is NXDOMAIN."""

    def __init__(self, records: dict[str, list[tuple[int, int, str, int]]] | None = None) -> None:
        self.records = records or {}
        self.queries: list[str] = []

    async def resolve(self, qname: str, rdtype: str):
        assert rdtype == "SRV"
        self.queries.append(qname)
        if qname not in self.records:
            raise dns.resolver.NXDOMAIN()
        return [SimpleNamespace(priority=p, weight=w, target=dns.name.from_text(t), port=port)
                for p, w, t, port in self.records[qname]]


class Now:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def well_known(stubs):
    """A .well-known server for the host `localhost`: `answer` is what it says next."""
    stub = stubs()
    stub.answer = {"m.server": "delegated.test:4321"}
    stub.headers = {}

    def serve(request):
        answer = stub.answer
        if isinstance(answer, web.HTTPException):
            raise answer
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer, headers=stub.headers)

    def loop(request):
        raise web.HTTPFound("/loop")

    stub.route("GET", WELL_KNOWN, serve)
    stub.route("GET", "/elsewhere", lambda request: web.json_response({"m.server": "moved.test:1"}))
    stub.route("GET", "/loop", loop)
    return await stub.start()


@pytest.fixture
async def make_discovery(tls_files, well_known):
    transports = []

    def make(dns_records=None, **federation) -> tuple[Discovery, FakeDNS, Now]:
        config = make_test_config(federation=federation_overrides(tls_files, **federation))
        transport = Transport(config.federation, [Path(p) for p in config.federation.ca_certificates])
        transports.append(transport)
        fake_dns, now = FakeDNS(dns_records), Now()
        return Discovery(transport, dns_resolver=fake_dns, well_known_port=well_known.port, now=now), fake_dns, now

    yield make
    for transport in transports:
        await transport.close()


async def test_ip_literals_and_explicit_ports_need_no_lookup(make_discovery):
    discovery, dns_, _ = make_discovery()
    assert await discovery.resolve("1.2.3.4") == [Route("1.2.3.4", "1.2.3.4", 8448, "1.2.3.4", "1.2.3.4")]
    assert await discovery.resolve("1.2.3.4:80") == [Route("1.2.3.4:80", "1.2.3.4", 80, "1.2.3.4:80", "1.2.3.4")]
    (route,) = await discovery.resolve("[2001:db8::1]:8000")
    assert (route.host, route.port, route.host_header, route.base_url) == (
        "2001:db8::1", 8000, "[2001:db8::1]:8000", "https://[2001:db8::1]:8000")
    assert await discovery.resolve("example.test:1234") == [
        Route("example.test:1234", "example.test", 1234, "example.test:1234", "example.test")]
    assert dns_.queries == []
    with pytest.raises(ValueError):
        await discovery.resolve("bad name/x")


async def test_well_known_with_a_port(make_discovery, well_known):
    discovery, dns_, _ = make_discovery()
    (route,) = await discovery.resolve("localhost")
    assert route == Route("localhost", "delegated.test", 4321, "delegated.test:4321", "delegated.test")
    assert route.server_hostname is None and dns_.queries == []


async def test_well_known_with_an_ip_literal(make_discovery, well_known):
    well_known.answer = {"m.server": "127.0.0.2"}
    discovery, _, _ = make_discovery()
    assert await discovery.resolve("localhost") == [Route("localhost", "127.0.0.2", 8448, "127.0.0.2", "127.0.0.2")]


async def test_well_known_without_a_port_then_srv(make_discovery, well_known):
    well_known.answer = {"m.server": "delegated.test"}
    discovery, dns_, _ = make_discovery({
        "_matrix-fed._tcp.delegated.test": [(20, 0, "backup.test.", 8450), (10, 0, "target.test.", 8449)]})
    routes = await discovery.resolve("localhost")
    # The SRV targets in priority order; Host and certificate stay the delegated name.
    assert routes == [Route("localhost", "target.test", 8449, "delegated.test", "delegated.test"),
                      Route("localhost", "backup.test", 8450, "delegated.test", "delegated.test")]
    assert routes[0].server_hostname == "delegated.test"


async def test_well_known_without_a_port_then_deprecated_srv_then_8448(make_discovery, well_known):
    well_known.answer = {"m.server": "delegated.test"}
    discovery, dns_, _ = make_discovery({"_matrix._tcp.delegated.test": [(0, 0, "old.test.", 9000)]})
    assert await discovery.resolve("localhost") == [Route("localhost", "old.test", 9000, "delegated.test", "delegated.test")]
    assert dns_.queries == ["_matrix-fed._tcp.delegated.test", "_matrix._tcp.delegated.test"]
    dns_.records.clear()
    discovery._well_known.clear()
    assert await discovery.resolve("localhost") == [
        Route("localhost", "delegated.test", 8448, "delegated.test", "delegated.test")]


@pytest.mark.parametrize("answer", [
    web.Response(status=404), web.Response(status=200, body=b"not json"), {"m.server": 5}, {"other": 1},
    {"m.server": "bad/name"},
])
async def test_well_known_failure_falls_back_to_srv_then_8448(make_discovery, well_known, answer):
    well_known.answer = answer
    discovery, dns_, _ = make_discovery({"_matrix-fed._tcp.localhost": [(0, 0, "fed.test.", 8500)]})
    assert await discovery.resolve("localhost") == [Route("localhost", "fed.test", 8500, "localhost", "localhost")]
    dns_.records.clear()
    discovery._well_known.clear()
    assert await discovery.resolve("localhost") == [Route("localhost", "localhost", 8448, "localhost", "localhost")]
    assert dns_.queries[-2:] == ["_matrix-fed._tcp.localhost", "_matrix._tcp.localhost"]


async def test_well_known_is_fetched_with_certificate_checks(make_discovery, tls_files):
    # Without the test CA, the (CA-signed) certificate of the well-known server is refused.
    discovery, _, _ = make_discovery(ca_certificates=[])
    assert await discovery.resolve("localhost") == [Route("localhost", "localhost", 8448, "localhost", "localhost")]


async def test_well_known_follows_redirects(make_discovery, well_known):
    well_known.answer = web.HTTPFound("/elsewhere")
    discovery, _, _ = make_discovery()
    assert (await discovery.resolve("localhost"))[0].host == "moved.test"
    well_known.answer = web.HTTPFound("/loop")
    discovery, _, _ = make_discovery()
    assert (await discovery.resolve("localhost"))[0].host == "localhost"  # a loop is a failure


async def test_well_known_answers_are_cached(make_discovery, well_known):
    discovery, _, now = make_discovery()
    await discovery.resolve("localhost")
    well_known.answer = {"m.server": "changed.test:1"}
    now.t += 16 * 3600  # within the default 24 h (±10%), before its last fifth
    assert (await discovery.resolve("localhost"))[0].host == "delegated.test"
    assert well_known.hits[WELL_KNOWN] == 1
    now.t += 8 * 3600
    assert (await discovery.resolve("localhost"))[0].host == "changed.test"
    assert well_known.hits[WELL_KNOWN] == 2


async def test_well_known_cache_control_within_bounds(make_discovery, well_known):
    well_known.headers = {"Cache-Control": "public, max-age=600"}
    discovery, _, now = make_discovery()
    await discovery.resolve("localhost")
    now.t += 400
    await discovery.resolve("localhost")
    assert well_known.hits[WELL_KNOWN] == 1
    now.t += 100  # past 600 - 20%
    await discovery.resolve("localhost")
    assert well_known.hits[WELL_KNOWN] == 2
    # max-age=10 still caches for the 5 minute minimum.
    well_known.headers = {"Cache-Control": "max-age=10"}
    now.t += 1000
    await discovery.resolve("localhost")
    now.t += 200
    await discovery.resolve("localhost")
    assert well_known.hits[WELL_KNOWN] == 3


async def test_well_known_failures_are_cached_for_an_hour(make_discovery, well_known):
    well_known.answer = web.Response(status=404)
    discovery, _, now = make_discovery()
    await discovery.resolve("localhost")
    now.t += 40 * 60
    await discovery.resolve("localhost")
    assert well_known.hits[WELL_KNOWN] == 1
    now.t += 30 * 60
    await discovery.resolve("localhost")
    assert well_known.hits[WELL_KNOWN] == 2


async def test_a_valid_answer_survives_a_transient_failure(make_discovery, well_known):
    discovery, _, now = make_discovery()
    await discovery.resolve("localhost")
    well_known.answer = web.Response(status=503)
    now.t += 21.3 * 3600  # in the refresh window (from 0.8 x 21.6 h at the earliest), not yet expired
    assert (await discovery.resolve("localhost"))[0].host == "delegated.test"
    assert well_known.hits[WELL_KNOWN] == 2


async def test_server_name_overrides_skip_discovery(make_discovery):
    discovery, dns_, _ = make_discovery(server_name_overrides=[
        {"server_name": "hs1.test", "host": "127.0.0.1", "port": 8481}])
    (route,) = await discovery.resolve("hs1.test")
    assert route == Route("hs1.test", "127.0.0.1", 8481, "hs1.test", "hs1.test")
    assert route.server_hostname == "hs1.test" and dns_.queries == []


def test_cache_period_headers():
    from multidict import CIMultiDict

    assert cache_period(CIMultiDict(), 0) is None
    assert cache_period(CIMultiDict({"Cache-Control": "max-age=60"}), 0) == 60
    assert cache_period(CIMultiDict({"Cache-Control": "no-store, max-age=60"}), 0) == 0
    assert cache_period(CIMultiDict({"Expires": "Thu, 01 Jan 1970 00:10:00 GMT"}), 0) == 600
    assert cache_period(CIMultiDict({"Expires": "0"}), 0) == 0
