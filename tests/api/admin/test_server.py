"""Server version and background updates (ChatGO has none) through Synapse's admin API."""

from importlib.metadata import version

BG = "/_synapse/admin/v1/background_updates"


async def test_server_version(admin, alice):
    status, body = await admin.get("/_synapse/admin/v1/server_version")
    assert status == 200 and body == {"server_version": f"ChatGO {version('chatgo')}"}
    status, body = await alice.get("/_synapse/admin/v1/server_version")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_background_updates_are_enabled_with_nothing_running(admin):
    status, body = await admin.get(f"{BG}/status")
    assert status == 200 and body == {"enabled": True, "current_updates": {}}
    status, body = await admin.get(f"{BG}/enabled")
    assert status == 200 and body == {"enabled": True}

    # Pausing is remembered (there is nothing to pause), and resuming too.
    status, body = await admin.post(f"{BG}/enabled", {"enabled": False})
    assert status == 200 and body == {"enabled": False}
    status, body = await admin.get(f"{BG}/status")
    assert body == {"enabled": False, "current_updates": {}}
    status, body = await admin.post(f"{BG}/enabled", {})
    assert status == 200 and body == {"enabled": True}
    status, audit = await admin.get("/_synapse/admin/v1/audit_log?action=background_updates.")
    assert [e["details"] for e in audit["entries"]] == [{"enabled": True}, {"enabled": False}]


async def test_start_job(admin, alice):
    for job in ("populate_stats_process_rooms", "regenerate_directory"):
        status, body = await admin.post(f"{BG}/start_job", {"job_name": job})
        assert status == 200 and body == {}, job
    status, body = await admin.post(f"{BG}/start_job", {"job_name": "event_resign"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.post(f"{BG}/start_job", {"job_name": 7})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.post(f"{BG}/start_job", {})
    assert status == 400 and body["errcode"] == "M_MISSING_PARAM"
    status, body = await admin.post(f"{BG}/enabled", {"enabled": "no"})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await alice.post(f"{BG}/start_job", {"job_name": "regenerate_directory"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
