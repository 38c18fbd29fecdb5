"""GET /health (liveness) and /health/ready (readiness: the database answers), on every listener."""

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
import yarl

from homeserver.app import build_services
from homeserver.services.admin import health as health_service
from homeserver.services.admin import metrics as metrics_service
from homeserver.web_app import make_web_app
from storage.database import Database
from tests.conftest import make_test_config


@pytest.mark.parametrize("resources", [["client"], ["federation"], ["keys"], ["media"], ["metrics"]])
async def test_every_listener_answers_health_checks(aiohttp_client, services, resources):
    http = await aiohttp_client(make_web_app(services, resources))
    for path in ("/health", "/health/ready"):
        resp = await http.get(path)
        assert (resp.status, await resp.text()) == (200, "OK"), (resources, path)


class DatabaseLink:
    """The network between the server and PostgreSQL, which the test can break: a relay on a
    Unix socket of its own that forwards to the test cluster. `cut()` closes every connection
    and refuses new ones (the database host went down); `stall()` stops forwarding bytes (it
    hangs); `restore()` brings it back."""

    def __init__(self, target_url: str) -> None:
        url = yarl.URL(target_url)
        self._host = url.query.get("host") or url.host or "localhost"
        self._port = url.port or 5432
        self._directory = Path(tempfile.mkdtemp(prefix="pglink-"))  # short: socket paths are limited
        self.url = (f"postgresql://{quote(url.user or '')}:{quote(url.password or '')}@{url.path}"
                    f"?host={self._directory}&port={self._port}")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            path = self._directory / f".s.PGSQL.{self._port}"
            path.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(self._relay, path=str(path))

    def stall(self) -> None:
        self._flowing.clear()

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        self._server = None
        (self._directory / f".s.PGSQL.{self._port}").unlink(missing_ok=True)
        for writer in list(self._writers):
            writer.close()
        self._flowing.set()

    def remove(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._host.startswith("/"):
            reader, writer = await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        self._writers |= {client_writer, writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    await self._flowing.wait()
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(client_reader, writer), pump(reader, client_writer))
        self._writers -= {client_writer, writer}


@pytest.fixture
async def linked(aiohttp_client, db_url, signing_key):
    """A server whose database sits behind a DatabaseLink: (link, its client HTTP, services)."""
    link = DatabaseLink(db_url)
    await link.restore()
    db = await Database.connect(link.url, min_size=1, max_size=2)
    services = build_services(make_test_config(), db, signing_key=signing_key)
    http = await aiohttp_client(make_web_app(services, ["client", "metrics"]))
    yield link, http, services
    await link.restore()
    await services.devices.flush()
    await services.pushers.close()
    await asyncio.wait_for(db.close(), 10)
    link.remove()


async def test_readiness_reports_the_database_down_while_it_is_down(linked):
    link, http, _ = linked
    resp = await http.get("/health/ready")
    assert (resp.status, await resp.text()) == (200, "OK")

    await link.cut()  # every connection of the pool dies, and new ones are refused
    resp = await http.get("/health/ready")
    assert (resp.status, await resp.text()) == (503, "database unavailable")
    resp = await http.get("/health")  # the process itself is alive: no restart wanted
    assert (resp.status, await resp.text()) == (200, "OK")
    # The metrics still answer (process figures, the last database figures).
    resp = await http.get("/metrics")
    assert resp.status == 200 and "process_resident_memory_bytes" in await resp.text()

    await link.restore()  # the database is back: the pool reconnects
    resp = await http.get("/health/ready")
    assert (resp.status, await resp.text()) == (200, "OK")


async def test_readiness_reports_a_database_that_hangs(linked, monkeypatch):
    monkeypatch.setattr(health_service, "READY_TIMEOUT_S", 0.5)
    monkeypatch.setattr(metrics_service, "FIGURES_TIMEOUT_S", 0.5)
    link, http, _ = linked
    assert (await http.get("/health/ready")).status == 200
    link.stall()  # connections stay open, but nothing comes back
    resp = await http.get("/health/ready")
    assert (resp.status, await resp.text()) == (503, "database unavailable")
    assert (await http.get("/health")).status == 200
    # /metrics does not hang either: it serves without the figures it could not read.
    resp = await asyncio.wait_for(http.get("/metrics"), 5)
    text = await resp.text()
    assert resp.status == 200 and "process_resident_memory_bytes" in text and "chatgo_users" not in text
    await link.restore()  # it answers again
    resp = await http.get("/health/ready")
    assert (resp.status, await resp.text()) == (200, "OK")


async def test_client_requests_get_503_while_the_database_is_down(linked):
    """A database that is down is not a bug of ours: clients get 503 M_UNKNOWN (retry later),
    not 500, and everything works again once it is back."""
    link, http, _ = linked
    resp = await http.post("/_matrix/client/v3/register", json={
        "username": "dbdown", "password": "s3cret-pass", "auth": {"type": "m.login.dummy"}})
    assert resp.status == 200, await resp.text()
    headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}

    await link.cut()
    for method, path, body in [
        ("POST", "/_matrix/client/v3/createRoom", {}),
        ("POST", "/_matrix/client/v3/login", {"type": "m.login.password", "password": "s3cret-pass",
                                              "identifier": {"type": "m.id.user", "user": "dbdown"}}),
        ("GET", "/_matrix/client/v3/profile/%40someone%3Aelsewhere.test", None),
    ]:
        resp = await http.request(method, path, json=body, headers=headers)
        assert resp.status == 503, (path, resp.status, await resp.text())
        assert (await resp.json())["errcode"] == "M_UNKNOWN", path

    await link.restore()
    resp = await http.post("/_matrix/client/v3/createRoom", json={}, headers=headers)
    assert resp.status == 200, await resp.text()
