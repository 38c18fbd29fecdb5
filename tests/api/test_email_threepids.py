"""E-mail addresses as 3PIDs: requestToken and the mailed link, registering with an address,
adding one to an account, logging in with it, and removing it. A small SMTP server stands in."""

from __future__ import annotations

import asyncio
import email
import re

import pytest

from homeserver.app import build_services
from tests.conftest import make_test_config

V3 = "/_matrix/client/v3"


class FakeSmtp:
    """Just enough SMTP to receive mails: HELO/EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.knows_quit = True
        self.mails: list[email.message.Message] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode().strip().upper()
            if command.startswith("DATA"):
                writer.write(b"354 go on\r\n")
                await writer.drain()
                data = b""
                while (chunk := await reader.readline()) != b".\r\n":
                    data += chunk
                self.mails.append(email.message_from_bytes(data))
                writer.write(b"250 queued\r\n")
            elif command.startswith("QUIT") and not self.knows_quit:  # as sytest's SMTP helper
                writer.write(b"500 Syntax error: unrecognized command\r\n")
                await writer.drain()
                break
            elif command.startswith("QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    def link(self) -> str:
        return re.search(r"(http\S+)", self.mails[-1].get_payload(decode=True).decode()).group(1)


@pytest.fixture
async def smtp():
    server = FakeSmtp()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def services(db, signing_key, smtp):
    config = make_test_config(public_baseurl="https://hs.test.local/",
                              email={"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                                     "notif_from": "chat@test.local"})
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


async def test_register_with_an_email_address_then_log_in_with_it(client, smtp):
    status, challenge = await client.post(f"{V3}/register", {"username": "alice", "password": "pw-alice-1"})
    assert {"stages": ["m.login.email.identity"]} in challenge["flows"]
    sid = await validate(client, smtp, "Alice@Example.org", "/register/email/requestToken")
    status, body = await client.post(f"{V3}/register", {
        "username": "alice", "password": "pw-alice-1",
        "auth": {"type": "m.login.email.identity", "session": challenge["session"],
                 "threepid_creds": {"sid": sid, "client_secret": "SECRET"}}})
    assert status == 200, body
    alice = client.with_token(body["access_token"])
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
