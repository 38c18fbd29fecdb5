"""Restraining accounts over HTTP, with their effects: shadow-banning (Synapse), suspending and
locking (the spec's /_matrix/client/v1/admin/suspend|lock and Synapse's), logging in as a user."""

import uuid
from urllib.parse import quote

import pytest

from homeserver.services import auth as auth_module

V3 = "/_matrix/client/v3"
ADMIN_V1 = "/_synapse/admin/v1"
ADMIN_V2 = "/_synapse/admin/v2"
SPEC_ADMIN = "/_matrix/client/v1/admin"
ALICE = "@alice:test.local"
BOB = "@bob:test.local"


@pytest.fixture(autouse=True)
def no_shadow_ban_pause(monkeypatch):
    """Synapse makes a shadow-banned user's requests wait 1-10 s; not these tests."""
    monkeypatch.setattr(auth_module, "SHADOW_BAN_DELAY_S", (0.0, 0.0))


async def send(c, room_id, text):
    return await c.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                       {"msgtype": "m.text", "body": text})


async def bodies(c, room_id):
    status, body = await c.get(f"{V3}/rooms/{room_id}/messages?dir=b&limit=50")
    assert status == 200, body
    return [e["content"].get("body") for e in body["chunk"] if e["type"] == "m.room.message"]


async def shared_room(alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    assert (await bob.post(f"{V3}/rooms/{room['room_id']}/join", {}))[0] == 200
    return room["room_id"]


async def test_shadow_banned_users_seem_to_succeed_but_reach_nobody(admin, client, alice, bob):
    room_id = await shared_room(alice, bob)
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote(ALICE)}/shadow_ban", {})
    assert status == 200 and body == {}
    status, sent = await send(alice, room_id, "nobody hears this")
    assert status == 200 and sent["event_id"].startswith("$")
    status, body = await bob.get(f"{V3}/rooms/{room_id}/event/{sent['event_id']}")
    assert status == 404
    assert "nobody hears this" not in await bodies(bob, room_id)
    status, sync = await bob.get(f"{V3}/sync?timeout=0")
    timeline = sync["rooms"]["join"][room_id]["timeline"]["events"]
    assert all(e["content"].get("body") != "nobody hears this" for e in timeline)
    # Invites, the invites of a new room, typing and a new display name reach nobody either.
    carol = client.with_token((await client.register("carol"))["access_token"])
    status, body = await alice.post(f"{V3}/rooms/{room_id}/invite", {"user_id": "@carol:test.local"})
    assert status == 200
    status, new_room = await alice.post(f"{V3}/createRoom", {"invite": ["@carol:test.local"]})
    assert status == 200 and new_room["room_id"]
    status, carol_sync = await carol.get(f"{V3}/sync?timeout=0")
    assert carol_sync.get("rooms", {}).get("invite", {}) == {}
    assert (await alice.put(f"{V3}/rooms/{room_id}/typing/{quote(ALICE)}", {"typing": True, "timeout": 5000}))[0] == 200
    assert (await alice.put(f"{V3}/profile/{quote(ALICE)}/displayname", {"displayname": "Sneaky"}))[0] == 200
    status, member = await bob.get(f"{V3}/rooms/{room_id}/state/m.room.member/{quote(ALICE)}")
    assert member["displayname"] == "alice"
    status, sync = await bob.get(f"{V3}/sync?timeout=0")
    assert sync["rooms"]["join"][room_id].get("ephemeral", {}).get("events", []) == []
    status, user = await admin.get(f"{ADMIN_V2}/users/{quote(ALICE)}")
    assert user["shadow_banned"] is True

    # Lifted: her messages arrive again.
    assert (await admin.delete(f"{ADMIN_V1}/users/{quote(ALICE)}/shadow_ban"))[0] == 200
    assert (await send(alice, room_id, "heard again"))[0] == 200
    assert "heard again" in await bodies(bob, room_id)
    status, audit = await admin.get(f"{ADMIN_V1}/audit_log?target={quote(ALICE)}")
    assert [e["action"] for e in audit["entries"]] == ["user.unshadow_ban", "user.shadow_ban"]
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote('@x:elsewhere.org')}/shadow_ban", {})
    assert status == 400 and body["error"] == "Only local users can be shadow-banned"


async def test_locked_accounts_get_user_locked_until_unlocked(admin, alice, bob):
    status, body = await admin.put(f"{ADMIN_V2}/users/{quote(ALICE)}", {"locked": True})
    assert status == 200 and body["locked"] is True
    for method, path in (("GET", f"{V3}/account/whoami"), ("GET", f"{V3}/sync?timeout=0"),
                         ("POST", f"{V3}/createRoom")):
        status, body = await alice.request(method, path, {})
        assert status == 401 and body == {"errcode": "M_USER_LOCKED", "error": "This account has been locked",
                                          "soft_logout": True}, (path, body)
    status, body = await admin.get(f"{SPEC_ADMIN}/lock/{quote(ALICE)}")
    assert status == 200 and body == {"locked": True}
    status, body = await admin.put(f"{SPEC_ADMIN}/lock/{quote(ALICE)}", {"locked": False})
    assert status == 200 and body == {"locked": False}
    assert (await alice.get(f"{V3}/account/whoami"))[0] == 200  # the same session works again
    # The spec's endpoint locks too, and a locked user may still log out.
    assert (await admin.put(f"{SPEC_ADMIN}/lock/{quote(BOB)}", {"locked": True}))[1] == {"locked": True}
    assert (await bob.get(f"{V3}/account/whoami"))[1]["errcode"] == "M_USER_LOCKED"
    assert (await bob.post(f"{V3}/logout", {}))[0] == 200
    assert (await bob.get(f"{V3}/account/whoami"))[1]["errcode"] == "M_UNKNOWN_TOKEN"


async def test_suspended_users_read_and_leave_but_do_not_act(admin, client, alice, bob):
    room_id = await shared_room(alice, bob)
    status, own = await send(alice, room_id, "before")
    status, bobs = await send(bob, room_id, "bob's")
    status, other_room = await bob.post(f"{V3}/createRoom", {"preset": "public_chat"})
    status, body = await admin.put(f"{SPEC_ADMIN}/suspend/{quote(ALICE)}", {"suspended": True})
    assert status == 200 and body == {"suspended": True}

    def suspended(answer):
        status, body = answer
        return status == 403 and body["errcode"] == "M_USER_SUSPENDED"

    assert suspended(await send(alice, room_id, "during"))
    assert suspended(await alice.put(f"{V3}/rooms/{room_id}/state/m.room.topic", {"topic": "t"}))
    assert suspended(await alice.post(f"{V3}/createRoom", {}))
    assert suspended(await alice.post(f"{V3}/rooms/{other_room['room_id']}/join", {}))
    assert suspended(await alice.post(f"{V3}/rooms/{room_id}/invite", {"user_id": "@carol:test.local"}))
    assert suspended(await alice.put(f"{V3}/profile/{quote(ALICE)}/displayname", {"displayname": "New"}))
    assert suspended(await alice.put(f"{V3}/rooms/{room_id}/redact/{bobs['event_id']}/t1", {}))
    # Reading, redacting her own events and leaving are allowed.
    assert "bob's" in await bodies(alice, room_id)
    assert (await alice.get(f"{V3}/sync?timeout=0"))[0] == 200
    assert (await alice.put(f"{V3}/rooms/{room_id}/redact/{own['event_id']}/t2", {}))[0] == 200
    assert (await alice.post(f"{V3}/rooms/{room_id}/leave", {}))[0] == 200
    assert "during" not in await bodies(bob, room_id)
    assert (await admin.get(f"{SPEC_ADMIN}/suspend/{quote(ALICE)}"))[1] == {"suspended": True}
    assert (await admin.get(f"{ADMIN_V2}/users/{quote(ALICE)}"))[1]["suspended"] is True

    # Synapse's endpoint lifts it.
    status, body = await admin.put(f"{ADMIN_V1}/suspend/{quote(ALICE)}", {"suspend": False})
    assert status == 200 and body == {f"user_{ALICE}_suspended": False}
    assert (await alice.post(f"{V3}/rooms/{room_id}/join", {}))[0] == 200
    assert (await send(alice, room_id, "after"))[0] == 200
    status, audit = await admin.get(f"{ADMIN_V1}/audit_log?target={quote(ALICE)}")
    assert [e["action"] for e in audit["entries"]] == ["user.unsuspend", "user.suspend"]


async def test_spec_suspend_and_lock_answers(admin, client, alice, services):
    await services.accounts.create_user("other_admin", "pw", admin=True)
    for kind, field in (("suspend", "suspended"), ("lock", "locked")):
        base = f"{SPEC_ADMIN}/{kind}"
        status, body = await admin.get(f"{base}/{quote(ALICE)}")
        assert status == 200 and body == {field: False}
        status, body = await admin.get(f"{base}/{quote('@x:elsewhere.org')}")
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
        status, body = await admin.get(f"{base}/{quote('@nobody:test.local')}")
        assert status == 404 and body["errcode"] == "M_NOT_FOUND"
        status, body = await admin.put(f"{base}/{quote('@other_admin:test.local')}", {field: True})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        status, body = await admin.put(f"{base}/{quote('@admin:test.local')}", {field: True})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        status, body = await admin.put(f"{base}/{quote(ALICE)}", {})
        assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
        status, body = await admin.put(f"{base}/{quote(ALICE)}", {field: "yes"})
        assert status == 400 and body["errcode"] == "M_BAD_JSON"
        status, body = await alice.get(f"{base}/{quote(ALICE)}")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    await admin.post(f"{ADMIN_V1}/deactivate/{quote(ALICE)}", {})
    status, body = await admin.get(f"{SPEC_ADMIN}/lock/{quote(ALICE)}")
    assert status == 404  # deactivated


async def test_login_as_a_user_acts_as_them_on_no_device(admin, client, alice, bob, services):
    room_id = await shared_room(alice, bob)
    status, devices_before = await admin.get(f"{ADMIN_V2}/users/{quote(ALICE)}/devices")
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote(ALICE)}/login", {})
    assert status == 200, body
    puppet = client.with_token(body["access_token"])
    status, whoami = await puppet.get(f"{V3}/account/whoami")
    assert status == 200 and whoami["user_id"] == ALICE and "device_id" not in whoami
    assert (await send(puppet, room_id, "sent by the admin as alice"))[0] == 200
    assert "sent by the admin as alice" in await bodies(bob, room_id)
    assert (await puppet.get(f"{V3}/sync?timeout=0"))[0] == 200
    status, body = await puppet.post(f"{V3}/keys/upload", {"one_time_keys": {}})
    assert status == 400  # keys belong to a device; the token has none
    assert (await admin.get(f"{ADMIN_V2}/users/{quote(ALICE)}/devices"))[1] == devices_before
    # Alice logging out everywhere does not end it; the admin doing so does.
    status, body = await alice.post(f"{V3}/logout/all", {})
    assert status == 200
    assert (await puppet.get(f"{V3}/account/whoami"))[0] == 200
    await admin.post(f"{V3}/logout/all", {})
    assert (await puppet.get(f"{V3}/account/whoami"))[1]["errcode"] == "M_UNKNOWN_TOKEN"


async def test_login_as_answers(admin, client, alice):
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote(ALICE)}/login", {"valid_until_ms": 1000})
    assert status == 200
    status, expired = await client.with_token(body["access_token"]).get(f"{V3}/account/whoami")
    assert status == 401 and expired["errcode"] == "M_UNKNOWN_TOKEN"
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote(ALICE)}/login")
    assert status == 200
    puppet = client.with_token(body["access_token"])
    assert (await puppet.post(f"{V3}/logout", {}))[0] == 200  # a token without a device just ends
    assert (await puppet.get(f"{V3}/account/whoami"))[0] == 401
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote('@admin:test.local')}/login", {})
    assert status == 400 and body["error"] == "Cannot use admin API to login as self"
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote(ALICE)}/login", {"valid_until_ms": "soon"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.post(f"{ADMIN_V1}/users/{quote('@nobody:test.local')}/login", {})
    assert status == 404
    status, audit = await admin.get(f"{ADMIN_V1}/audit_log?action=user.login_as")
    assert [e["target"] for e in audit["entries"]] == [ALICE, ALICE]


async def test_a_shadow_banned_room_upgrade_changes_nothing(admin, alice, bob):
    room_id = await shared_room(alice, bob)
    await admin.post(f"{ADMIN_V1}/users/{quote(ALICE)}/shadow_ban", {})
    status, body = await alice.post(f"{V3}/rooms/{room_id}/upgrade", {"new_version": "11"})
    assert status == 200 and body["replacement_room"].startswith("!")
    status, tombstone = await bob.get(f"{V3}/rooms/{room_id}/state/m.room.tombstone")
    assert status == 404  # the old room was not replaced
    status, joined = await alice.get(f"{V3}/joined_rooms")
    assert joined["joined_rooms"] == [room_id]  # no replacement room was made either
