"""The Synapse admin API's accounts, driven over HTTP as an admin tool would: list, query,
create and modify, deactivate, reset password, the admin flag, devices, what an admin reads."""

from urllib.parse import quote

V3 = "/_matrix/client/v3"
ADMIN_V1 = "/_synapse/admin/v1"
ADMIN_V2 = "/_synapse/admin/v2"
ALICE = "@alice:test.local"
BOB = "@bob:test.local"


def u(user_id: str) -> str:
    return quote(user_id, safe="")


async def login(client, user, password):
    return await client.post(f"{V3}/login", {"type": "m.login.password", "password": password,
                                             "identifier": {"type": "m.id.user", "user": user}})


async def audit_actions(admin, target):
    status, body = await admin.get(f"{ADMIN_V1}/audit_log?target={u(target)}")
    assert status == 200, body
    return [e["action"] for e in body["entries"]]


async def test_non_admins_are_refused(alice, bob):
    for method, path in (("GET", f"{ADMIN_V2}/users"), ("GET", f"{ADMIN_V2}/users/{u(BOB)}"),
                         ("PUT", f"{ADMIN_V2}/users/{u(BOB)}"), ("POST", f"{ADMIN_V1}/deactivate/{u(BOB)}"),
                         ("POST", f"{ADMIN_V1}/reset_password/{u(BOB)}"), ("PUT", f"{ADMIN_V1}/users/{u(BOB)}/admin"),
                         ("GET", f"{ADMIN_V2}/users/{u(BOB)}/devices"), ("POST", f"{ADMIN_V1}/users/{u(BOB)}/login"),
                         ("POST", f"{ADMIN_V1}/users/{u(BOB)}/shadow_ban"),
                         ("PUT", f"/_matrix/client/v1/admin/lock/{u(BOB)}")):
        status, body = await alice.request(method, path, {})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", (method, path, body)


async def test_list_users_pages_filters_and_orders(admin, client, services):
    for name in ("carol", "dave", "erin", "frank"):
        await client.register(name)
    await admin.put(f"{ADMIN_V2}/users/{u('@erin:test.local')}", {"displayname": "zed erin"})
    await services.accounts.create_user("botty", "pw", user_type="bot")
    await services.devices.flush()  # the admin's last-seen time is written off the request path

    status, page = await admin.get(f"{ADMIN_V2}/users?limit=2")
    assert status == 200, page
    assert [x["name"] for x in page["users"]] == ["@admin:test.local", "@botty:test.local"]
    assert page["total"] == 6 and page["next_token"] == "2"
    first = page["users"][0]
    assert first["admin"] is True and first["deactivated"] is False and first["erased"] is False
    assert first["locked"] is False and first["shadow_banned"] is False and first["is_guest"] is False
    assert first["creation_ts"] > 10**12 and first["last_seen_ts"] is not None  # ms; the admin made requests
    status, rest = await admin.get(f"{ADMIN_V2}/users?limit=10&from=2")
    assert [x["name"] for x in rest["users"]] == ["@carol:test.local", "@dave:test.local", "@erin:test.local",
                                                 "@frank:test.local"] and "next_token" not in rest

    status, found = await admin.get(f"{ADMIN_V2}/users?name=ZED")  # display names too
    assert [x["name"] for x in found["users"]] == ["@erin:test.local"] and found["total"] == 1
    status, found = await admin.get(f"{ADMIN_V2}/users?user_id=ar")
    assert [x["name"] for x in found["users"]] == ["@carol:test.local"]
    status, found = await admin.get(f"{ADMIN_V2}/users?admins=true")
    assert [x["name"] for x in found["users"]] == ["@admin:test.local"]
    status, found = await admin.get(f"{ADMIN_V2}/users?not_user_type=bot")
    assert "@botty:test.local" not in [x["name"] for x in found["users"]] and found["total"] == 5
    status, found = await admin.get(f"{ADMIN_V2}/users?not_user_type=")
    assert [x["name"] for x in found["users"]] == ["@botty:test.local"]
    status, found = await admin.get(f"{ADMIN_V2}/users?order_by=displayname&dir=b&limit=1")
    assert found["users"][0]["name"] == "@erin:test.local"  # "zed erin" sorts last
    status, found = await admin.get(f"{ADMIN_V2}/users?order_by=creation_ts&dir=b&limit=1")
    assert found["users"][0]["name"] == "@botty:test.local"

    # Deactivated accounts: v2 adds them with deactivated=true; v3 filters on the flag.
    await admin.post(f"{ADMIN_V1}/deactivate/{u('@dave:test.local')}", {})
    status, v2 = await admin.get(f"{ADMIN_V2}/users")
    assert "@dave:test.local" not in [x["name"] for x in v2["users"]]
    status, v2 = await admin.get(f"{ADMIN_V2}/users?deactivated=true")
    assert "@dave:test.local" in [x["name"] for x in v2["users"]] and v2["total"] == 6
    status, v3 = await admin.get("/_synapse/admin/v3/users?deactivated=true")
    assert [x["name"] for x in v3["users"]] == ["@dave:test.local"]
    status, v3 = await admin.get("/_synapse/admin/v3/users")
    assert v3["total"] == 6
    # Locked accounts only with locked=true.
    await admin.put(f"{ADMIN_V2}/users/{u('@frank:test.local')}", {"locked": True})
    status, v2 = await admin.get(f"{ADMIN_V2}/users")
    assert "@frank:test.local" not in [x["name"] for x in v2["users"]]
    status, v2 = await admin.get(f"{ADMIN_V2}/users?locked=true&order_by=locked&dir=b&limit=1")
    assert v2["users"][0]["name"] == "@frank:test.local" and v2["users"][0]["locked"] is True

    for query in ("order_by=password", "dir=x", "limit=-1", "from=-5", "guests=maybe", "limit=abc"):
        status, body = await admin.get(f"{ADMIN_V2}/users?{query}")
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM", (query, body)


async def test_query_user_and_unknown_or_remote_users(admin, alice):
    status, body = await admin.get(f"{ADMIN_V2}/users/{u(ALICE)}")
    assert status == 200, body
    assert body["name"] == ALICE and body["displayname"] == "alice" and body["avatar_url"] is None
    assert body["threepids"] == [] and body["external_ids"] == [] and body["admin"] is False
    assert body["suspended"] is False and body["locked"] is False and body["erased"] is False
    assert body["appservice_id"] is None and body["consent_version"] is None and body["user_type"] is None
    assert 10**9 < body["creation_ts"] < 10**11  # seconds, as Synapse answers here
    assert body["last_seen_ts"] is None  # alice's device has made no request yet
    status, body = await admin.get(f"{ADMIN_V2}/users/{u('@nobody:test.local')}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await admin.get(f"{ADMIN_V2}/users/{u('@x:elsewhere.org')}")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.get(f"{ADMIN_V2}/users/not-a-user-id")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"


async def test_put_creates_then_modifies(admin, client):
    body = {"password": "new-user-pass", "displayname": "Gina", "avatar_url": "mxc://test.local/abc",
            "threepids": [{"medium": "email", "address": "Gina@Example.org"}],
            "external_ids": [{"auth_provider": "oidc-corp", "external_id": "g-123"}], "admin": False,
            "user_type": "bot"}
    status, created = await admin.put(f"{ADMIN_V2}/users/{u('@gina:test.local')}", body)
    assert status == 201, created
    assert created["name"] == "@gina:test.local" and created["displayname"] == "Gina"
    assert created["avatar_url"] == "mxc://test.local/abc" and created["user_type"] == "bot"
    assert [(t["medium"], t["address"]) for t in created["threepids"]] == [("email", "gina@example.org")]
    assert created["external_ids"] == [{"auth_provider": "oidc-corp", "external_id": "g-123"}]
    status, login_body = await login(client, "gina", "new-user-pass")
    assert status == 200, login_body
    gina = client.with_token(login_body["access_token"])

    status, modified = await admin.put(f"{ADMIN_V2}/users/{u('@gina:test.local')}", {
        "displayname": "Gina M.", "admin": True, "threepids": [], "user_type": None,
        "external_ids": [{"auth_provider": "saml", "external_id": "gm"}], "password": "changed-pass"})
    assert status == 200, modified
    assert modified["displayname"] == "Gina M." and modified["admin"] is True and modified["threepids"] == []
    assert modified["user_type"] is None and modified["external_ids"] == [{"auth_provider": "saml", "external_id": "gm"}]
    # The password changed and her sessions ended (logout_devices defaults to true).
    status, body = await gina.get(f"{V3}/account/whoami")
    assert status == 401
    assert (await login(client, "gina", "new-user-pass"))[0] == 403
    assert (await login(client, "gina", "changed-pass"))[0] == 200
    # The lookups by external ID and 3PID.
    status, found = await admin.get(f"{ADMIN_V1}/auth_providers/saml/users/gm")
    assert status == 200 and found == {"user_id": "@gina:test.local"}
    status, found = await admin.get(f"{ADMIN_V1}/auth_providers/oidc-corp/users/g-123")
    assert status == 404 and found["errcode"] == "M_NOT_FOUND"
    assert await audit_actions(admin, "@gina:test.local") == ["user.modify", "user.create"]

    # Bad bodies change nothing.
    for bad in ({"admin": "yes"}, {"deactivated": True, "locked": True}, {"user_type": "wizard"},
                {"threepids": [{"medium": "email"}]}, {"threepids": [{"medium": "fax", "address": "1"}]},
                {"password": 5}, {"displayname": 7}, {"external_ids": "x"}):
        status, err = await admin.put(f"{ADMIN_V2}/users/{u('@gina:test.local')}", bad)
        assert status == 400 and "errcode" in err, (bad, err)
    status, same = await admin.get(f"{ADMIN_V2}/users/{u('@gina:test.local')}")
    assert same["admin"] is True and same["deactivated"] is False and same["locked"] is False


async def test_put_refuses_what_belongs_to_others_before_writing(admin, alice):
    await admin.put(f"{ADMIN_V2}/users/{u('@hal:test.local')}", {
        "external_ids": [{"auth_provider": "p", "external_id": "1"}]})
    status, body = await admin.put(f"{ADMIN_V2}/users/{u(ALICE)}", {
        "displayname": "Not Applied", "external_ids": [{"auth_provider": "p", "external_id": "1"}]})
    assert status == 409, body
    status, alice_now = await admin.get(f"{ADMIN_V2}/users/{u(ALICE)}")
    assert alice_now["displayname"] == "alice" and alice_now["external_ids"] == []
    status, body = await admin.put(f"{ADMIN_V2}/users/{u('@admin:test.local')}", {"admin": False})
    assert status == 400 and body["error"] == "You may not demote yourself."


async def test_deactivate_then_reactivate_with_a_password(admin, client, alice):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = room["room_id"]
    status, body = await admin.post(f"{ADMIN_V1}/deactivate/{u(ALICE)}")  # no body: allowed
    assert status == 200 and body == {"id_server_unbind_result": "success"}
    status, body = await alice.get(f"{V3}/account/whoami")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    status, body = await login(client, "alice", "s3cret-pass")
    assert status == 403  # the password went with the account
    status, members = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/joined_rooms")
    assert members == {"joined_rooms": [], "total": 0}
    status, memberships = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/memberships")
    assert memberships == {"memberships": {room_id: "leave"}}

    status, body = await admin.put(f"{ADMIN_V2}/users/{u(ALICE)}", {"deactivated": False, "password": "back-again"})
    assert status == 200 and body["deactivated"] is False
    status, body = await login(client, "alice", "back-again")
    assert status == 200, body
    for bad in ({"erase": "yes"},):
        status, body = await admin.post(f"{ADMIN_V1}/deactivate/{u(ALICE)}", bad)
        assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await admin.post(f"{ADMIN_V1}/deactivate/{u('@ghost:test.local')}", {})
    assert status == 404
    status, body = await admin.post(f"{ADMIN_V1}/deactivate/{u('@ghost:elsewhere.org')}", {})
    assert status == 400 and body["error"] == "Can only deactivate local users"
    assert await audit_actions(admin, ALICE) == ["user.modify", "user.deactivate"]


async def test_reset_password_logs_out_unless_told_not_to(admin, client, alice):
    status, body = await admin.post(f"{ADMIN_V1}/reset_password/{u(ALICE)}",
                                    {"new_password": "fresh-pass-1", "logout_devices": False})
    assert status == 200 and body == {}
    assert (await alice.get(f"{V3}/account/whoami"))[0] == 200  # still logged in
    assert (await login(client, "alice", "s3cret-pass"))[0] == 403
    status, body = await admin.post(f"{ADMIN_V1}/reset_password/{u(ALICE)}", {"new_password": "fresh-pass-2"})
    assert status == 200
    status, body = await alice.get(f"{V3}/account/whoami")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    assert (await login(client, "alice", "fresh-pass-2"))[0] == 200
    status, body = await admin.post(f"{ADMIN_V1}/reset_password/{u(ALICE)}", {})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await admin.post(f"{ADMIN_V1}/reset_password/{u('@nobody:test.local')}", {"new_password": "x"})
    assert status == 404
    assert await audit_actions(admin, ALICE) == ["user.reset_password", "user.reset_password"]


async def test_admin_flag_takes_effect_at_once(admin, alice):
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/admin")
    assert status == 200 and body == {"admin": False}
    assert (await alice.get(f"{ADMIN_V2}/users"))[0] == 403
    status, body = await admin.put(f"{ADMIN_V1}/users/{u(ALICE)}/admin", {"admin": True})
    assert status == 200 and body == {}
    status, body = await alice.get(f"{ADMIN_V2}/users")  # the cached requester was dropped
    assert status == 200, body
    status, caps = await alice.get(f"{V3}/capabilities")
    assert caps["capabilities"]["m.account_moderation"] == {"suspend": True, "lock": True}
    assert (await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/admin"))[1] == {"admin": True}
    status, body = await admin.put(f"{ADMIN_V1}/users/{u('@admin:test.local')}/admin", {"admin": False})
    assert status == 400
    status, body = await admin.put(f"{ADMIN_V1}/users/{u(ALICE)}/admin", {})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await admin.get(f"{ADMIN_V1}/users/{u('@x:elsewhere.org')}/admin")
    assert status == 400 and body["error"] == "Only local users can be admins of this homeserver"


async def test_devices(admin, alice, services):
    status, whoami = await alice.get(f"{V3}/account/whoami")
    device_id = whoami["device_id"]
    await services.devices.flush()
    status, body = await admin.get(f"{ADMIN_V2}/users/{u(ALICE)}/devices")
    assert status == 200 and body["total"] == 1
    assert body["devices"][0]["device_id"] == device_id and body["devices"][0]["user_id"] == ALICE
    assert body["devices"][0]["last_seen_ts"] is not None and body["devices"][0]["dehydrated"] is False
    assert (await admin.post(f"{ADMIN_V2}/users/{u(ALICE)}/devices", {"device_id": "MADEBYADMIN"}))[0] == 200
    status, body = await admin.put(f"{ADMIN_V2}/users/{u(ALICE)}/devices/MADEBYADMIN", {"display_name": "Kiosk"})
    assert status == 200
    status, body = await admin.get(f"{ADMIN_V2}/users/{u(ALICE)}/devices/MADEBYADMIN")
    assert status == 200 and body["display_name"] == "Kiosk" and body["last_seen_ts"] is None
    status, body = await admin.get(f"{ADMIN_V2}/users/{u(ALICE)}/devices/NOPE")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await admin.put(f"{ADMIN_V2}/users/{u(ALICE)}/devices/NOPE", {"display_name": "x"})
    assert status == 404
    # Deleting alice's own device ends her session.
    assert (await admin.delete(f"{ADMIN_V2}/users/{u(ALICE)}/devices/{device_id}"))[0] == 200
    assert (await alice.get(f"{V3}/account/whoami"))[0] == 401
    status, body = await admin.post(f"{ADMIN_V2}/users/{u(ALICE)}/delete_devices", {"devices": ["MADEBYADMIN", "GONE"]})
    assert status == 200
    assert (await admin.get(f"{ADMIN_V2}/users/{u(ALICE)}/devices"))[1] == {"devices": [], "total": 0}
    status, body = await admin.post(f"{ADMIN_V2}/users/{u(ALICE)}/delete_devices", {"devices": "all"})
    assert status == 400
    status, body = await admin.get(f"{ADMIN_V2}/users/{u('@nobody:test.local')}/devices")
    assert status == 404
    assert await audit_actions(admin, ALICE) == ["user.device.delete", "user.device.delete", "user.device.update",
                                                 "user.device.create"]


async def test_what_an_admin_reads_about_an_account(admin, alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "invite": [BOB]})
    room_id = room["room_id"]
    await alice.put(f"{V3}/user/{u(ALICE)}/account_data/org.example.setting", {"on": True})
    await alice.put(f"{V3}/user/{u(ALICE)}/rooms/{room_id}/account_data/org.example.room", {"n": 1})
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/joined_rooms")
    assert body == {"joined_rooms": [room_id], "total": 1}
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(BOB)}/memberships")
    assert body == {"memberships": {room_id: "invite"}}
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/sent_invite_count?from_ts=0")
    assert body == {"invite_count": 1}
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/cumulative_joined_room_count?from_ts=0")
    assert body == {"cumulative_joined_room_count": 1}
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/sent_invite_count")
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/accountdata")
    assert body["account_data"]["global"]["org.example.setting"] == {"on": True}
    assert body["account_data"]["rooms"] == {room_id: {"org.example.room": {"n": 1}}}
    status, body = await admin.get(f"{ADMIN_V1}/users/{u(ALICE)}/pushers")
    assert body == {"pushers": [], "total": 0}
    status, body = await admin.get(f"{ADMIN_V1}/whois/{u(ALICE)}")
    assert status == 200 and body["user_id"] == ALICE and len(body["devices"]) == 1
    status, body = await admin.get(f"{ADMIN_V1}/whois/{u('@x:elsewhere.org')}")
    assert status == 400


async def test_username_available(admin, alice):
    status, body = await admin.get(f"{ADMIN_V1}/username_available?username=newbie")
    assert status == 200 and body == {"available": True}
    status, body = await admin.get(f"{ADMIN_V1}/username_available?username=alice")
    assert status == 400 and body["errcode"] == "M_USER_IN_USE"
    status, body = await admin.get(f"{ADMIN_V1}/username_available?username=Not%20Valid")
    assert status == 400 and body["errcode"] == "M_INVALID_USERNAME"
    status, body = await admin.get(f"{ADMIN_V1}/username_available")
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"


async def test_account_validity_is_refused_when_off(admin, alice):
    status, body = await admin.post("/_synapse/admin/v1/account_validity/validity", {"user_id": ALICE})
    assert status == 400 and "not enabled" in body["error"]


async def test_null_characters_get_a_matrix_error(admin):
    """PostgreSQL text cannot hold NUL: refused before any handler, in paths and queries alike."""
    for path in (f"{ADMIN_V2}/users/{u(ALICE)}/devices/a%00b", f"{ADMIN_V1}/auth_providers/a%00/users/b",
                 f"{ADMIN_V2}/users?name=a%00b", f"{V3}/devices/a%00b"):
        status, body = await admin.get(path)
        assert status == 400 and body["errcode"] == "M_INVALID_PARAM", (path, body)
