"""/metrics across servers: transactions sent and received per server, the outbound queue's
depth and a failing destination's back-off, between two real ChatGO servers over TLS."""

from __future__ import annotations

import asyncio

from homeserver.services.admin import metrics as metrics_service
from homeserver.web_app import make_web_app
from tests.federation.conftest import bound_socket
from tests.prometheus import scrape


async def test_federation_metrics(homeservers, aiohttp_client, monkeypatch):
    monkeypatch.setattr(metrics_service, "FIGURES_TTL_S", 0)  # queue and back-off read on every scrape
    a, b = await homeservers(), await homeservers()
    a_metrics = await aiohttp_client(make_web_app(a.services, ["metrics"]))
    b_metrics = await aiohttp_client(make_web_app(b.services, ["metrics"]))
    closed = bound_socket()  # a port nobody listens on: a destination that is down
    dead = f"localhost:{closed.getsockname()[1]}"

    sender = a.services.federation_sender
    await sender.send_edu([b.name], "org.chatgo.test", {"n": 1})
    await sender.send_edu([dead], "org.chatgo.test", {"n": 2})
    for _ in range(500):
        sent, received = await scrape(a_metrics), await scrape(b_metrics)
        if (sent("chatgo_federation_transactions_sent_total", destination=b.name, result="sent")
                and sent("chatgo_federation_destinations_backing_off")
                and received("chatgo_federation_transactions_received_total", origin=a.name, result="processed")
                and not sent.has("chatgo_federation_queue_depth", destination=b.name, kind="edu")):
            break  # (the sender removes a delivered item just after counting its transaction)
        await asyncio.sleep(0.02)
    closed.close()

    assert sent("chatgo_federation_transactions_sent_total", destination=b.name, result="sent") == 1
    assert sent("chatgo_federation_edus_sent_total", destination=b.name) == 1
    assert sent("chatgo_federation_pdus_sent_total", destination=b.name) == 0
    assert received("chatgo_federation_transactions_received_total", origin=a.name, result="processed") == 1
    assert received("chatgo_federation_edus_received_total", origin=a.name) == 1
    # The destination that is down: a failed transaction, its EDU still queued, backing off.
    assert sent("chatgo_federation_transactions_sent_total", destination=dead, result="failed") == 1
    assert sent("chatgo_federation_queue_depth", destination=dead, kind="edu") == 1
    assert not sent.has("chatgo_federation_queue_depth", destination=b.name, kind="edu")  # delivered
    assert sent("chatgo_federation_destination_retry_interval_seconds", destination=dead) == 30
    assert sent("chatgo_federation_destinations_backing_off") == 1
