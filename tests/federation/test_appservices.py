"""Appservices on a federated server: an invite from another server to a ghost reaches the
bridge with the stripped state the invite came with, and the bridge's ghost joins the remote
room; a remote user's messages in that room reach the bridge too."""

from __future__ import annotations

from urllib.parse import quote

from tests.api.appservices.conftest import FakeAppService, write_registration
from tests.federation.matrix_client import Client, new_user, timeline


async def test_a_remote_invite_to_a_ghost_reaches_the_bridge(homeservers, tls_files, tmp_path):
    bridge = FakeAppService("bridge", "hs-bridge")
    await bridge.start()
    try:
        registration = write_registration(tmp_path / "bridge.yaml", bridge.registration())
        a = await homeservers(app_service_config_files=[str(registration)],
                              appservice={"retry_min_interval_ms": 50, "retry_max_interval_ms": 200})
        b = await homeservers()
        a.services.appservice_sender.start()
        as_client = Client(a.url, str(tls_files.ca_cert))
        as_client.token = "as-bridge"
        await as_client.request("POST", "/_matrix/client/v3/register",
                                {"type": "m.login.application_service", "username": "_bridge_zoe", "inhibit_login": True})
        ghost = f"@_bridge_zoe:{a.name}"
        bob = await new_user(b, tls_files, "bob")
        room_id = await bob.create_room(preset="private_chat", name="Over there")
        await bob.membership(room_id, "invite", ghost)

        invites = await bridge.wait_for(lambda: [e for e in bridge.events("m.room.member") if e["state_key"] == ghost])
        assert invites[0]["content"]["membership"] == "invite" and invites[0]["sender"] == bob.user_id
        stripped = {(e["type"], e.get("state_key")): e for e in invites[0]["unsigned"]["invite_room_state"]}
        assert stripped[("m.room.name", "")]["content"]["name"] == "Over there"

        # The bridge accepts for its ghost; then the remote room's messages reach it.
        await as_client.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/join",
                                {}, query={"user_id": ghost})
        await bob.wait_for(lambda s: any(e["type"] == "m.room.member" and e["state_key"] == ghost
                                         for e in timeline(s, room_id)))
        await bob.send(room_id, "hello, bridge")
        await bridge.wait_for(lambda: [e for e in bridge.events("m.room.message")
                                       if e["content"]["body"] == "hello, bridge" and e["sender"] == bob.user_id])
        await a.services.appservice_sender.stop()
    finally:
        await bridge.stop()
