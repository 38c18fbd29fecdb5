"""GET /metrics: Prometheus text that parses, served only on listeners with the `metrics`
resource, and counters that move when the server works."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from homeserver.services.admin import metrics as metrics_service
from homeserver.web_app import make_web_app
from tests.prometheus import scrape

V3 = "/_matrix/client/v3"
SEND_SERVLET = "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"


@pytest.fixture
async def metrics_http(aiohttp_client, services):
    """A listener serving only the metrics resource, beside the `client` fixture's."""
    return await aiohttp_client(make_web_app(services, ["metrics"]))


async def send(client, room_id: str, text: str) -> str:
    status, body = await client.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                                    {"msgtype": "m.text", "body": text})
    assert status == 200, body
    return body["event_id"]


async def test_metrics_are_served_only_where_configured(aiohttp_client, services, client, metrics_http):
    for path in ("/metrics", "/_synapse/metrics"):
        resp = await client.http.get(path)  # a client-only listener
        assert resp.status == 404, path
        assert (await resp.json())["errcode"] == "M_UNRECOGNIZED"
        resp = await metrics_http.get(path)
        assert resp.status == 200, path
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
        assert families["chatgo_events_persisted"].type == "counter"
        assert families["chatgo_http_request_duration_seconds"].type == "histogram"
        assert families["process_resident_memory_bytes"].samples[0].value > 0
    # The metrics listener serves no client API.
    assert (await metrics_http.get(f"{V3}/account/whoami")).status == 404
    both = await aiohttp_client(make_web_app(services, ["client", "metrics"]))
    assert (await both.get("/metrics")).status == 200


async def test_counters_move_under_load(alice, bob, metrics_http, monkeypatch):
    monkeypatch.setattr(metrics_service, "FIGURES_TTL_S", 0)  # read users and rooms on every scrape
    before = await scrape(metrics_http)
    status, body = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = body["room_id"]
    assert (await bob.post(f"{V3}/rooms/{room_id}/join", {}))[0] == 200
    status, body = await bob.get(f"{V3}/sync?timeout=0")
    since = body["next_batch"]

    # Bob long-polls; the gauge counts him while he waits.
    waiting = asyncio.create_task(bob.get(f"{V3}/sync?timeout=20000&since={since}"))
    for _ in range(200):
        during = await scrape(metrics_http)
        if during("chatgo_sync_waiters") == 1:
            break
        await asyncio.sleep(0.02)
    assert during("chatgo_sync_waiters") == 1
    sent = [await send(alice, room_id, f"message {i}") for i in range(5)]
    status, body = await waiting
    assert status == 200 and body["rooms"]["join"][room_id]["timeline"]["events"][0]["event_id"] == sent[0]
    assert (await alice.get(f"{V3}/no/such/endpoint"))[0] == 404
    after = await scrape(metrics_http)

    # Requests, by servlet (the route template), method and status.
    send_series = {"servlet": SEND_SERVLET, "method": "PUT", "status": "200"}
    assert after("chatgo_http_request_duration_seconds_count", **send_series) \
        - before("chatgo_http_request_duration_seconds_count", **send_series) == 5
    assert after("chatgo_http_request_duration_seconds_bucket", le="+Inf", **send_series) == \
        after("chatgo_http_request_duration_seconds_count", **send_series)
    assert after("chatgo_http_request_duration_seconds_sum", **send_series) > 0
    assert after("chatgo_http_request_duration_seconds_count", servlet="unmatched", method="GET", status="404") >= 1
    assert not any(("room" in dict(labels).get("servlet", "") and "!" in dict(labels)["servlet"])
                   for _, labels in after.samples), "a raw path leaked into the servlet label"
    sync_series = {"servlet": "/_matrix/client/v3/sync", "method": "GET", "status": "200"}
    assert after("chatgo_http_request_duration_seconds_count", **sync_series) >= 2
    assert after("chatgo_sync_waiters") == 0

    # Events persisted (the room's creation events, bob's join, the messages) and their latency.
    assert after("chatgo_events_persisted_total") - before("chatgo_events_persisted_total") >= 5 + 6
    assert after("chatgo_event_persist_duration_seconds_count") \
        - before("chatgo_event_persist_duration_seconds_count") >= 5 + 1
    assert after("chatgo_event_persist_duration_seconds_sum") > before("chatgo_event_persist_duration_seconds_sum")

    # The database: statements timed, the pool as configured by the `db` fixture (max 5).
    assert after("chatgo_db_query_duration_seconds_count") - before("chatgo_db_query_duration_seconds_count") > 20
    assert after("chatgo_db_pool_connections_max") == 5
    assert 1 <= after("chatgo_db_pool_connections") <= 5
    assert 0 <= after("chatgo_db_pool_connections_in_use") <= after("chatgo_db_pool_connections")

    # Caches: each send reads the room's auth events and the sender's token from memory.
    for cache in ("events", "room_snapshots", "access_tokens", "room_wakeups"):
        assert after("chatgo_cache_hits_total", cache=cache) > before("chatgo_cache_hits_total", cache=cache), cache
        assert after.has("chatgo_cache_misses_total", cache=cache) and after.has("chatgo_cache_evictions_total",
                                                                                   cache=cache)
    # The room's state events; messages are not kept parsed.
    assert after("chatgo_cache_size", cache="events") >= 6
    assert after("chatgo_cache_bytes", cache="events") <= after("chatgo_cache_max_bytes", cache="events")
    assert after("chatgo_cache_size", cache="access_tokens") == 2

    # Users and rooms, and the process.
    assert (after("chatgo_users"), after("chatgo_rooms")) == (2, 1)
    assert after("process_resident_memory_bytes") > 0
    assert after("process_cpu_seconds_total") >= before("process_cpu_seconds_total") > 0


async def test_user_and_room_figures_are_read_at_most_every_ttl(client, alice, metrics_http, monkeypatch):
    assert (await scrape(metrics_http))("chatgo_users") == 1
    await client.register("carol")
    # Within the TTL the figures are not read again (no count(*) per scrape)...
    queries = (await scrape(metrics_http))("chatgo_db_query_duration_seconds_count")
    again = await scrape(metrics_http)
    assert again("chatgo_users") == 1
    assert again("chatgo_db_query_duration_seconds_count") == queries
    # ...and once it has passed, they are.
    monkeypatch.setattr(metrics_service, "FIGURES_TTL_S", 0)
    assert (await scrape(metrics_http))("chatgo_users") == 2


async def test_each_server_has_its_own_registry(aiohttp_client, services, metrics_http, alice, db, signing_key):
    from homeserver.app import build_services
    from tests.conftest import make_test_config

    other = build_services(make_test_config(), db, signing_key=signing_key)
    other_http = await aiohttp_client(make_web_app(other, ["client", "metrics"]))
    status, body = await alice.post(f"{V3}/createRoom", {})
    assert status == 200
    mine, theirs = await scrape(metrics_http), await scrape(other_http)
    create = {"servlet": "/_matrix/client/v3/createRoom", "method": "POST", "status": "200"}
    assert (mine("chatgo_http_request_duration_seconds_count", **create),
            theirs("chatgo_http_request_duration_seconds_count", **create)) == (1, 0)
    assert theirs("chatgo_events_persisted_total") == 0 < mine("chatgo_events_persisted_total")
    await other.devices.flush()
    await other.pushers.close()


async def test_docs_list_every_metric_and_the_dashboard_uses_only_real_ones(metrics_http):
    import json
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    exposed = set((await scrape(metrics_http)).types)  # family names (counters without _total)
    listed = set(re.findall(r"^\| `(\w+)` \|", (docs / "metrics.md").read_text(), re.MULTILINE))
    assert {re.sub(r"_total$", "", name) for name in listed} == exposed
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    used = {re.sub(r"_(bucket|count|sum|total)$", "", name)
            for panel in dashboard["panels"] for target in panel.get("targets", [])
            for name in re.findall(r"\b((?:chatgo|process|python)_\w+)", target["expr"])}
    assert used and used <= exposed, used - exposed
