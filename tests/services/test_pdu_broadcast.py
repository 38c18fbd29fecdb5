"""Which servers a membership event goes to (services/federation/outbound.PduBroadcaster)."""

from __future__ import annotations

from types import SimpleNamespace

from homeserver.services.federation.outbound import PduBroadcaster


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, set[str]]] = []

    async def send_pdu(self, pdu, destinations, stream_ordering=None) -> None:
        self.sent.append((pdu["event_id"], set(destinations)))


def member_event(event_id: str, target: str, membership: str):
    return SimpleNamespace(event_id=event_id, room_id="!r:here", type="m.room.member", state_key=target,
                           membership=membership, pdu={"event_id": event_id})


async def test_an_invite_goes_to_the_rooms_servers_but_not_the_invitees_while_a_kick_reaches_the_kicked():
    sender = RecordingSender()

    async def joined(room_id: str) -> set[str]:
        return {"here", "joined.example"}

    broadcaster = PduBroadcaster(sender, joined, "here")
    await broadcaster.broadcast([member_event("$invite", "@bob:invited.example", "invite")])
    await broadcaster.broadcast([member_event("$kick", "@carol:kicked.example", "leave")])
    assert sender.sent == [("$invite", {"joined.example"}), ("$kick", {"joined.example", "kicked.example"})]
