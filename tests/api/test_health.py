"""GET /health (liveness) and /health/ready (readiness: the database answers), on every listener."""

import pytest

from homeserver.app import build_services, make_web_app
from storage.database import Database
from tests.conftest import make_test_config
from tests.server_fixtures import MatrixClient


@pytest.mark.parametrize("resources", [["client"], ["federation"], ["keys"], ["media"], ["metrics"]])
async def test_every_listener_answers_health_checks(aiohttp_client, services, resources):
    http = await aiohttp_client(make_web_app(services, resources))
    for path in ("/health", "/health/ready"):
        resp = await http.get(path)
        assert (resp.status, await resp.text()) == (200, "OK"), (resources, path)


async def test_readiness_fails_while_the_database_is_down(aiohttp_client, db_url, signing_key):
    db = await Database.connect(db_url, min_size=1, max_size=2)
    services = build_services(make_test_config(), db, signing_key=signing_key)
    http = MatrixClient(await aiohttp_client(make_web_app(services, ["client"])))
    assert (await http.http.get("/health/ready")).status == 200
    await db.close()  # the database goes away
    resp = await http.http.get("/health/ready")
    assert (resp.status, await resp.text()) == (503, "database unavailable")
    resp = await http.http.get("/health")  # the process itself is still alive
    assert resp.status == 200
    await services.devices.flush()
    await services.pushers.close()
