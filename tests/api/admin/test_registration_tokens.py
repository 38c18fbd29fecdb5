"""Registration tokens through Synapse's admin API: created by an admin, used to register, counted."""

import time

import pytest

TOKENS = "/_synapse/admin/v1/registration_tokens"
REGISTER = "/_matrix/client/v3/register"


@pytest.fixture
def config_overrides():
    return {"registration": {"enabled": True, "requires_token": True}}


@pytest.fixture
async def alice(client, services):
    """A non-admin (registration here needs a token, so made directly)."""
    await services.accounts.create_user("alice", "pw-alice-1")
    status, login = await client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "pw-alice-1"})
    assert status == 200, login
    return client.with_token(login["access_token"])


async def register_with(client, username: str, token: str):
    status, challenge = await client.post(REGISTER, {"username": username, "password": "pw-long-enough"})
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.registration_token"]}]
    return await client.post(REGISTER, {
        "username": username, "password": "pw-long-enough",
        "auth": {"type": "m.login.registration_token", "token": token, "session": challenge["session"]}})


async def test_a_token_made_by_an_admin_lets_someone_register_and_its_counts_move(client, admin):
    status, made = await admin.post(f"{TOKENS}/new", {"token": "welcome.1", "uses_allowed": 1})
    assert status == 200, made
    assert made == {"token": "welcome.1", "uses_allowed": 1, "pending": 0, "completed": 0, "expiry_time": None}

    status, body = await register_with(client, "newcomer", "welcome.1")
    assert status == 200 and body["user_id"] == "@newcomer:test.local", body

    status, token = await admin.get(f"{TOKENS}/welcome.1")
    assert status == 200 and (token["pending"], token["completed"]) == (0, 1)
    # Used up: listed as invalid, and nobody else gets in with it.
    status, valid = await admin.get(f"{TOKENS}?valid=true")
    assert [t["token"] for t in valid["registration_tokens"]] == []
    status, invalid = await admin.get(f"{TOKENS}?valid=false")
    assert [t["token"] for t in invalid["registration_tokens"]] == ["welcome.1"]
    status, body = await register_with(client, "latecomer", "welcome.1")
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"

    # One more use allowed: valid again, and it works.
    status, token = await admin.put(f"{TOKENS}/welcome.1", {"uses_allowed": 2})
    assert status == 200 and token["uses_allowed"] == 2 and token["completed"] == 1
    status, body = await register_with(client, "latecomer", "welcome.1")
    assert status == 200, body
    status, token = await admin.get(f"{TOKENS}/welcome.1")
    assert token["completed"] == 2

    status, audit = await admin.get("/_synapse/admin/v1/audit_log?action=registration_token.")
    assert [(e["action"], e["target"]) for e in audit["entries"]] == [
        ("registration_token.update", "welcome.1"), ("registration_token.create", "welcome.1")]


async def test_generated_tokens_listing_update_and_delete(admin):
    status, random = await admin.post(f"{TOKENS}/new", {})
    assert status == 200 and len(random["token"]) == 16
    status, short = await admin.post(f"{TOKENS}/new", {"length": 5, "uses_allowed": 0})
    assert status == 200 and len(short["token"]) == 5 and short["uses_allowed"] == 0
    future = int(time.time() * 1000) + 3_600_000
    status, dated = await admin.post(f"{TOKENS}/new", {"token": "dated", "expiry_time": future})
    assert status == 200 and dated["expiry_time"] == future

    status, listed = await admin.get(TOKENS)
    assert sorted(t["token"] for t in listed["registration_tokens"]) == sorted(
        [random["token"], short["token"], "dated"])
    status, valid = await admin.get(f"{TOKENS}?valid=true")
    assert sorted(t["token"] for t in valid["registration_tokens"]) == sorted([random["token"], "dated"])

    # Absent fields are kept; null means unlimited / never.
    status, token = await admin.put(f"{TOKENS}/dated", {"uses_allowed": 3})
    assert (token["uses_allowed"], token["expiry_time"]) == (3, future)
    status, token = await admin.put(f"{TOKENS}/dated", {"expiry_time": None})
    assert (token["uses_allowed"], token["expiry_time"]) == (3, None)
    status, token = await admin.put(f"{TOKENS}/dated", {})
    assert status == 200 and token["uses_allowed"] == 3

    status, body = await admin.delete(f"{TOKENS}/dated")
    assert status == 200 and body == {}
    status, body = await admin.get(f"{TOKENS}/dated")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await admin.delete(f"{TOKENS}/dated")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("body", [
    {"token": "has space"}, {"token": ""}, {"token": "x" * 65}, {"token": 12}, {"length": 0}, {"length": 65},
    {"length": "8"}, {"uses_allowed": -1}, {"uses_allowed": 1.5}, {"uses_allowed": True},
    {"uses_allowed": 2**40}, {"expiry_time": 1000}, {"expiry_time": "soon"},
])
async def test_bad_tokens_are_refused(admin, body):
    status, answer = await admin.post(f"{TOKENS}/new", body)
    assert status == 400 and answer["errcode"] == "M_INVALID_PARAM", answer
    status, listed = await admin.get(TOKENS)
    assert listed["registration_tokens"] == []  # nothing half-made


async def test_errors(admin, alice):
    await admin.post(f"{TOKENS}/new", {"token": "once"})
    status, body = await admin.post(f"{TOKENS}/new", {"token": "once"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.put(f"{TOKENS}/once", {"uses_allowed": "many"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.put(f"{TOKENS}/missing", {"uses_allowed": 1})
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await admin.get(f"{TOKENS}?valid=maybe")
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    status, body = await admin.request("POST", f"{TOKENS}/new", raw=b"not json")
    assert status == 400 and body["errcode"] == "M_NOT_JSON"
    for method, path in (("GET", TOKENS), ("POST", f"{TOKENS}/new"), ("GET", f"{TOKENS}/once"),
                         ("DELETE", f"{TOKENS}/once")):
        status, body = await alice.request(method, path, {})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
