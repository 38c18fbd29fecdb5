"""The m.login.recaptcha stage, checked with a fake siteverify service."""

import pytest
from aiohttp import web

from homeserver.app import build_services
from tests.conftest import make_test_config

V3 = "/_matrix/client/v3"


@pytest.fixture
async def siteverify(aiohttp_server):
    seen = []

    async def verify(request: web.Request) -> web.Response:
        form = dict(await request.post())
        seen.append(form)
        return web.json_response({"success": form.get("response") == "good-answer"})

    app = web.Application()
    app.router.add_post("/recaptcha/api/siteverify", verify)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}/recaptcha/api/siteverify", seen


@pytest.fixture
async def services(db, signing_key, siteverify, request):
    url, _ = siteverify
    required = getattr(request, "param", False)
    config = make_test_config(
        registration={"enabled": True, "requires_captcha": required, "recaptcha_public_key": "pub",
                      "recaptcha_private_key": "priv", "recaptcha_siteverify_api": url},
        federation={"ip_range_allowlist": ["127.0.0.0/8"]})
    services = build_services(config, db, signing_key=signing_key)
    yield services
    await services.devices.flush()
    await services.threepids.close()


async def test_captcha_stage_is_checked_even_outside_the_flows(client, siteverify):
    # As Synapse: with the keys set, the stage can be completed though registration asks only
    # for m.login.dummy (sytest relies on it).
    _, seen = siteverify
    body = {"username": "alice", "password": "pw-alice-1"}
    status, challenge = await client.post(f"{V3}/register", {**body, "auth": {"type": "m.login.recaptcha", "response": "bad"}})
    assert status == 401 and challenge["errcode"] == "M_FORBIDDEN" and challenge["completed"] == []
    assert seen[-1] == {"secret": "priv", "response": "bad"}
    status, challenge = await client.post(f"{V3}/register", {**body, "auth": {
        "type": "m.login.recaptcha", "response": "good-answer", "session": challenge["session"]}})
    assert status == 401 and challenge["completed"] == ["m.login.recaptcha"]
    assert challenge["flows"] == [{"stages": ["m.login.dummy"]}] and challenge["params"] == {}


@pytest.mark.parametrize("services", [True], indirect=True)
async def test_registration_requiring_a_captcha(client, services):
    status, challenge = await client.post(f"{V3}/register", {"username": "bob", "password": "pw-bob-123"})
    assert challenge["flows"] == [{"stages": ["m.login.recaptcha", "m.login.dummy"]}]
    assert challenge["params"] == {"m.login.recaptcha": {"public_key": "pub"}}
    session = challenge["session"]
    status, _ = await client.post(f"{V3}/register", {"auth": {"type": "m.login.dummy", "session": session}})
    assert status == 401
    status, _ = await client.post(f"{V3}/register", {"auth": {"type": "m.login.recaptcha", "response": "good-answer",
                                                              "session": session}})
    assert status == 200
