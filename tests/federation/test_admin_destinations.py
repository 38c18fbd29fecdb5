"""An admin's reset of a destination's back-off (POST .../reset_connection) wakes the running
federation sender: what waited for an hour's back-off is delivered at once, and the admin API
then shows the destination healthy with the delivered room."""

import asyncio

import pytest

from storage.federation_queue import FederationQueueStore
from tests.federation.conftest import backing_off, federation_overrides
from tests.federation.test_sender import Receiver

DESTINATIONS = "/_synapse/admin/v1/federation/destinations"


@pytest.fixture
def config_overrides(tls_files):
    return {"federation": federation_overrides(tls_files, retry_min_interval_ms=3_600_000)}


@pytest.fixture
async def sender(services):
    services.federation_sender.start()
    yield services.federation_sender
    await services.federation_sender.stop()
    await services.federation_client.close()


async def test_reset_connection_delivers_now_what_waited_for_the_back_off(admin, sender, stubs, db):
    stub = stubs()  # bound but not listening: the first attempt fails
    receiver = Receiver(stub)
    await sender.send_pdu({"room_id": "!r:test.local", "type": "m.room.message", "content": {"n": 1}},
                          [stub.name], stream_ordering=41)
    await backing_off(FederationQueueStore(db), stub.name)
    status, before = await admin.get(f"{DESTINATIONS}/{stub.name}")
    assert status == 200 and before["retry_interval"] == 3_600_000 and before["failure_ts"] is not None
    await stub.start()
    await asyncio.sleep(0.3)
    assert receiver.transactions == []  # still backing off (an hour)

    status, body = await admin.post(f"{DESTINATIONS}/{stub.name}/reset_connection", {})
    assert status == 200 and body == {}
    await receiver.wait_for(lambda: len(receiver.pdus()) == 1, timeout=5)
    await sender.idle()
    status, after = await admin.get(f"{DESTINATIONS}/{stub.name}")
    assert (after["retry_last_ts"], after["retry_interval"], after["failure_ts"],
            after["last_successful_stream_ordering"]) == (0, 0, None, 41)
    status, rooms = await admin.get(f"{DESTINATIONS}/{stub.name}/rooms")
    assert rooms == {"total": 1, "rooms": [{"room_id": "!r:test.local", "stream_ordering": 41}]}
