"""Password reset by e-mail: POST /account/password/email/requestToken mails a link to an
address of an account; once it is followed, POST /account/password without an access token,
with the m.login.email.identity stage, sets that account's new password (and by default ends
all of its sessions). A small SMTP server receives the mails."""

from __future__ import annotations

import pytest

from tests.api.ratelimits import assert_limited, limits
from tests.api.test_email_threepids import validate
from tests.smtp import smtp  # noqa: F401 (fixture)

V3 = "/_matrix/client/v3"
REQUEST_TOKEN = f"{V3}/account/password/email/requestToken"


@pytest.fixture
def config_overrides(smtp):
    return {"public_baseurl": "https://hs.test.local/",
            "email": {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                      "notif_from": "chat@test.local"}}


async def alice_with_address(client, smtp, address="alice@example.org"):
    """Alice on two devices, with `address` added to her account; her two clients."""
    first = client.with_token((await client.register("alice", "old-pass-1"))["access_token"])
    sid = await validate(client, smtp, address, "/account/3pid/email/requestToken", secret="ADD")
    status, body = await first.post(f"{V3}/account/3pid", {"three_pid_creds": {"sid": sid, "client_secret": "ADD"}})
    assert status == 200, body
    second = client.with_token(await log_in(client, "old-pass-1"))
    return first, second


async def log_in(client, password: str) -> str | None:
    status, body = await client.post(f"{V3}/login", {"type": "m.login.password", "password": password,
                                                     "identifier": {"type": "m.id.user", "user": "alice"}})
    return body["access_token"] if status == 200 else None


async def reset(client, sid: str, secret: str, **extra):
    """The two steps of the UIA: the challenge, then the e-mail stage in its session."""
    status, challenge = await client.post(f"{V3}/account/password", {"new_password": "new-pass-2", **extra})
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.email.identity"]}], challenge
    return await client.post(f"{V3}/account/password", {
        "new_password": "new-pass-2", **extra,
        "auth": {"type": "m.login.email.identity", "session": challenge["session"],
                 "threepid_creds": {"sid": sid, "client_secret": secret}}})


async def test_reset_by_email_sets_the_password_and_logs_out_every_device(client, smtp):
    first, second = await alice_with_address(client, smtp)
    sent = len(smtp.mails)
    # Any case of the address finds it; the mail goes to the address as the account has it.
    sid = await validate(client, smtp, "Alice@Example.org", "/account/password/email/requestToken")
    mail = smtp.mails[sent]
    assert "Reset your password" in mail["Subject"]
    assert "reset your password" in mail.get_payload(decode=True).decode()

    status, challenge = await client.post(f"{V3}/account/password", {"new_password": "new-pass-2"})
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.email.identity"]}], challenge
    session = challenge["session"]
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "new-pass-2", "auth": {"type": "m.login.email.identity", "session": session,
                                               "threepid_creds": {"sid": sid, "client_secret": "SECRET"}}})
    assert (status, body) == (200, {})
    assert await log_in(client, "old-pass-1") is None
    assert await log_in(client, "new-pass-2") is not None
    for old in (first, second):
        status, body = await old.get(f"{V3}/account/whoami")
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # The UIA session is spent; the validated address, still Alice's, proves it in a new one.
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "third-pass", "auth": {"type": "m.login.email.identity", "session": session,
                                               "threepid_creds": {"sid": sid, "client_secret": "SECRET"}}})
    assert (status, body["errcode"]) == (400, "M_UNKNOWN")
    status, body = await client.post(f"{V3}/account/password", {
        "new_password": "third-pass", "auth": {"type": "m.login.email.identity",
                                               "threepid_creds": {"sid": sid, "client_secret": "SECRET"}}})
    assert status == 200, body
    assert await log_in(client, "third-pass") is not None


async def test_reset_can_keep_the_other_devices(client, smtp):
    first, second = await alice_with_address(client, smtp)
    sid = await validate(client, smtp, "alice@example.org", "/account/password/email/requestToken")
    assert await reset(client, sid, "SECRET", logout_devices=False) == (200, {})
    assert await log_in(client, "new-pass-2") is not None
    for old in (first, second):
        status, body = await old.get(f"{V3}/account/whoami")
        assert (status, body["user_id"]) == (200, "@alice:test.local")


async def test_an_address_of_no_account_is_refused(client, smtp):
    await alice_with_address(client, smtp)
    sent = len(smtp.mails)
    status, body = await client.post(REQUEST_TOKEN, {"client_secret": "S", "email": "bob@example.org",
                                                     "send_attempt": 1})
    assert (status, body["errcode"]) == (400, "M_THREEPID_NOT_FOUND")
    assert len(smtp.mails) == sent


async def test_an_unvalidated_session_does_not_reset(client, smtp):
    await alice_with_address(client, smtp)
    status, body = await client.post(REQUEST_TOKEN, {"client_secret": "SECRET", "email": "alice@example.org",
                                                     "send_attempt": 1})
    assert status == 200 and smtp.mails[-1]["To"] == "alice@example.org"
    status, body = await reset(client, body["sid"], "SECRET")
    assert status == 401 and body["errcode"] == "M_FORBIDDEN" and body["completed"] == [], body
    # A wrong secret for the session is no proof either.
    link_sid = await validate(client, smtp, "alice@example.org", "/account/password/email/requestToken",
                              secret="OTHER")
    status, body = await reset(client, link_sid, "SECRET")
    assert status == 401 and body["completed"] == [], body
    assert await log_in(client, "old-pass-1") is not None
    assert await log_in(client, "new-pass-2") is None


async def test_an_address_validated_for_no_account_does_not_reset(client, smtp):
    """Validated through registration's requestToken, but nobody has the address: 404 as Synapse."""
    await alice_with_address(client, smtp)
    sid = await validate(client, smtp, "nobody@example.org", "/register/email/requestToken")
    status, body = await reset(client, sid, "SECRET")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert await log_in(client, "old-pass-1") is not None


@pytest.mark.parametrize("body, errcode", [
    ({"email": "alice@example.org", "send_attempt": 1}, "M_INVALID_PARAM"),
    ({"client_secret": "bad secret!", "email": "alice@example.org", "send_attempt": 1}, "M_INVALID_PARAM"),
    ({"client_secret": "S", "email": "not-an-address", "send_attempt": 1}, "M_INVALID_PARAM"),
    ({"client_secret": "S", "email": "alice@example.org", "send_attempt": "1"}, "M_INVALID_PARAM"),
    ({"client_secret": "S", "email": ["alice@example.org"], "send_attempt": 1}, "M_INVALID_PARAM"),
    ([], "M_BAD_JSON"),
    (b"{not json", "M_NOT_JSON"),
])
async def test_bad_token_requests_get_matrix_errors(client, smtp, body, errcode):
    await alice_with_address(client, smtp)
    sent = len(smtp.mails)
    if isinstance(body, bytes):
        status, answer = await client.post(REQUEST_TOKEN, raw=body)
    else:
        status, answer = await client.post(REQUEST_TOKEN, body)
    assert (status, answer["errcode"]) == (400, errcode), answer
    assert len(smtp.mails) == sent


@pytest.mark.parametrize("body, errcode", [
    ({}, "M_MISSING_PARAM"),
    ({"new_password": 5}, "M_MISSING_PARAM"),
    ({"new_password": "x" * 513}, "M_INVALID_PARAM"),
    ({"new_password": "new-pass-2", "logout_devices": "no"}, "M_BAD_JSON"),
    ({"new_password": "new-pass-2", "auth": "email"}, "M_BAD_JSON"),
    ({"new_password": "new-pass-2", "auth": {"type": "m.login.password", "password": "old-pass-1"}},
     "M_UNRECOGNIZED"),
])
async def test_bad_reset_requests_get_matrix_errors(client, smtp, body, errcode):
    await alice_with_address(client, smtp)
    status, answer = await client.post(f"{V3}/account/password", body)
    assert (status, answer["errcode"]) == (400, errcode), answer
    assert await log_in(client, "old-pass-1") is not None


async def test_with_an_access_token_the_current_password_is_still_asked(client, smtp):
    first, _ = await alice_with_address(client, smtp)
    status, challenge = await first.post(f"{V3}/account/password", {"new_password": "new-pass-2"})
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
    status, body = await first.post(f"{V3}/account/password", {
        "new_password": "new-pass-2", "auth": {"type": "m.login.password", "session": challenge["session"],
                                               "identifier": {"type": "m.id.user", "user": "alice"},
                                               "password": "old-pass-1"}})
    assert status == 200, body
    assert (await first.get(f"{V3}/account/whoami"))[0] == 200  # its own session stays
    status, body = await client.with_token("not-a-token").post(f"{V3}/account/password", {"new_password": "x"})
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


class TestWithoutEmail:
    @pytest.fixture
    def config_overrides(self):
        return {}

    async def test_token_requests_are_refused(self, client):
        status, body = await client.post(REQUEST_TOKEN, {"client_secret": "S", "email": "alice@example.org",
                                                         "send_attempt": 1})
        assert (status, body["errcode"]) == (400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")


class TestRateLimited:
    """The reset mails count against rc_3pid_validation, as the other requestToken mails."""

    @pytest.fixture
    def config_overrides(self, smtp):
        return {**limits({"rc_3pid_validation": {"per_second": 0.001, "burst_count": 2}}),
                "public_baseurl": "https://hs.test.local/",
                "email": {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                          "notif_from": "chat@test.local"}}

    async def test_reset_mails_are_limited(self, client, services, smtp):
        await client.register("alice", "old-pass-1")
        await services.threepids.add_validated("@alice:test.local", "email", "alice@example.org", 0)
        for attempt in (1, 2):
            status, body = await client.post(REQUEST_TOKEN, {"client_secret": "S", "email": "alice@example.org",
                                                             "send_attempt": attempt})
            assert status == 200, body
        await assert_limited(client, "POST", REQUEST_TOKEN,
                             {"client_secret": "S", "email": "alice@example.org", "send_attempt": 3})
        assert len(smtp.mails) == 2
