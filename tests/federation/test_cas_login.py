"""Single sign-on through CAS: GET /login flows, /login/sso/redirect, the ticket page, POST /login
with the login token, and the m.login.sso stage of user-interactive auth, against a fake CAS
server over TLS."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from aiohttp import web

from homeserver.app import build_services
from homeserver.services.accounts.cas import map_username
from homeserver.web_app import make_web_app
from tests.conftest import make_test_config
from tests.federation.conftest import federation_overrides
from tests.server_fixtures import MatrixClient

V3 = "/_matrix/client/v3"
BASE = "https://hs.test.local"
CLIENT = "https://client?p=http%3A%2F%2Fserver"


class FakeCas:
    def __init__(self) -> None:
        self.user = "cas_user!"
        self.validations: list[dict[str, str]] = []
        self.url = ""

    async def validate(self, request: web.Request) -> web.Response:
        self.validations.append(dict(request.query))
        if request.query.get("ticket") != "goldenticket":
            return web.Response(text="<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>"
                                     "<cas:authenticationFailure code='INVALID_TICKET'/></cas:serviceResponse>")
        return web.Response(text=f"<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'><cas:authenticationSuccess>"
                                 f"<cas:user>{self.user}</cas:user></cas:authenticationSuccess></cas:serviceResponse>")


@pytest.fixture
async def cas(stubs):
    fake = FakeCas()
    stub = stubs()
    stub.route("GET", "/cas/proxyValidate", fake.validate)
    fake.url = f"https://{stub.name}/cas"
    await stub.start()
    return fake


@pytest.fixture
async def services(db, signing_key, tls_files, cas):
    config = make_test_config(federation=federation_overrides(tls_files), public_baseurl=BASE + "/",
                              cas={"enabled": True, "server_url": cas.url})
    services = build_services(config, db, signing_key=signing_key)
    yield services
    await services.devices.flush()
    await services.threepids.close()


@pytest.fixture
async def client(aiohttp_client, services) -> MatrixClient:
    return MatrixClient(await aiohttp_client(make_web_app(services, ["client"])))


async def ticket_page(client: MatrixClient, query: str) -> tuple[int, str]:
    resp = await client.http.get(f"/_matrix/client/r0/login/cas/ticket?{query}", allow_redirects=False)
    return resp.status, await resp.text()


async def sso_login(client: MatrixClient, **extra) -> dict:
    status, page = await ticket_page(client, f"redirectUrl={quote(CLIENT, safe='')}&ticket=goldenticket")
    assert status == 200, page
    token = re.search(r"loginToken=([^\"&]+)", page).group(1)
    status, body = await client.post(f"{V3}/login", {"type": "m.login.token", "token": token, **extra})
    assert status == 200, body
    return body


async def test_login_flows_and_redirect(client, cas):
    status, body = await client.get(f"{V3}/login")
    assert {f["type"] for f in body["flows"]} == {"m.login.password", "m.login.sso", "m.login.cas", "m.login.token",
                                                   "m.login.application_service"}
    sso = next(f for f in body["flows"] if f["type"] == "m.login.sso")
    assert sso["identity_providers"] == [{"id": "cas", "name": "CAS"}]  # as Synapse names CAS
    for path in ("/login/sso/redirect", "/login/cas/redirect", "/login/sso/redirect/cas"):
        resp = await client.http.get(f"{V3}{path}?redirectUrl={quote(CLIENT, safe='')}", allow_redirects=False)
        assert resp.status == 302
        location = urlsplit(resp.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == cas.url + "/login"
        service = parse_qs(location.query)["service"][0]
        assert service == f"{BASE}/_matrix/client/r0/login/cas/ticket?redirectUrl={quote(CLIENT, safe='')}"
    # An identity provider we do not have; no redirectUrl.
    status, body = await client.get(f"{V3}/login/sso/redirect/oidc-google?redirectUrl={quote(CLIENT, safe='')}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await client.get(f"{V3}/login/sso/redirect/cas")
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")


async def test_new_user_logs_in_once_per_token(client, cas):
    status, page = await ticket_page(client, f"redirectUrl={quote(CLIENT, safe='')}&ticket=goldenticket")
    assert status == 200
    # The CAS server was asked about the very service URL it sent the browser back to.
    assert cas.validations[-1] == {"ticket": "goldenticket",
                                   "service": f"{BASE}/_matrix/client/r0/login/cas/ticket?redirectUrl={quote(CLIENT, safe='')}"}
    token = re.search(r"loginToken=([^\"&]+)", page).group(1)
    assert CLIENT + "&amp;loginToken=" in page
    status, body = await client.post(f"{V3}/login", {"type": "m.login.token", "token": token, "device_id": "CASDEV"})
    assert status == 200, body
    assert body["user_id"] == "@cas_user=21:test.local" and body["device_id"] == "CASDEV"
    status, body = await client.post(f"{V3}/login", {"type": "m.login.token", "token": token})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")  # single use
    # A bad ticket logs nobody in.
    status, _ = await ticket_page(client, f"redirectUrl={quote(CLIENT, safe='')}&ticket=forged")
    assert status == 401


async def test_uia_through_sso(client, cas):
    await client.register("alice", "pw-alice-1")
    cas.user = "alice"
    alice = client.with_token((await sso_login(client, device_id="OTHER"))["access_token"])
    status, challenge = await alice.delete(f"{V3}/devices/OTHER", {})
    assert status == 401 and {"stages": ["m.login.sso"]} in challenge["flows"]
    # The CAS server vouches for someone else: the operation is refused.
    cas.user = "mallory"
    status, page = await ticket_page(client, f"session={challenge['session']}&ticket=goldenticket")
    assert status == 200
    status, body = await alice.delete(f"{V3}/devices/OTHER", {"auth": {"session": challenge["session"]}})
    assert status == 403
    # It vouches for Alice: done.
    cas.user = "alice"
    status, challenge = await alice.delete(f"{V3}/devices/OTHER", {})
    status, page = await ticket_page(client, f"session={challenge['session']}&ticket=goldenticket")
    assert status == 200
    status, body = await alice.delete(f"{V3}/devices/OTHER", {"auth": {"session": challenge["session"]}})
    assert status == 200, body
    resp = await client.http.get(f"{V3}/auth/m.login.sso/fallback/web?session=abc", allow_redirects=False)
    assert resp.status == 302 and "session%3Dabc" in resp.headers["Location"]


def test_map_username():
    assert map_username("cas_user!") == "cas_user=21"
    assert map_username("Jörg") == "j=c3=b6rg"
    assert map_username("_admin") == "=5fadmin"
