"""Server notices through Synapse's admin API: the system user, the user's notices room (tagged
m.server_notice, invited or auto-joined), the notice seen through /sync, and what the user
may not do there."""

import json
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
SEND = "/_synapse/admin/v1/send_server_notice"
NOTICES = {"system_mxid_localpart": "notices", "system_mxid_display_name": "Server Notices",
           "room_name": "Notices", "room_topic": "From your admins"}
SYNC = f"{V3}/sync?filter=" + urllib.parse.quote(json.dumps({"room": {"timeline": {"limit": 50}}}))


def notice(text: str, user_id: str = "@alice:test.local") -> dict:
    return {"user_id": user_id, "content": {"msgtype": "m.text", "body": text}}


async def sync(user) -> dict:
    status, body = await user.get(SYNC)
    assert status == 200, body
    return body


def timeline(body: dict, room_id: str) -> list[dict]:
    return body["rooms"]["join"][room_id]["timeline"]["events"]


class TestInvited:
    @pytest.fixture
    def config_overrides(self):
        return {"server_notices": NOTICES}

    async def test_a_notice_arrives_in_the_users_notices_room_through_sync(self, admin, alice):
        status, body = await admin.post(SEND, notice("Maintenance tonight"))
        assert status == 200, body
        event_id = body["event_id"]

        invited = (await sync(alice))["rooms"]["invite"]
        assert len(invited) == 1
        room_id, invite = next(iter(invited.items()))
        stripped = {e["type"]: e for e in invite["invite_state"]["events"]}
        assert stripped["m.room.name"]["content"] == {"name": "Notices"}
        assert stripped["m.room.member"]["sender"] == "@notices:test.local"
        # The invitation cannot be rejected.
        status, body = await alice.post(f"{V3}/rooms/{room_id}/leave", {})
        assert status == 403 and body["errcode"] == "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"

        status, _ = await alice.post(f"{V3}/join/{room_id}", {})
        assert status == 200
        joined = (await sync(alice))["rooms"]["join"][room_id]
        events = joined["timeline"]["events"]
        sent = [e for e in events if e["event_id"] == event_id]
        assert sent and sent[0]["sender"] == "@notices:test.local"
        assert sent[0]["content"] == {"msgtype": "m.text", "body": "Maintenance tonight"}
        tags = [e for e in joined["account_data"]["events"] if e["type"] == "m.tag"]
        assert tags == [{"type": "m.tag", "content": {"tags": {"m.server_notice": {}}}}]
        state = {(e["type"], e.get("state_key")): e for e in joined["state"]["events"] + events if "state_key" in e}
        assert state[("m.room.topic", "")]["content"] == {"topic": "From your admins"}
        assert state[("m.room.member", "@notices:test.local")]["content"]["displayname"] == "Server Notices"

        # The user cannot write in it (power levels), but may leave it once joined.
        status, body = await alice.put(f"{V3}/rooms/{room_id}/send/m.room.message/t1", {"msgtype": "m.text",
                                                                                        "body": "hi"})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"

        # A second notice goes to the same room.
        status, second = await admin.post(SEND, notice("Done"))
        assert [e["event_id"] for e in timeline(await sync(alice), room_id)][-1] == second["event_id"]

        status, _ = await alice.post(f"{V3}/rooms/{room_id}/leave", {})
        assert status == 200
        # Gone from it: the next notice makes a new room.
        status, third = await admin.post(SEND, notice("New room"))
        invited = (await sync(alice))["rooms"]["invite"]
        assert list(invited) != [room_id] and len(invited) == 1

        status, audit = await admin.get("/_synapse/admin/v1/audit_log?action=server_notice.")
        assert [(e["target"], e["details"]["event_id"]) for e in audit["entries"]] == [
            ("@alice:test.local", third["event_id"]), ("@alice:test.local", second["event_id"]),
            ("@alice:test.local", event_id)]

    async def test_put_with_a_transaction_id_sends_once(self, admin, alice, bob):
        status, first = await admin.put(f"{SEND}/txn1", notice("once"))
        assert status == 200, first
        status, again = await admin.put(f"{SEND}/txn1", notice("once"))
        assert status == 200 and again == first
        status, other = await admin.put(f"{SEND}/txn2", notice("twice"))
        assert other["event_id"] != first["event_id"]
        # Same transaction ID, another user's notices room: another notice.
        status, to_bob = await admin.put(f"{SEND}/txn1", notice("bob", "@bob:test.local"))
        assert to_bob["event_id"] != first["event_id"]
        status, _ = await alice.post(f"{V3}/join/{next(iter((await sync(alice))['rooms']['invite']))}", {})
        texts = [e["content"].get("body") for e in next(iter((await sync(alice))["rooms"]["join"].values()))
                 ["timeline"]["events"] if e["type"] == "m.room.message"]
        assert texts == ["once", "twice"]

    async def test_state_events_and_bad_input(self, admin, alice):
        status, body = await admin.post(SEND, {"user_id": "@alice:test.local", "type": "m.room.topic",
                                               "state_key": "", "content": {"topic": "changed"}})
        assert status == 200, body
        for bad, errcode in (({"content": {}}, "M_MISSING_PARAM"), ({"user_id": "@alice:test.local"}, "M_MISSING_PARAM"),
                             (notice("x", "not-a-user"), "M_INVALID_PARAM"),
                             (notice("x", "@alice:elsewhere.example"), "M_INVALID_PARAM"),
                             ({"user_id": "@alice:test.local", "content": "text"}, "M_BAD_JSON"),
                             ({**notice("x"), "type": 5}, "M_BAD_JSON"),
                             ({**notice("x"), "state_key": 5}, "M_BAD_JSON")):
            status, body = await admin.post(SEND, bad)
            assert status == 400 and body["errcode"] == errcode, (bad, body)
        for user_id in ("@ghost:test.local", "@notices:test.local"):
            status, body = await admin.post(SEND, notice("x", user_id))
            assert status == 404 and body["errcode"] == "M_NOT_FOUND", user_id

    async def test_only_admins_send_notices(self, alice):
        status, body = await alice.post(SEND, notice("I am not an admin"))
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        status, body = await alice.put(f"{SEND}/t", notice("I am not an admin"))
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        assert (await sync(alice)).get("rooms", {}).get("invite", {}) == {}


class TestAutoJoin:
    @pytest.fixture
    def config_overrides(self):
        return {"server_notices": {**NOTICES, "auto_join": True}}

    async def test_the_user_is_joined_and_the_notice_is_in_their_timeline(self, admin, alice):
        status, body = await admin.post(SEND, notice("Welcome"))
        assert status == 200, body
        rooms = (await sync(alice))["rooms"]
        assert rooms.get("invite", {}) == {} and len(rooms["join"]) == 1
        room_id, joined = next(iter(rooms["join"].items()))
        assert [e["content"]["body"] for e in joined["timeline"]["events"] if e["type"] == "m.room.message"] == [
            "Welcome"]
        assert {"type": "m.tag", "content": {"tags": {"m.server_notice": {}}}} in joined["account_data"]["events"]


class TestNotConfigured:
    async def test_server_notices_are_off_without_the_section(self, admin, alice):
        status, body = await admin.post(SEND, notice("nobody hears"))
        assert status == 400 and body["errcode"] == "M_UNKNOWN"
        status, body = await admin.put(f"{SEND}/t1", notice("nobody hears"))
        assert status == 400
        status, body = await alice.post(f"{V3}/createRoom", {})
        status, _ = await alice.post(f"{V3}/rooms/{body['room_id']}/leave", {})
        assert status == 200  # no guard on leaving when notices are off
