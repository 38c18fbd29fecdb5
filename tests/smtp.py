"""A real SMTP server for the tests (aiosmtpd), on loopback in the test's event loop.

    server = MailServer(); await server.start()   # server.port; server.mails; server.link()
    from tests.smtp import smtp  # noqa: F401 (the `smtp` fixture: one started for the test)

`knows_quit = False` makes it answer QUIT with 500 and hang up, as sytest's SMTP helper does:
our mailer must count a mail as sent once DATA was accepted.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import re
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session


class MailServer:
    def __init__(self) -> None:
        self.knows_quit = True
        self.mails: list[email.message.Message] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, hostname="localhost"), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # aiosmtpd handler hooks
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append(email.message_from_bytes(envelope.original_content or b""))
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        return "221 Bye" if self.knows_quit else "500 Syntax error: unrecognized command"

    def link(self) -> str:
        """The first URL in the text of the last mail."""
        return re.search(r"(http\S+)", self.mails[-1].get_payload(decode=True).decode()).group(1)


@pytest.fixture
async def smtp():
    """A MailServer running for the test."""
    server = MailServer()
    await server.start()
    yield server
    await server.stop()
