"""Logs: every line of a request carries its ID, one access log line per request, JSON or text."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import uuid

import pytest
from aiohttp import web

from homeserver.api.http import ROOT, Auth, install_routes, route
from homeserver.logs import log_handler
from homeserver.web_app import make_web_app

V3 = "/_matrix/client/v3"
SEND_SERVLET = "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"
logger = logging.getLogger("chatgo.test")


@route("GET", "/_test/log/{n}", auth=Auth.NONE, prefixes=ROOT)
async def logging_handler(request: web.Request) -> web.Response:
    """GET /_test/log/{n}

    Logs in the handler, after a switch to other requests, and in a task it starts.
    """
    n = request.match_info["n"]
    logger.info("start %s", n)
    await asyncio.sleep(0.01)  # let the other requests run in between
    await asyncio.create_task(_child(n))
    logger.warning("end %s", n)
    return web.Response(text="ok")


async def _child(n: str) -> None:
    logger.info("child %s", n)


@pytest.fixture
def captured():
    """Log lines of the whole process as JSON objects (a handler on the root logger, as
    `chatgo run` installs with log_format: json)."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


async def test_every_line_of_a_request_carries_its_request_id(aiohttp_client, services, captured):
    app = make_web_app(services, ["client"])
    install_routes(app, [sys.modules[__name__]], services)
    http = await aiohttp_client(app)
    responses = await asyncio.gather(*(http.get(f"/_test/log/{n}") for n in range(3)))
    assert [r.status for r in responses] == [200] * 3

    lines = captured()
    ids = set()
    for n in range(3):
        mine = [line for line in lines if line["message"].endswith(f" {n}") and line["logger"] == "chatgo.test"]
        access = [line for line in lines if line["logger"] == "chatgo.access" and line["path"] == f"/_test/log/{n}"]
        assert [line["message"] for line in mine] == [f"start {n}", f"child {n}", f"end {n}"]
        assert len(access) == 1
        request_ids = {line["request"] for line in mine + access}
        assert len(request_ids) == 1, request_ids  # the same ID on every line of the request
        (request_id,) = request_ids
        assert re.fullmatch(r"GET-\d+", request_id)
        ids.add(request_id)
    assert len(ids) == 3  # and each request its own
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    logging.getLogger("chatgo.test").handle(outside)
    assert captured()[-1]["request"] == "-"


async def test_one_access_log_line_per_request(alice, client, captured):
    status, body = await alice.post(f"{V3}/createRoom", {})
    room_id = body["room_id"]
    status, _ = await alice.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}?access_token=secret",
                                {"msgtype": "m.text", "body": "hi"})
    assert status == 200
    assert (await client.get(f"{V3}/account/whoami"))[0] == 401

    access = [line for line in captured() if line["logger"] == "chatgo.access"]
    assert [(line["method"], line["servlet"]) for line in access] == [
        ("POST", "/_matrix/client/v3/createRoom"), ("PUT", SEND_SERVLET),
        ("GET", "/_matrix/client/v3/account/whoami")]
    create, send, whoami = access
    assert (send["status"], send["user"], send["client_ip"], send["level"]) == (200, "@alice:test.local",
                                                                                  "127.0.0.1", "INFO")
    assert send["path"].startswith("/_matrix/client/v3/rooms/") and "secret" not in json.dumps(send)
    assert 0 < send["duration_s"] < 30
    assert re.fullmatch(r"PUT-\d+", send["request"])
    assert (whoami["status"], whoami["user"]) == (401, "-")
    assert send["message"].startswith(f"127.0.0.1 @alice:test.local PUT {send['path']} 200 ")


def test_text_and_json_formats_as_chatgo_run_sets_them_up():
    """setup_logging as `chatgo run` calls it, in a process of its own (it replaces the root
    logger's handlers)."""
    script = """if True:
        import logging, sys
        from homeserver.logs import REQUEST_ID, setup_logging
        setup_logging("INFO", sys.argv[1], access_log=sys.argv[2] == "on")
        logging.getLogger("chatgo.x").debug("hidden")
        REQUEST_ID.set("GET-7")
        logging.getLogger("chatgo.x").info("hello %s", "there")
        logging.getLogger("chatgo.access").info("access", extra={"status": 200})
        try:
            1 / 0
        except ZeroDivisionError:
            logging.getLogger("chatgo.x").exception("failed")
    """

    def run(log_format: str, access: str) -> list[str]:
        result = subprocess.run([sys.executable, "-c", script, log_format, access], capture_output=True, text=True,
                                check=True)
        return result.stderr.splitlines()

    lines = [json.loads(line) for line in run("json", "on")]
    assert [(line["logger"], line["message"], line["request"]) for line in lines] == [
        ("chatgo.x", "hello there", "GET-7"), ("chatgo.access", "access", "GET-7"), ("chatgo.x", "failed", "GET-7")]
    assert lines[1]["status"] == 200 and "ZeroDivisionError" in lines[2]["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", lines[0]["time"])

    text = run("text", "off")
    assert re.fullmatch(r"\S+ \S+ INFO chatgo\.x GET-7: hello there", text[0])
    assert not any("access" in line for line in text)  # access_log: false
    assert text[1].endswith("ERROR chatgo.x GET-7: failed") and "ZeroDivisionError" in text[-1]
