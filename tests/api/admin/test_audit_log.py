"""Admin routes (Auth.ADMIN) and the audit log of admin changes."""

AUDIT = "/_synapse/admin/v1/audit_log"


async def test_admin_routes_need_a_server_admin(client, alice):
    status, body = await client.get(AUDIT)
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"
    status, body = await alice.get(AUDIT)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_the_audit_log_pages_newest_first_and_filters(admin, services):
    for n in range(5):
        await services.admin_audit.record("@admin:test.local", "user.deactivate", f"@u{n}:test.local", erase=n == 4)
    await services.admin_audit.record("@admin:test.local", "room.delete", "!r:test.local")

    status, body = await admin.get(f"{AUDIT}?limit=4")
    assert status == 200, body
    assert [e["target"] for e in body["entries"]] == ["!r:test.local", "@u4:test.local", "@u3:test.local", "@u2:test.local"]
    assert body["entries"][1]["details"] == {"erase": True} and body["entries"][1]["admin"] == "@admin:test.local"
    status, rest = await admin.get(f"{AUDIT}?limit=4&from={body['next_token']}")
    assert [e["target"] for e in rest["entries"]] == ["@u1:test.local", "@u0:test.local"] and "next_token" not in rest

    status, users = await admin.get(f"{AUDIT}?action=user.")
    assert len(users["entries"]) == 5 and {e["action"] for e in users["entries"]} == {"user.deactivate"}
    status, one = await admin.get(f"{AUDIT}?target=%40u2%3Atest.local")
    assert [e["target"] for e in one["entries"]] == ["@u2:test.local"]


async def test_bad_paging_gets_matrix_errors(admin):
    for query in ("limit=0", "limit=abc", "limit=5000", "from=xyz", "from=-1"):
        status, body = await admin.get(f"{AUDIT}?{query}")
        assert status == 400 and body["errcode"] in ("M_INVALID_PARAM",), (query, body)


async def test_the_admin_api_can_be_kept_off_client_listeners(aiohttp_client, services, admin):
    """admin_api.on_client_listeners: false serves /_synapse/admin only where `admin` is listed."""
    import dataclasses

    from homeserver.config import AdminApiConfig
    from homeserver.web_app import make_web_app
    from tests.server_fixtures import MatrixClient

    config = dataclasses.replace(services.config, admin_api=AdminApiConfig(on_client_listeners=False))
    kept_off = dataclasses.replace(services, config=config)
    token = admin.token
    client_only = MatrixClient(await aiohttp_client(make_web_app(kept_off, ["client"])), token)
    status, _ = await client_only.get(AUDIT)
    assert status == 404
    status, body = await client_only.get("/_matrix/client/v3/account/whoami")
    assert status == 200 and body["user_id"] == "@admin:test.local"
    admin_listener = MatrixClient(await aiohttp_client(make_web_app(kept_off, ["admin"])), token)
    status, body = await admin_listener.get(AUDIT)
    assert status == 200 and body["entries"] == []
