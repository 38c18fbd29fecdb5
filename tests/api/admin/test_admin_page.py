"""The built-in admin page (/_chatgo/admin/): a headless Chromium drives it as an admin would,
and the effects are checked through the API and the services; plus the session and CSRF rules
over plain HTTP."""

from __future__ import annotations

import asyncio
import re

import pytest

from homeserver.web_app import make_web_app
from tests.api.admin.browser import browser, expect, page  # noqa: F401 (fixtures)
from tests.api.ratelimits import limits
from tests.server_fixtures import MatrixClient

PAGE = "/_chatgo/admin"
LOGIN = {"username": "admin", "password": "pw-admin-1"}


@pytest.fixture
def config_overrides(tmp_path) -> dict:
    return {"data_dir": str(tmp_path)}  # where uploaded media go


@pytest.fixture
async def client(aiohttp_client, services) -> MatrixClient:
    """The server with the client API and the admin resource (where the page is served)."""
    return MatrixClient(await aiohttp_client(make_web_app(services, ["client", "admin"])))


async def page_login(client: MatrixClient) -> str:
    """Log the test client's cookie jar into the page; the session's CSRF token."""
    resp = await client.http.post(f"{PAGE}/login", data=LOGIN, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    text = await (await client.http.get(f"{PAGE}/audit_log")).text()
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', text).group(1)


async def browser_login(page, username: str = "admin", password: str = "pw-admin-1", then: str = "") -> None:
    """Log in through the form (landing on the users list, or on the page `then` names)."""
    await page.goto(f"{PAGE}/login" + (f"?next={PAGE}/{then}" if then else ""))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


# --- logging in and out -------------------------------------------------------------------------

async def test_an_admin_logs_in_with_a_strict_httponly_cookie(client, admin, services):
    resp = await client.http.get(f"{PAGE}/audit_log", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{PAGE}/login?next=%2F_chatgo%2Fadmin%2Faudit_log"

    resp = await client.http.post(f"{PAGE}/login", data={**LOGIN, "next": f"{PAGE}/audit_log"},
                                  allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{PAGE}/audit_log"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Path={PAGE}" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    token = resp.cookies["chatgo_admin_session"].value
    assert (await services.auth.authenticate(token)).user_id == "@admin:test.local"
    # The session is a device of its own, named after the page.
    devices = await services.devices.list_devices("@admin:test.local")
    assert "ChatGO admin page" in {d.display_name for d in devices}

    resp = await client.http.get(f"{PAGE}/audit_log")
    assert resp.status == 200 and "@admin:test.local" in await resp.text()
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_the_cookie_is_secure_behind_tls(aiohttp_client, services, admin):
    proxied = await aiohttp_client(make_web_app(services, ["admin"], x_forwarded=True))
    resp = await proxied.post(f"{PAGE}/login", data=LOGIN, headers={"X-Forwarded-Proto": "https"},
                              allow_redirects=False)
    assert resp.status == 303 and "Secure" in resp.headers["Set-Cookie"]


async def test_the_page_is_served_only_where_the_admin_resource_is(aiohttp_client, services, client):
    client_only = await aiohttp_client(make_web_app(services, ["client"]))
    assert (await client_only.get(f"{PAGE}/login")).status == 404
    resp = await client.http.get(f"{PAGE}/static/htmx.min.js")
    assert resp.status == 200 and resp.content_type == "text/javascript" and b"htmx" in await resp.read()
    licence = await (await client.http.get(f"{PAGE}/static/htmx.LICENSE.txt")).text()
    assert "htmx.org@2.0.11" in licence and "Zero-Clause BSD" in licence
    for name in ("nope.js", "..%2Fadmin_page.py"):
        assert (await client.http.get(f"{PAGE}/static/{name}")).status == 404, name


async def test_a_user_who_is_not_an_admin_cannot_log_in(client, alice, services):
    devices_before = await services.devices.list_devices("@alice:test.local")
    resp = await client.http.post(f"{PAGE}/login", data={"username": "alice", "password": "s3cret-pass"},
                                  allow_redirects=False)
    assert resp.status == 403 and "chatgo_admin_session" not in resp.cookies
    assert "Only server admins" in await resp.text()
    # The device the password check made is gone again: nothing of the attempt is usable.
    assert await services.devices.list_devices("@alice:test.local") == devices_before
    # A wrong password fails the same way.
    resp = await client.http.post(f"{PAGE}/login", data={"username": "admin", "password": "nope"},
                                  allow_redirects=False)
    assert resp.status == 403 and "chatgo_admin_session" not in resp.cookies


class TestLoginLimits:
    @pytest.fixture
    def config_overrides(self, tmp_path):
        return {"data_dir": str(tmp_path), **limits({"rc_login": {"failed_attempts": {"per_second": 0.001,
                                                                                        "burst_count": 2}}})}

    async def test_failed_logins_are_limited_as_the_client_api_limits_them(self, client, admin):
        statuses = []
        for _ in range(3):
            resp = await client.http.post(f"{PAGE}/login", data={"username": "admin", "password": "guess"},
                                          allow_redirects=False)
            statuses.append(resp.status)
        assert statuses == [403, 403, 429]
        assert 'name="password"' in await resp.text()  # the form again, with the refusal
        status, body = await client.post("/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "admin"}, "password": "pw-admin-1"})
        assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED"  # one count for both doors


async def test_a_non_admin_is_refused_in_the_browser(page, client, alice):
    await browser_login(page, "alice", "s3cret-pass")
    await page.wait_for_selector(".notice.error")
    assert "Only server admins may use the admin page" in await page.inner_text(".notice.error")
    assert page.url.endswith(f"{PAGE}/login")
    assert await page.context.cookies() == []


async def test_logging_out_ends_the_session(client, admin, services):
    csrf = await page_login(client)
    token = next(c.value for c in client.http.session.cookie_jar if c.key == "chatgo_admin_session")
    resp = await client.http.post(f"{PAGE}/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{PAGE}/login"
    with pytest.raises(Exception, match="Unrecognised access token"):
        await services.auth.authenticate(token)
    resp = await client.http.get(f"{PAGE}/audit_log", allow_redirects=False)
    assert resp.status == 303


async def test_an_admin_who_loses_the_flag_is_let_out(client, admin, services):
    await page_login(client)
    await services.accounts.create_user("root", "pw-root-1", admin=True)
    status, login = await client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "root"}, "password": "pw-root-1"})
    status, _ = await client.put("/_synapse/admin/v1/users/@admin:test.local/admin", {"admin": False},
                                 token=login["access_token"])
    assert status == 200
    resp = await client.http.get(f"{PAGE}/users", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith(f"{PAGE}/login")


# --- CSRF -----------------------------------------------------------------------------------

async def test_a_change_without_the_csrf_token_is_refused(client, admin, services):
    csrf = await page_login(client)
    for sent in ({}, {"csrf_token": "0" * 64}, {"csrf_token": "é"}):
        resp = await client.http.post(f"{PAGE}/registration_tokens", data={"token": "abc", **sent})
        assert resp.status == 403 and "CSRF" in await resp.text(), sent
    assert await services.registration_tokens.list() == []
    resp = await client.http.post(f"{PAGE}/logout", allow_redirects=False)
    assert resp.status == 403

    # With the session's token (form field, or the header htmx sends) the change goes through.
    resp = await client.http.post(f"{PAGE}/registration_tokens", data={"token": "abc", "csrf_token": csrf},
                                  allow_redirects=False)
    assert resp.status == 303
    resp = await client.http.post(f"{PAGE}/registration_tokens", data={"token": "def"},
                                  headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert resp.status == 200 and "def created" in await resp.text()
    assert [t.token for t in await services.registration_tokens.list()] == ["abc", "def"]


# --- registration tokens and the audit log ------------------------------------------------------

async def test_registration_tokens_are_created_and_deleted_in_the_browser(page, client, admin, services):
    await browser_login(page, then="audit_log")
    await page.click("header >> text=Registration tokens")
    await page.fill("input[name=token]", "welcome-2026")
    await page.fill("input[name=uses_allowed]", "3")
    await page.click("button:has-text('Create')")
    await page.wait_for_selector("#notice .ok:has-text('welcome-2026 created')")
    # The list reloaded itself with the new token.
    await page.wait_for_selector("#tokens code:has-text('welcome-2026')")
    [row] = await services.registration_tokens.list()
    assert (row.token, row.uses_allowed) == ("welcome-2026", 3)

    await page.click("#tokens button:has-text('Delete')")
    await page.wait_for_selector("#notice .ok:has-text('welcome-2026 deleted')")
    await page.wait_for_selector("#tokens td:has-text('No registration tokens')")
    assert await services.registration_tokens.list() == []

    # Both changes are in the audit log, under the admin's user ID, and shown on its page.
    entries, _ = await services.admin_audit.page(from_token=None, limit=10)
    assert [(e.admin_id, e.action, e.target) for e in entries] == [
        ("@admin:test.local", "registration_token.delete", "welcome-2026"),
        ("@admin:test.local", "registration_token.create", "welcome-2026")]
    await page.click("header >> text=Audit log")
    rows = await page.locator("#audit-log tbody tr").all_inner_texts()
    assert "registration_token.delete" in rows[0] and "registration_token.create" in rows[1]


async def test_a_refused_change_shows_its_error(client, admin, services):
    csrf = await page_login(client)
    resp = await client.http.post(f"{PAGE}/registration_tokens", data={"token": "bad token!", "csrf_token": csrf},
                                  headers={"HX-Request": "true"})
    assert resp.status == 400 and "notice error" in await resp.text()
    resp = await client.http.post(f"{PAGE}/registration_tokens/nope/delete", data={"csrf_token": csrf})
    assert resp.status == 404 and "No such registration token" in await resp.text()
    entries, _ = await services.admin_audit.page(from_token=None, limit=10)
    assert entries == []


async def test_the_audit_log_page_escapes_what_it_shows(page, client, admin, services):
    await services.admin_audit.record("@admin:test.local", "user.deactivate", "<script>window.pwned=1</script>",
                                      note="<img src=x onerror=window.pwned=2>")
    await browser_login(page, then="audit_log")
    row = await page.inner_text("#audit-log tbody tr")
    assert "<script>window.pwned=1</script>" in row and "<img src=x onerror=window.pwned=2>" in row
    assert await page.evaluate("window.pwned") is None


# --- users ------------------------------------------------------------------------------------

async def test_an_admin_finds_a_user_and_deactivates_them(page, client, admin, services):
    mallory = client.with_token((await client.register("mallory", "mallory-pass"))["access_token"])
    for name in ("marlene", "bob", "carol"):
        await client.register(name)
    await browser_login(page)  # lands on the users list
    await expect(page.locator("#users tbody tr")).to_have_count(5)
    await page.fill("input[name=q]", "mallo")  # searched as it is typed
    await expect(page.locator("#users tbody tr")).to_have_count(1)
    await expect(page.locator("#users tbody tr")).to_contain_text("@mallory:test.local")
    assert "q=mallo" in page.url  # the search is in the address, to come back to
    await page.click("#users a:has-text('@mallory:test.local')")
    await page.check("input[name=erase]")
    await page.click("button:has-text('Deactivate')")
    await page.wait_for_selector("#notice .ok:has-text('@mallory:test.local is deactivated and erased')")
    await page.wait_for_selector("#user-details .badge:has-text('deactivated')")

    status, user = await admin.get("/_synapse/admin/v2/users/@mallory:test.local")
    assert status == 200 and user["deactivated"] is True and user["erased"] is True
    status, body = await client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "mallory"},
        "password": "mallory-pass"})
    # Refused (the password went with the account, as Synapse does: M_FORBIDDEN, not M_USER_DEACTIVATED).
    assert status == 403 and body["errcode"] in ("M_FORBIDDEN", "M_USER_DEACTIVATED"), body
    status, body = await mallory.get("/_matrix/client/v3/account/whoami")
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"
    entries, _ = await services.admin_audit.page(from_token=None, limit=10, action="user.")
    assert [(e.admin_id, e.action, e.target, e.details) for e in entries] == [
        ("@admin:test.local", "user.deactivate", "@mallory:test.local", {"erase": True})]


async def test_an_admin_resets_a_password(client, admin, alice):
    csrf = await page_login(client)
    resp = await client.http.post(f"{PAGE}/users/%40alice%3Atest.local/password",
                                  data={"new_password": " new pass ", "logout_devices": "1", "csrf_token": csrf},
                                  headers={"HX-Request": "true"})
    assert resp.status == 200 and "password of @alice:test.local is changed" in await resp.text()
    status, body = await alice.get("/_matrix/client/v3/account/whoami")
    assert status == 401  # logged out everywhere
    status, body = await client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": " new pass "})
    assert status == 200, body
    resp = await client.http.post(f"{PAGE}/users/%40nobody%3Atest.local/password",
                                  data={"new_password": "x", "csrf_token": csrf})
    assert resp.status == 404 and "User not found" in await resp.text()


async def test_what_users_chose_is_shown_as_text(page, client, admin):
    eve = client.with_token((await client.register("eve"))["access_token"])
    name = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    status, _ = await eve.put("/_matrix/client/v3/profile/@eve:test.local/displayname", {"displayname": name})
    assert status == 200
    await browser_login(page)
    await page.fill("input[name=q]", "eve")
    await expect(page.locator("#users tbody tr")).to_have_count(1)
    assert name in await page.inner_text("#users tbody tr:has-text('@eve:test.local')")
    await page.click("#users a:has-text('@eve:test.local')")
    assert name in await page.inner_text("#user-details")
    assert await page.evaluate("window.pwned") is None


# --- rooms ------------------------------------------------------------------------------------

async def test_an_admin_deletes_a_room(page, client, admin, alice, bob, services):
    status, room = await alice.post("/_matrix/client/v3/createRoom", {"name": "Spam <central>", "preset": "public_chat"})
    room_id = room["room_id"]
    status, _ = await bob.post(f"/_matrix/client/v3/join/{room_id}", {})
    assert status == 200
    await alice.post("/_matrix/client/v3/createRoom", {"name": "Book club"})

    await browser_login(page, then="rooms")
    await expect(page.locator("header a[aria-current=page]")).to_have_text("Rooms")
    await expect(page.locator("#rooms tbody tr")).to_have_count(2)
    await page.fill("input[name=q]", "spam")
    await expect(page.locator("#rooms tbody tr")).to_have_count(1)
    await expect(page.locator("#rooms tbody tr")).to_contain_text("Spam <central>")
    await page.click("#rooms a:has-text('Spam <central>')")
    assert {"@alice:test.local", "@bob:test.local"} <= set((await page.inner_text("#members")).split())
    await page.click("button:has-text('Delete room')")  # block and purge are ticked
    await page.wait_for_selector(f"#notice .ok:has-text('Deleting {room_id}')")

    # The deletion runs in the background: its members are out, and may not come back.
    for member in (alice, bob):
        for _ in range(100):
            status, joined = await member.get("/_matrix/client/v3/joined_rooms")
            if room_id not in joined["joined_rooms"]:
                break
            await asyncio.sleep(0.1)
        assert room_id not in joined["joined_rooms"]
    status, body = await bob.post(f"/_matrix/client/v3/join/{room_id}", {})
    assert status == 403, body
    entries, _ = await services.admin_audit.page(from_token=None, limit=10, action="room.delete")
    assert [(e.admin_id, e.target) for e in entries] == [("@admin:test.local", room_id)]


async def test_an_admin_blocks_and_unblocks_a_room(client, admin, alice, bob):
    status, room = await alice.post("/_matrix/client/v3/createRoom", {"preset": "public_chat"})
    room_id = room["room_id"]
    csrf = await page_login(client)
    path = f"{PAGE}/rooms/{room_id.replace('!', '%21').replace(':', '%3A')}"
    resp = await client.http.post(f"{path}/block", data={"block": "1", "csrf_token": csrf}, headers={"HX-Request": "true"})
    assert resp.status == 200 and "is blocked" in await resp.text()
    status, body = await bob.post(f"/_matrix/client/v3/join/{room_id}", {})
    assert status == 403, body
    assert "blocked</span> by @admin:test.local" in await (await client.http.get(path)).text()
    resp = await client.http.post(f"{path}/block", data={"block": "0", "csrf_token": csrf}, headers={"HX-Request": "true"})
    assert resp.status == 200 and "is unblocked" in await resp.text()
    status, body = await bob.post(f"/_matrix/client/v3/join/{room_id}", {})
    assert status == 200, body


# --- reports and federation -----------------------------------------------------------------------

async def test_an_admin_resolves_a_report(page, client, admin, alice, bob):
    status, room = await alice.post("/_matrix/client/v3/createRoom", {"preset": "public_chat"})
    room_id = room["room_id"]
    await bob.post(f"/_matrix/client/v3/join/{room_id}", {})
    status, sent = await alice.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1",
                                   {"msgtype": "m.text", "body": "buy my stuff"})
    status, _ = await bob.post(f"/_matrix/client/v3/rooms/{room_id}/report/{sent['event_id']}",
                               {"reason": "<b>spam</b>", "score": -100})
    assert status == 200
    status, reports = await admin.get("/_synapse/admin/v1/event_reports")
    assert reports["total"] == 1

    await browser_login(page, then="audit_log")
    await page.click("header >> text=Reports")
    row = await page.inner_text("#event-reports tbody tr")
    assert "<b>spam</b>" in row and "@bob:test.local" in row and sent["event_id"] in row
    await page.click("#event-reports button:has-text('Resolve')")
    await page.wait_for_selector("#notice .ok:has-text('is resolved')")
    await page.wait_for_selector("#event-reports td:has-text('No event reports')")

    status, reports = await admin.get("/_synapse/admin/v1/event_reports")
    assert status == 200 and reports["total"] == 0 and reports["event_reports"] == []
    status, audit = await admin.get("/_synapse/admin/v1/audit_log?action=event_report.")
    assert [(e["admin"], e["action"]) for e in audit["entries"]] == [("@admin:test.local", "event_report.delete")]


async def test_an_admin_resets_a_destination_back_off(client, admin, db, services):
    from storage.federation_queue import FederationQueueStore

    await FederationQueueStore(db).record_failure("down.example", 1_000, 60_000)
    csrf = await page_login(client)
    text = await (await client.http.get(f"{PAGE}/destinations")).text()
    assert "down.example" in text and "60.0 s" in text
    resp = await client.http.post(f"{PAGE}/destinations/down.example/reset", data={"csrf_token": csrf},
                                  headers={"HX-Request": "true"})
    assert resp.status == 200 and "back-off of down.example is reset" in await resp.text()
    [row], _ = await services.admin_destinations.list(0, 10)
    assert (row.destination, row.retry_interval, row.failure_ts) == ("down.example", 0, None)
    # Nothing to reset any more: the service's refusal is shown.
    resp = await client.http.post(f"{PAGE}/destinations/down.example/reset", data={"csrf_token": csrf})
    assert resp.status == 400 and "does not need to be reset" in await resp.text()


# --- media --------------------------------------------------------------------------------------

async def test_an_admin_quarantines_media(client, admin, alice, bob):
    async def upload(user, data: bytes) -> str:
        status, body = await user.post("/_matrix/media/v3/upload", raw=data, headers={"Content-Type": "text/plain"})
        assert status == 200, body
        return body["content_uri"]

    one, other = await upload(alice, b"one"), await upload(alice, b"other")
    of_bob = await upload(bob, b"bob's")
    csrf = await page_login(client)
    resp = await client.http.post(f"{PAGE}/media/quarantine", data={"mxc": one, "csrf_token": csrf},
                                  headers={"HX-Request": "true"})
    assert resp.status == 200 and f"1 media quarantined ({one})" in await resp.text()
    resp = await client.http.post(f"{PAGE}/media/quarantine", data={"user_id": "@bob:test.local", "csrf_token": csrf},
                                  headers={"HX-Request": "true"})
    assert resp.status == 200 and "1 media quarantined (@bob:test.local)" in await resp.text()
    for uri, expected in ((one, 404), (other, 200), (of_bob, 404)):
        status, _ = await alice.get(f"/_matrix/client/v1/media/download/{uri.removeprefix('mxc://')}")
        assert status == expected, uri
    status, audit = await admin.get("/_synapse/admin/v1/audit_log?action=media.quarantine")
    assert [(e["admin"], e["target"]) for e in audit["entries"]] == [
        ("@admin:test.local", "@bob:test.local"), ("@admin:test.local", one)]
    for bad in ({"mxc": "https://x/y"}, {}):
        resp = await client.http.post(f"{PAGE}/media/quarantine", data={**bad, "csrf_token": csrf})
        assert resp.status == 400, bad
