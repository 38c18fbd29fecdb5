"""The admin view of the application services (GET /_synapse/admin/v1/appservices[/{id}], ChatGO's
own) and their figures in /metrics: registrations without tokens, and each feed answering or
backing off, with its stored transactions and its last success."""

from __future__ import annotations

import asyncio
import json

import pytest

from homeserver.services.admin import metrics as metrics_service
from homeserver.web_app import make_web_app
from tests.api.appservices.conftest import FakeAppService, appservice_config, write_registration
from tests.prometheus import scrape

V3 = "/_matrix/client/v3"
ADMIN = "/_synapse/admin/v1/appservices"


@pytest.fixture
async def bridge() -> FakeAppService:
    service = FakeAppService("bridge", "hs-bridge")
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def config_overrides(tmp_path, bridge) -> dict:
    silent = {**FakeAppService("silent", "hs-silent").registration(), "url": None}
    return appservice_config([
        str(write_registration(tmp_path / "bridge.yaml", bridge.registration(protocols=["irc"],
                                                                             receive_ephemeral=True))),
        str(write_registration(tmp_path / "silent.yaml", silent))])


@pytest.fixture
async def feeds(services):
    services.appservice_sender.start()
    yield
    await services.appservice_sender.stop()


@pytest.fixture
async def metrics_http(aiohttp_client, services, monkeypatch):
    monkeypatch.setattr(metrics_service, "FIGURES_TTL_S", 0)  # read the feeds' state on every scrape
    return await aiohttp_client(make_web_app(services, ["metrics"]))


async def test_the_list_shows_registrations_without_tokens(admin, tmp_path):
    status, body = await admin.get(ADMIN)
    assert status == 200, body
    assert body["total"] == 2 and [a["id"] for a in body["appservices"]] == ["bridge", "silent"]
    bridge, silent = body["appservices"]
    assert bridge["sender"] == "@bridgebot:test.local" and bridge["registration_file"] == str(tmp_path / "bridge.yaml")
    assert bridge["namespaces"] == {"users": [{"regex": "@_bridge_.*", "exclusive": True}],
                                    "aliases": [{"regex": "#_bridge_.*", "exclusive": True}],
                                    "rooms": [{"regex": "!_bridge_.*", "exclusive": False}]}
    assert (bridge["protocols"], bridge["rate_limited"], bridge["receive_ephemeral"], bridge["msc3202"]) == \
        (["irc"], False, True, False)
    # Never started here: it would start at the streams' ends, up, with nothing waiting.
    assert bridge["feed"] == {"up": True, "backing_off_until_ts": None, "retry_interval_ms": 0, "last_error": None,
                              "last_success_ts": None, "pending_transactions": 0, "pending_events": 0,
                              "oldest_pending_ts": None, "events_behind": 0, "fed_by": None}
    assert silent["url"] is None and silent["feed"] is None  # no URL, no traffic
    text = json.dumps(body)
    assert "as-bridge" not in text and "hs-bridge" not in text and "as-silent" not in text

    status, one = await admin.get(f"{ADMIN}/bridge")
    assert (status, one) == (200, bridge)


async def test_a_feed_backing_off_and_recovering(feeds, admin, client, bridge, metrics_http):
    as_bridge = client.with_token("as-bridge")
    before = await scrape(metrics_http)
    bridge.down = True
    # The bridge's own room: its sender's events concern it.
    status, room = await as_bridge.post(f"{V3}/createRoom", {"name": "Bridged"})
    assert status == 200, room
    await bridge.wait_for(lambda: len(bridge.attempts) >= 2)  # failed, retried, still failing

    status, entry = await admin.get(f"{ADMIN}/bridge")
    assert status == 200
    feed = entry["feed"]
    assert feed["up"] is False and feed["last_error"] == "HTTP 503" and feed["retry_interval_ms"] >= 50
    assert feed["backing_off_until_ts"] > 0 and feed["pending_transactions"] == 1
    assert feed["pending_events"] >= 5  # the room's creation events, in the stored transaction
    assert feed["oldest_pending_ts"] > 0 and feed["last_success_ts"] is None
    assert feed["fed_by"]  # this process holds its lease
    during = await scrape(metrics_http)
    assert during("chatgo_appservice_up", appservice="bridge") == 0
    assert during("chatgo_appservice_retry_interval_seconds", appservice="bridge") >= 0.05
    assert during("chatgo_appservice_pending_transactions", appservice="bridge") == 1
    assert during("chatgo_appservice_transactions_sent_total", appservice="bridge", result="failed") \
        - before("chatgo_appservice_transactions_sent_total", appservice="bridge", result="failed") >= 2
    assert not during.has("chatgo_appservice_up", appservice="silent")  # no feed, no figures

    bridge.down = False
    await bridge.wait_for(lambda: bridge.transactions)
    for _ in range(100):  # the 200 has arrived; the transaction is deleted just after
        status, entry = await admin.get(f"{ADMIN}/bridge")
        if entry["feed"]["pending_transactions"] == 0:
            break
        await asyncio.sleep(0.02)
    feed = entry["feed"]
    assert feed["up"] is True and feed["backing_off_until_ts"] is None and feed["last_error"] is None
    assert feed["last_success_ts"] > 0 and feed["pending_events"] == 0 and feed["oldest_pending_ts"] is None
    after = await scrape(metrics_http)
    assert after("chatgo_appservice_up", appservice="bridge") == 1
    assert not after.has("chatgo_appservice_retry_interval_seconds", appservice="bridge")
    assert after("chatgo_appservice_pending_transactions", appservice="bridge") == 0
    assert after("chatgo_appservice_last_success_timestamp_seconds", appservice="bridge") == \
        feed["last_success_ts"] / 1000
    delivered = sum(len(body["events"]) for _, body in bridge.transactions)
    assert after("chatgo_appservice_transactions_sent_total", appservice="bridge", result="sent") \
        - before("chatgo_appservice_transactions_sent_total", appservice="bridge", result="sent") \
        == len(bridge.transactions)
    assert after("chatgo_appservice_events_sent_total", appservice="bridge") \
        - before("chatgo_appservice_events_sent_total", appservice="bridge") == delivered


async def test_only_admins_and_only_registered_ids(admin, alice, client):
    status, body = await admin.get(f"{ADMIN}/nobody")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    for who, expected in ((alice, (403, "M_FORBIDDEN")), (client, (401, "M_MISSING_TOKEN")),
                          (client.with_token("as-bridge"), (403, "M_FORBIDDEN"))):
        for path in (ADMIN, f"{ADMIN}/bridge"):
            status, body = await who.get(path)
            assert (status, body["errcode"]) == expected, path
