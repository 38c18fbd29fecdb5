"""Federation test network: real ChatGO servers over TLS on loopback.

A test CA (made once per session with cryptography) signs a certificate for `localhost` and
127.0.0.1; the servers present it and trust the CA through `federation.ca_certificates`, so
certificate checking stays on. `homeservers()` starts any number of servers, each named
`localhost:<port>` with its own database (cloned from the migrated template), signing key and
HTTPS listener serving client, federation and keys resources. `synapse` starts a real Synapse
(tests/federation/synapse.py) with the same certificate, trusting the same CA; a failing
test's report ends with the tail of Synapse's log.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from signedjson.key import generate_signing_key

from federation.tls import server_ssl_context
from homeserver.app import build_services
from homeserver.services.graph import Services
from homeserver.web_app import make_web_app
from storage.database import Database
from tests.conftest import database_url, make_test_config
from tests.federation.synapse import SynapseServer, synapse_python
from tests.federation.synapse import install as install_synapse

_counter = itertools.count()
ALL_RESOURCES = ["client", "federation", "keys", "media"]


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path
    self_signed_cert: Path
    self_signed_key: Path

    def server_context(self, *, self_signed: bool = False) -> ssl.SSLContext:
        if self_signed:
            return server_ssl_context(self.self_signed_cert, self.self_signed_key)
        return server_ssl_context(self.cert, self.key)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: Any, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    """A CA, a localhost certificate it signed, and a self-signed localhost certificate."""
    directory = tmp_path_factory.mktemp("federation-tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("ChatGO test CA")).issuer_name(_name("ChatGO test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])

    def leaf(issuer_key: Any, issuer: x509.Name, key: Any) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(names, critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if issuer_key is ca_key:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    server_key = ec.generate_private_key(ec.SECP256R1())
    self_key = ec.generate_private_key(ec.SECP256R1())
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key",
                     directory / "self.crt", directory / "self.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(leaf(ca_key, ca_cert.subject, server_key).public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, files.key)
    files.self_signed_cert.write_bytes(
        leaf(self_key, _name("localhost"), self_key).public_bytes(serialization.Encoding.PEM))
    _write_key(self_key, files.self_signed_key)
    return files


def bound_socket() -> socket.socket:
    """A listening-ready TCP socket on a free loopback port (bound now, so no one takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def federation_overrides(tls_files: TlsFiles, **extra: Any) -> dict[str, Any]:
    """Test-network federation settings: loopback allowed, certificates checked against the test CA."""
    return {"ip_range_allowlist": ["127.0.0.0/8", "::1/128"], "ca_certificates": [str(tls_files.ca_cert)],
            "verify_certificates": True, **extra}


@dataclass
class Homeserver:
    name: str
    port: int
    services: Services
    signing_key: Any
    runner: web.AppRunner | None = None
    db: Database | None = None
    # How to start it again on the same database, key and port (set by the fixture).
    _restart: Callable[["Homeserver"], Any] | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def shut_down(self) -> None:
        """Stop serving and close the services (as a process exit would), keeping the database."""
        await self.stop()
        await close_services(self.services)

    async def restart(self) -> None:
        """Start again after `shut_down`: new services on the same database, key and port."""
        assert self._restart is not None
        await self._restart(self)


async def close_services(services: Services) -> None:
    await services.partial_state_resync.stop()
    await services.federation_sender.stop()
    await services.federation_client.close()
    await services.devices.flush()
    await services.pushers.close()


@pytest.fixture
async def homeservers(pg_server_url, template_database, tls_files) -> AsyncIterator[Callable[..., Any]]:
    """`await homeservers(federation={...}, tls=True, self_signed=False, extra_modules=[])`
    starts one more server and returns its `Homeserver`."""
    created: list[tuple[Homeserver, Database, str]] = []

    async def start(*, federation: dict[str, Any] | None = None, self_signed: bool = False,
                    extra_modules: list[Any] = (), clock: Any = None, **overrides: Any) -> Homeserver:
        name = f"chatgo_fed_{os.getpid()}_{next(_counter)}"
        conn = await asyncpg.connect(pg_server_url, database="postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        finally:
            await conn.close()
        db = await Database.connect(database_url(pg_server_url, name), min_size=1, max_size=5)
        sock = bound_socket()
        port = sock.getsockname()[1]
        server_name = f"localhost:{port}"
        config = make_test_config(
            server_name=server_name, federation=federation_overrides(tls_files, **(federation or {})),
            listeners=[{"port": port, "resources": ALL_RESOURCES, "tls": True}], **overrides,
        )
        signing_key = generate_signing_key(f"k{next(_counter)}")

        async def serve(server: Homeserver | None, sock: socket.socket) -> Homeserver:
            if server is None:
                services = build_services(config, db, clock, signing_key=signing_key)
            else:  # a restart: stream positions come from the database, as for `chatgo run`
                from storage.aux_stream import AuxStreamStore
                from storage.events import EventStore

                services = build_services(config, db, clock, signing_key=signing_key,
                                          stream_position=await EventStore(db).current_stream_position(),
                                          aux_position=await AuxStreamStore(db).current_position())
            app = make_web_app(services, ALL_RESOURCES)
            if extra_modules:
                from homeserver.api.http import install_routes

                install_routes(app, extra_modules, services)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock, ssl_context=tls_files.server_context(self_signed=self_signed)).start()
            services.federation_sender.start()
            if server is None:
                return Homeserver(server_name, port, services, signing_key, runner, db, _restart=restart)
            server.services, server.runner = services, runner
            return server

        async def restart(server: Homeserver) -> None:
            again = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
            await serve(server, again)

        server = await serve(None, sock)
        created.append((server, db, name))
        return server

    yield start
    for server, db, name in created:
        await server.stop()
        await close_services(server.services)
        await db.close()
        conn = await asyncpg.connect(pg_server_url, database="postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


_SYNAPSES = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def synapse_interpreter() -> Path:
    """The Python of the Synapse virtualenv, installed on first use (about 25 s, once per machine).

    Skips when it cannot be installed (no PyPI), unless CHATGO_REQUIRE_SYNAPSE=1 (CI)."""
    python = synapse_python()
    if python is None:
        try:
            python = install_synapse()
        except (OSError, subprocess.CalledProcessError) as exc:
            message = f"Synapse is not installed and `python -m tests.federation.synapse install` failed: {exc}"
            if os.environ.get("CHATGO_REQUIRE_SYNAPSE") == "1":
                pytest.fail(message)
            pytest.skip(message)
    return python


@pytest.fixture(scope="session")
def shared_synapse(tmp_path_factory, tls_files, synapse_interpreter) -> Iterator[SynapseServer]:
    """One Synapse for the whole session: tests make fresh users and rooms on it."""
    server = SynapseServer(tmp_path_factory.mktemp("synapse"), tls_files, synapse_interpreter)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def synapse(request, shared_synapse) -> SynapseServer:
    """The session's Synapse (`localhost:<port>`); a failing test's report shows the part of
    its log written during the test. Give users and aliases unique names (`register` does)."""
    if shared_synapse.process is None or shared_synapse.process.poll() is not None:
        pytest.fail("the shared Synapse is not running:\n" + shared_synapse.log_tail())
    request.node.stash.setdefault(_SYNAPSES, []).append((shared_synapse, shared_synapse.log_size()))
    return shared_synapse


@pytest.fixture
def synapses(request, tls_files, tmp_path, synapse_interpreter) -> Iterator[Callable[[], SynapseServer]]:
    """`synapses()` starts one more Synapse of the test's own (1.5 to 5 s; blocking: from async
    code, `await asyncio.to_thread(synapses)`)."""
    started: list[SynapseServer] = []

    def start() -> SynapseServer:
        server = SynapseServer(tmp_path / f"synapse{len(started)}", tls_files, synapse_interpreter)
        request.node.stash.setdefault(_SYNAPSES, []).append((server, 0))
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server, offset in item.stash.get(_SYNAPSES, []):
            report.sections.append((f"Synapse {server.name} log ({report.when})", server.log_tail(150, offset)))


class FakeClock:
    """A clock the test moves by hand (milliseconds)."""

    def __init__(self, now_ms: int | None = None) -> None:
        import time

        self.now = now_ms if now_ms is not None else int(time.time() * 1000)

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class StubServer:
    """A bare HTTPS server on loopback (named `localhost:<port>`) with handlers the test sets."""

    def __init__(self, tls_files: TlsFiles) -> None:
        self.tls_files = tls_files
        self.app = web.Application()
        self.hits: dict[str, int] = {}
        self.runner: web.AppRunner | None = None
        self.sock = bound_socket()
        self.port = self.sock.getsockname()[1]
        self.name = f"localhost:{self.port}"

    def route(self, method: str, path: str, handler: Callable[[web.Request], Any]) -> None:
        async def counted(request: web.Request) -> web.StreamResponse:
            self.hits[path] = self.hits.get(path, 0) + 1
            result = handler(request)
            if hasattr(result, "__await__"):
                result = await result
            return result if isinstance(result, web.StreamResponse) else web.json_response(result)

        self.app.router.add_route(method, path, counted)

    async def start(self, *, self_signed: bool = False) -> "StubServer":
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock, ssl_context=self.tls_files.server_context(self_signed=self_signed)).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def stubs(tls_files) -> AsyncIterator[Callable[[], StubServer]]:
    made: list[StubServer] = []

    def make() -> StubServer:
        stub = StubServer(tls_files)
        made.append(stub)
        return stub

    yield make
    for stub in made:
        await stub.stop()
        stub.sock.close()


async def backing_off(store: Any, destination: str, interval: int | None = None, *, tries: int = 200) -> Any:
    """Poll a FederationQueueStore until the sender backs `destination` off (at exactly
    `interval` ms when given); returns its retry state."""
    import asyncio

    for _ in range(tries):
        retry = await store.retry_state(destination)
        if retry is not None and retry.retry_interval and (interval is None or retry.retry_interval == interval):
            return retry
        await asyncio.sleep(0.02)
    raise AssertionError(f"{destination} was never backed off")


def make_federation_client(tls_files: TlsFiles, server_name: str = "tester.test", signing_key: Any = None,
                           **federation: Any):
    """A FederationClient of our own (not inside a server), for the test network."""
    from federation.client import FederationClient
    from federation.discovery import Discovery
    from federation.transport import Transport

    config = make_test_config(server_name=server_name, federation=federation_overrides(tls_files, **federation))
    transport = Transport(config.federation, [Path(p) for p in config.federation.ca_certificates])
    return FederationClient(transport, Discovery(transport), server_name,
                            signing_key or generate_signing_key("tester")), config
