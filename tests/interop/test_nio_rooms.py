"""A room's life through the real matrix-nio client: create, invite, join, messages, redaction,
kick, ban, unban, leave."""

from nio import (
    AsyncClient, AsyncClientConfig, JoinedMembersResponse, JoinResponse, RoomBanResponse, RoomCreateResponse,
    RoomForgetResponse, RoomGetStateEventResponse, RoomInviteResponse, RoomKickResponse, RoomLeaveResponse,
    RoomMessagesResponse, RoomPutStateResponse, RoomRedactResponse, RoomSendError, RoomSendResponse,
    RoomUnbanResponse,
)
from nio.api import RoomPreset, RoomVisibility

import pytest


async def logged_in(url: str, name: str) -> AsyncClient:
    nio = AsyncClient(url, config=AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False))
    response = await nio.register(name, f"pw-{name}-123")
    assert response.user_id == f"@{name}:test.local", response
    return nio


@pytest.fixture
async def url(client):
    return str(client.http.make_url("")).rstrip("/")


async def test_room_life_with_nio(url):
    alice, bob = await logged_in(url, "nalice"), await logged_in(url, "nbob")
    try:
        created = await alice.room_create(name="nio room", topic="testing", preset=RoomPreset.private_chat,
                                          visibility=RoomVisibility.private)
        assert isinstance(created, RoomCreateResponse), created
        room = created.room_id

        assert isinstance(await alice.room_invite(room, "@nbob:test.local"), RoomInviteResponse)
        joined = await bob.join(room)
        assert isinstance(joined, JoinResponse), joined

        members = await alice.joined_members(room)
        assert isinstance(members, JoinedMembersResponse), members
        assert {m.user_id for m in members.members} == {"@nalice:test.local", "@nbob:test.local"}

        sent = await bob.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"})
        assert isinstance(sent, RoomSendResponse), sent
        edit = await bob.room_send(room, "m.room.message", {
            "msgtype": "m.text", "body": "* hello, edited", "m.new_content": {"msgtype": "m.text", "body": "hello, edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": sent.event_id}})
        assert isinstance(edit, RoomSendResponse)
        reaction = await alice.room_send(room, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": sent.event_id, "key": "👍"}})
        assert isinstance(reaction, RoomSendResponse)

        history = await alice.room_messages(room, start="", limit=20)
        assert isinstance(history, RoomMessagesResponse), history
        bodies = [getattr(e, "body", None) for e in history.chunk]
        assert "hello from nio" in bodies

        topic = await alice.room_put_state(room, "m.room.topic", {"topic": "new topic"})
        assert isinstance(topic, RoomPutStateResponse), topic
        got = await bob.room_get_state_event(room, "m.room.topic")
        assert isinstance(got, RoomGetStateEventResponse) and got.content == {"topic": "new topic"}

        redacted = await alice.room_redact(room, sent.event_id, reason="moderation")
        assert isinstance(redacted, RoomRedactResponse), redacted

        assert isinstance(await alice.room_kick(room, "@nbob:test.local", reason="out"), RoomKickResponse)
        refused = await bob.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "let me back"})
        assert isinstance(refused, RoomSendError) and refused.status_code == "M_FORBIDDEN"
        assert isinstance(await alice.room_ban(room, "@nbob:test.local"), RoomBanResponse)
        assert isinstance(await alice.room_unban(room, "@nbob:test.local"), RoomUnbanResponse)
        assert isinstance(await alice.room_leave(room), RoomLeaveResponse)
        forgot = await alice.room_forget(room)
        assert isinstance(forgot, RoomForgetResponse), forgot
    finally:
        await alice.close()
        await bob.close()
