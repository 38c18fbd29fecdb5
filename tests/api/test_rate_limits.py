"""Rate limits over real HTTP, one class per limit: with a small limit configured (every other
one generous), the request past it gets 429 M_LIMIT_EXCEEDED with retry_after_ms and a
Retry-After header, whichever route reaches the action."""

from __future__ import annotations

import uuid

import pytest

from tests.api.ratelimits import assert_limited, limits
from tests.smtp import MailServer

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"
# per_second 0.5: the next token comes within 2 s (so Retry-After is 1 or 2, rounded up).
SMALL = {"per_second": 0.5, "burst_count": 2}
# So slow that nothing leaks back during a test.
TWO = {"per_second": 0.001, "burst_count": 2}
ONE = {"per_second": 0.001, "burst_count": 1}


async def create_room(user, **body) -> str:
    status, resp = await user.post(f"{V3}/createRoom", {"preset": "public_chat", **body})
    assert status == 200, resp
    return resp["room_id"]


async def send(user, room_id: str, text: str = "hi") -> tuple[int, dict]:
    return await user.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                          {"msgtype": "m.text", "body": text})


@pytest.fixture
async def carol(client):
    return client.with_token((await client.register("carol"))["access_token"])


@pytest.fixture
async def dave(client):
    return client.with_token((await client.register("dave"))["access_token"])


class TestMessages:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_message": SMALL})

    async def test_messages_and_state_events_share_the_senders_limit(self, alice, bob):
        room = await create_room(alice)
        assert (await send(alice, room))[0] == 200
        status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.topic", {"topic": "t"})
        assert status == 200, body
        await assert_limited(alice, "PUT", f"{V3}/rooms/{room}/send/m.room.message/x1",
                             {"msgtype": "m.text", "body": "too many"}, max_retry_ms=2000)
        await assert_limited(alice, "PUT", f"{V3}/rooms/{room}/state/m.room.name", {"name": "n"})
        # Per sender: bob is not held back by alice's messages.
        assert (await bob.post(f"{V3}/join/{room}", {}))[0] == 200
        assert (await send(bob, room))[0] == 200

    async def test_profile_changes_count_as_messages(self, alice):
        assert (await alice.put(f"{V3}/profile/@alice:test.local/displayname", {"displayname": "A"}))[0] == 200
        assert (await alice.put(f"{V3}/profile/@alice:test.local/avatar_url", {"avatar_url": "mxc://x/y"}))[0] == 200
        await assert_limited(alice, "PUT", f"{V3}/profile/@alice:test.local/displayname", {"displayname": "B"})
        await assert_limited(alice, "DELETE", f"{V3}/profile/@alice:test.local/avatar_url")

    async def test_server_admins_are_exempt(self, admin):
        room = await create_room(admin)
        for n in range(5):
            status, body = await send(admin, room, f"m{n}")
            assert status == 200, body


class TestAdminRedactions:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_message": TWO, "rc_admin_redaction": ONE})

    async def test_redacting_others_events_has_its_own_limit(self, alice, bob):
        room = await create_room(alice)
        assert (await bob.post(f"{V3}/join/{room}", {}))[0] == 200
        first = (await send(bob, room, "spam 1"))[1]["event_id"]
        second = (await send(bob, room, "spam 2"))[1]["event_id"]
        status, body = await alice.put(f"{V3}/rooms/{room}/redact/{first}/r1", {})
        assert status == 200, body
        await assert_limited(alice, "PUT", f"{V3}/rooms/{room}/redact/{second}/r2", {})
        # The moderator's own messages are counted apart from their redactions of others'.
        assert (await send(alice, room))[0] == 200


class TestJoins:
    @pytest.fixture
    def config_overrides(self):
        return {**limits({"rc_joins": {"local": TWO, "remote": ONE}}), "federation": {"domain_allowlist": []}}

    async def test_local_joins_through_every_route(self, alice, bob):
        rooms = [await create_room(alice) for _ in range(3)]
        assert (await bob.post(f"{V3}/join/{rooms[0]}", {}))[0] == 200
        # Joining a room one is already in is not a join (no token used), as Synapse.
        assert (await bob.post(f"{V3}/rooms/{rooms[0]}/join", {}))[0] == 200
        assert (await bob.post(f"{V3}/rooms/{rooms[1]}/join", {}))[0] == 200
        # A join by state event is limited alike.
        await assert_limited(bob, "PUT", f"{V3}/rooms/{rooms[2]}/state/m.room.member/@bob:test.local",
                             {"membership": "join"})
        await assert_limited(bob, "POST", f"{V3}/join/{rooms[2]}", {})

    async def test_joins_through_other_servers(self, bob):
        status, body = await bob.post(f"{V3}/join/!nowhere:elsewhere.test", {})
        assert status != 429, body  # tried (and failed: federation is off here)
        await assert_limited(bob, "POST", f"{V3}/join/!nowhere:elsewhere.test", {})


class TestJoinsPerRoom:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_joins_per_room": TWO})

    async def test_a_room_takes_a_burst_of_joins(self, alice, bob, carol, dave):
        room = await create_room(alice)
        other = await create_room(alice)
        assert (await bob.post(f"{V3}/join/{room}", {}))[0] == 200
        assert (await carol.post(f"{V3}/join/{room}", {}))[0] == 200
        await assert_limited(dave, "POST", f"{V3}/rooms/{room}/join", {})
        assert (await dave.post(f"{V3}/join/{other}", {}))[0] == 200


class TestInvitesPerIssuer:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_invites": {"per_issuer": TWO}})

    async def test_an_inviter_sends_a_burst_of_invites(self, alice, bob, carol, dave):
        room, other = await create_room(alice), await create_room(alice)
        assert (await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"}))[0] == 200
        # An invite by state event counts too.
        status, body = await alice.put(f"{V3}/rooms/{room}/state/m.room.member/@carol:test.local",
                                       {"membership": "invite"})
        assert status == 200, body
        await assert_limited(alice, "POST", f"{V3}/rooms/{other}/invite", {"user_id": "@dave:test.local"})


class TestInvitesPerInvitee:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_invites": {"per_user": ONE}})

    async def test_a_user_receives_a_burst_of_invites(self, alice, bob, carol):
        room = await create_room(alice)
        other = await create_room(carol)
        assert (await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": "@bob:test.local"}))[0] == 200
        await assert_limited(carol, "POST", f"{V3}/rooms/{other}/invite", {"user_id": "@bob:test.local"})


class TestInvitesPerRoom:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_invites": {"per_room": TWO}})

    async def test_a_room_takes_a_burst_of_invites(self, alice, bob, carol, dave):
        room, other = await create_room(alice), await create_room(alice)
        for invitee in ("@bob:test.local", "@carol:test.local"):
            assert (await alice.post(f"{V3}/rooms/{room}/invite", {"user_id": invitee}))[0] == 200
        await assert_limited(alice, "POST", f"{V3}/rooms/{room}/invite", {"user_id": "@dave:test.local"})
        assert (await alice.post(f"{V3}/rooms/{other}/invite", {"user_id": "@dave:test.local"}))[0] == 200

    async def test_create_room_with_more_invites_than_a_burst(self, alice):
        status, body = await alice.post(f"{V3}/createRoom", {
            "invite": ["@bob:test.local", "@carol:test.local", "@dave:test.local"]})
        assert (status, body["errcode"]) == (400, "M_UNKNOWN"), body


class TestRoomCreation:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_room_creation": TWO})

    async def test_room_creation(self, alice, bob):
        await create_room(alice)
        await create_room(alice)
        await assert_limited(alice, "POST", f"{V3}/createRoom", {})
        await create_room(bob)


class TestLogin:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_login": {"address": TWO}})

    async def test_attempts_per_client_address(self, client, alice):
        for _ in range(2):
            status, _ = await client.post(f"{V3}/login", {
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "no"})
            assert status == 403
        await assert_limited(client, "POST", f"{V3}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "s3cret-pass"})


class TestLoginFailures:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_login": {"failed_attempts": TWO}})

    async def test_failed_attempts_per_account(self, client, alice, bob):
        for _ in range(2):
            status, _ = await client.post(f"{V3}/login", {
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "no"})
            assert status == 403
        # Even the right password waits now; another account does not.
        await assert_limited(client, "POST", f"{V3}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "@Alice:test.local"},
            "password": "s3cret-pass"})
        status, body = await client.post(f"{V3}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "s3cret-pass"})
        assert status == 200, body


class TestLoginPerAccount:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_login": {"account": ONE}})

    async def test_successful_logins_per_account(self, client, alice):
        login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                 "password": "s3cret-pass"}
        assert (await client.post(f"{V3}/login", login))[0] == 200
        await assert_limited(client, "POST", f"{V3}/login", login)


class TestRegistration:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_registration": TWO})

    async def test_registrations_per_client_address(self, client):
        # The first step of user-interactive auth does not use a registration up.
        status, challenge = await client.post(f"{V3}/register", {"username": "u0", "password": "pw-long-1"})
        assert status == 401, challenge
        await client.register("u1")
        await client.register("u2")
        await assert_limited(client, "POST", f"{V3}/register", {
            "username": "u3", "password": "pw-long-1", "auth": {"type": "m.login.dummy"}})


class TestRegistrationTokenValidity:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_registration_token_validity": TWO})

    async def test_validity_checks_per_client_address(self, client):
        path = f"{V1}/register/m.login.registration_token/validity?token=abc"
        for _ in range(2):
            assert await client.get(path) == (200, {"valid": False})
        await assert_limited(client, "GET", path)


class TestThreepidValidation:
    @pytest.fixture
    async def smtp(self):
        server = MailServer()
        await server.start()
        yield server
        await server.stop()

    @pytest.fixture
    def config_overrides(self, smtp):
        return {**limits({"rc_3pid_validation": TWO}), "public_baseurl": "https://hs.test.local/",
                "email": {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                          "notif_from": "chat@test.local"}}

    async def test_validation_mails_per_client_address(self, client, smtp):
        for attempt, address in enumerate(["a@example.org", "b@example.org"], 1):
            status, body = await client.post(f"{V3}/register/email/requestToken",
                                             {"client_secret": "s", "email": address, "send_attempt": attempt})
            assert status == 200, body
        await assert_limited(client, "POST", f"{V3}/account/3pid/email/requestToken",
                             {"client_secret": "s", "email": "c@example.org", "send_attempt": 1})
        assert len(smtp.mails) == 2


class TestMedia:
    @pytest.fixture
    def config_overrides(self, tmp_path):
        return {**limits({"rc_media_create": TWO}), "data_dir": str(tmp_path)}

    async def test_uploads_and_reserved_uris(self, alice, bob):
        status, body = await alice.post("/_matrix/media/v3/upload", raw=b"one", headers={"Content-Type": "text/plain"})
        assert status == 200, body
        status, body = await alice.post("/_matrix/media/v1/create")
        assert status == 200, body
        await assert_limited(alice, "POST", "/_matrix/media/v3/upload", raw=b"three")
        await assert_limited(alice, "POST", "/_matrix/media/v1/create")
        status, body = await bob.post("/_matrix/media/v3/upload", raw=b"bob's", headers={"Content-Type": "text/plain"})
        assert status == 200, body


class TestPresence:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_presence": {"per_user": ONE}})

    async def test_presence_updates_per_user(self, alice):
        path = f"{V3}/presence/@alice:test.local/status"
        assert (await alice.put(path, {"presence": "online"}))[0] == 200
        await assert_limited(alice, "PUT", path, {"presence": "unavailable"})

    async def test_updates_by_sync_past_the_limit_are_ignored(self, alice):
        """As Synapse: the sync goes on, the presence it asks for is not set; PUT has its own bucket."""
        path = f"{V3}/presence/@alice:test.local/status"
        assert (await alice.get(f"{V3}/sync?timeout=0&set_presence=unavailable"))[0] == 200
        assert (await alice.get(path))[1]["presence"] == "unavailable"
        assert (await alice.get(f"{V3}/sync?timeout=0&set_presence=online"))[0] == 200
        assert (await alice.get(path))[1]["presence"] == "unavailable"
        assert (await alice.put(path, {"presence": "online"}))[0] == 200
        assert (await alice.get(path))[1]["presence"] == "online"


class TestUserDirectory:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_user_directory": ONE})

    async def test_searches_per_user(self, alice):
        assert (await alice.post(f"{V3}/user_directory/search", {"search_term": "b"}))[0] == 200
        await assert_limited(alice, "POST", f"{V3}/user_directory/search", {"search_term": "b"})


class TestKeyRequests:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_key_requests": TWO})

    async def test_key_requests_past_the_limit_are_dropped(self, alice, bob):
        """As Synapse: the send succeeds, the requests over the limit are not delivered."""
        status, body = await bob.get(f"{V3}/sync?timeout=0")
        since = body["next_batch"]
        for n in range(3):
            message = {"messages": {"@bob:test.local": {"*": {"action": "request", "request_id": f"r{n}"}}}}
            status, body = await alice.put(f"{V3}/sendToDevice/m.room_key_request/k{n}", message)
            assert status == 200, body
        # Other to-device messages are not limited.
        status, _ = await alice.put(f"{V3}/sendToDevice/m.test/t1", {"messages": {"@bob:test.local": {"*": {"n": 1}}}})
        assert status == 200
        status, body = await bob.get(f"{V3}/sync?timeout=0&since={since}")
        events = body["to_device"]["events"]
        assert [e["content"]["request_id"] for e in events if e["type"] == "m.room_key_request"] == ["r0", "r1"]
        assert [e["type"] for e in events].count("m.test") == 1

    async def test_key_requests_from_other_servers_are_limited_per_sender(self, bob, services):
        status, body = await bob.get(f"{V3}/sync?timeout=0")
        since = body["next_batch"]
        for n in range(3):  # as m.direct_to_device EDUs would bring them
            await services.to_device.deliver_remote("elsewhere.test", "@eve:elsewhere.test", "m.room_key_request",
                                                    f"m{n}", {"@bob:test.local": {"*": {"request_id": f"e{n}"}}})
        await services.to_device.deliver_remote("elsewhere.test", "@fay:elsewhere.test", "m.room_key_request",
                                                "m9", {"@bob:test.local": {"*": {"request_id": "f0"}}})
        status, body = await bob.get(f"{V3}/sync?timeout=0&since={since}")
        assert [e["content"]["request_id"] for e in body["to_device"]["events"]] == ["e0", "e1", "f0"]


class TestGlobalSwitch:
    @pytest.fixture
    def config_overrides(self):
        return limits({"rc_message": ONE, "rc_room_creation": ONE, "rc_joins": {"local": ONE}}, enabled=False)

    async def test_rate_limiting_off_limits_nothing(self, alice, bob):
        rooms = [await create_room(alice) for _ in range(3)]
        for n in range(4):
            assert (await send(alice, rooms[0], f"m{n}"))[0] == 200
        for room in rooms:
            assert (await bob.post(f"{V3}/join/{room}", {}))[0] == 200
