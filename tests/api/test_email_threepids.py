"""E-mail addresses as 3PIDs: requestToken and the mailed link, registering with an address,
adding one to an account, logging in with it, and removing it, with a real SMTP server
(aiosmtpd, tests/smtp.py) receiving the mails."""

from __future__ import annotations

import pytest

from homeserver.app import build_services
from tests.conftest import make_test_config
from tests.smtp import smtp  # noqa: F401 (fixture)

V3 = "/_matrix/client/v3"


@pytest.fixture
def inhibit_errors() -> bool:
    """email.request_token_inhibit_3pid_errors (a test parametrizes it to True)."""
    return False


@pytest.fixture
async def services(db, signing_key, smtp, inhibit_errors):
    config = make_test_config(public_baseurl="https://hs.test.local/",
                              email={"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                                     "notif_from": "chat@test.local",
                                     "request_token_inhibit_3pid_errors": inhibit_errors})
    services = build_services(config, db, signing_key=signing_key)
    yield services
    await services.devices.flush()
    await services.threepids.close()


async def validate(client, smtp, address, path, secret="SECRET") -> str:
    status, body = await client.post(f"{V3}{path}", {"client_secret": secret, "email": address, "send_attempt": 1,
                                                     "id_server": "id.example.org"})
    assert status == 200, body
    sid = body["sid"]
    mail = smtp.mails[-1]
    assert mail["To"] == address.lower() and mail["From"] == "chat@test.local"  # canonical form
    link = smtp.link()
    assert link.startswith("https://hs.test.local/_matrix/client/unstable/chatgo/email/submit_token?")
    resp = await client.http.get(link.removeprefix("https://hs.test.local"))
    assert resp.status == 200
    # The same send_attempt sends no second mail.
    count = len(smtp.mails)
    status, again = await client.post(f"{V3}{path}", {"client_secret": secret, "email": address, "send_attempt": 1})
    assert again == {"sid": sid} and len(smtp.mails) == count
    return sid


async def register_with_email(client, smtp, address: str):
    """Alice, registered with `address` validated (the mailed link followed): her client."""
    status, challenge = await client.post(f"{V3}/register", {"username": "alice", "password": "pw-alice-1"})
    assert {"stages": ["m.login.email.identity"]} in challenge["flows"]
    sid = await validate(client, smtp, address, "/register/email/requestToken")
    status, body = await client.post(f"{V3}/register", {
        "username": "alice", "password": "pw-alice-1",
        "auth": {"type": "m.login.email.identity", "session": challenge["session"],
                 "threepid_creds": {"sid": sid, "client_secret": "SECRET"}}})
    assert status == 200, body
    return client.with_token(body["access_token"])


async def test_register_with_an_email_address_then_log_in_with_it(client, smtp):
    alice = await register_with_email(client, smtp, "Alice@Example.org")
    status, body = await alice.get(f"{V3}/account/3pid")
    assert [(t["medium"], t["address"]) for t in body["threepids"]] == [("email", "alice@example.org")]
    for login in ({"identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "alice@example.org"}},
                  {"medium": "email", "address": "ALICE@example.org"}):
        status, body = await client.post(f"{V3}/login", {"type": "m.login.password", "password": "pw-alice-1", **login})
        assert status == 200 and body["user_id"] == "@alice:test.local", body
    status, body = await client.post(f"{V3}/login", {"type": "m.login.password", "password": "pw-alice-1",
                                                     "medium": "email", "address": "nobody@example.org"})
    assert status == 403
    # The address is taken now.
    status, body = await client.post(f"{V3}/register/email/requestToken",
                                     {"client_secret": "OTHER", "email": "alice@example.org", "send_attempt": 1})
    assert (status, body["errcode"]) == (400, "M_THREEPID_IN_USE")


@pytest.mark.parametrize("inhibit_errors", [True])
async def test_inhibited_errors_answer_as_if_a_mail_went_and_send_none(client, smtp):
    alice = await register_with_email(client, smtp, "alice@example.org")
    mails = len(smtp.mails)
    # Taken (registering it, adding it) and unknown (a password reset): a session ID, no mail.
    for path, address in (("/register/email/requestToken", "alice@example.org"),
                          ("/account/3pid/email/requestToken", "ALICE@example.org"),
                          ("/account/password/email/requestToken", "nobody@example.org")):
        status, body = await client.post(f"{V3}{path}", {"client_secret": "OTHER", "email": address,
                                                         "send_attempt": 1})
        assert status == 200 and set(body) == {"sid"}, (path, body)
    assert len(smtp.mails) == mails
    # That session never validates: adding the address with it fails.
    status, body = await alice.post(f"{V3}/account/3pid/add", {
        "client_secret": "OTHER", "sid": body["sid"],
        "auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                 "password": "pw-alice-1"}})
    assert (status, body.get("errcode")) == (400, "M_THREEPID_AUTH_FAILED"), body
    # An address free for the asking still gets its mail.
    status, body = await client.post(f"{V3}/register/email/requestToken",
                                     {"client_secret": "OTHER", "email": "bob@example.org", "send_attempt": 1})
    assert status == 200 and len(smtp.mails) == mails + 1


async def test_add_and_delete_an_address(client, smtp):
    alice = client.with_token((await client.register("alice", "pw-alice-1"))["access_token"])
    # Unvalidated: refused.
    status, body = await client.post(f"{V3}/account/3pid/email/requestToken",
                                     {"client_secret": "S2", "email": "a@example.org", "send_attempt": 1})
    status, body = await alice.post(f"{V3}/account/3pid", {"three_pid_creds": {"sid": body["sid"], "client_secret": "S2"}})
    assert (status, body["errcode"]) == (400, "M_THREEPID_AUTH_FAILED")
    sid = await validate(client, smtp, "a@example.org", "/account/3pid/email/requestToken", secret="S2")
    status, body = await alice.post(f"{V3}/account/3pid", {"three_pid_creds": {"sid": sid, "client_secret": "wrong"}})
    assert status == 400
    status, body = await alice.post(f"{V3}/account/3pid", {"three_pid_creds": {"sid": sid, "client_secret": "S2"}})
    assert status == 200, body
    assert len((await alice.get(f"{V3}/account/3pid"))[1]["threepids"]) == 1
    status, body = await alice.post(f"{V3}/account/3pid/delete", {"medium": "email", "address": "a@example.org"})
    assert status == 200
    assert (await alice.get(f"{V3}/account/3pid"))[1]["threepids"] == []
    # A forged link validates nothing.
    resp = await client.http.get(f"/_matrix/client/unstable/chatgo/email/submit_token?sid={sid}&client_secret=S2&token=x")
    assert resp.status == 400


async def test_a_server_that_does_not_know_quit_still_gets_the_mail(client, smtp):
    smtp.knows_quit = False
    status, body = await client.post(f"{V3}/register/email/requestToken",
                                     {"client_secret": "S3", "email": "b@example.org", "send_attempt": 1})
    assert status == 200 and smtp.mails[-1]["To"] == "b@example.org"
