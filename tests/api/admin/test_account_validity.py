"""Account validity (Synapse's `account_validity` and its admin API): accounts expire a period
after they are first used; an expired one can only log out until an admin renews it."""

import time
from urllib.parse import quote

import pytest

from homeserver.config import parse_duration_ms

V3 = "/_matrix/client/v3"
RENEW = "/_synapse/admin/v1/account_validity/validity"
ALICE = "@alice:test.local"


@pytest.fixture
def config_overrides() -> dict:
    return {"account_validity": {"enabled": True, "period": "6w"}}


async def test_expired_accounts_are_refused_until_renewed(admin, alice, client):
    assert (await alice.get(f"{V3}/account/whoami"))[0] == 200  # the period starts at first use
    status, body = await admin.post(RENEW, {"user_id": ALICE, "expiration_ts": 1000})
    assert status == 200 and body == {"expiration_ts": 1000}
    status, body = await alice.get(f"{V3}/account/whoami")
    assert status == 403 and body["errcode"] == "ORG_MATRIX_EXPIRED_ACCOUNT"
    assert (await alice.get(f"{V3}/sync?timeout=0"))[0] == 403

    before = int(time.time() * 1000)
    status, body = await admin.post(RENEW, {"user_id": ALICE})  # now + the period
    assert status == 200
    assert before + parse_duration_ms("6w") <= body["expiration_ts"] <= int(time.time() * 1000) + parse_duration_ms("6w")
    assert (await alice.get(f"{V3}/account/whoami"))[0] == 200

    await admin.post(RENEW, {"user_id": ALICE, "expiration_ts": 1000, "enable_renewal_emails": False})
    assert (await alice.post(f"{V3}/logout", {}))[0] == 200  # logging out is still allowed
    status, audit = await admin.get(f"/_synapse/admin/v1/audit_log?target={quote(ALICE)}")
    assert [e["action"] for e in audit["entries"]] == ["user.renew_account"] * 3


async def test_bad_renewals(admin):
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"user_id": 5}, "M_BAD_JSON"),
                          ({"user_id": ALICE, "expiration_ts": "soon"}, "M_BAD_JSON"),
                          ({"user_id": ALICE, "enable_renewal_emails": "no"}, "M_BAD_JSON"),
                          ({"user_id": "@x:elsewhere.org"}, "M_INVALID_PARAM")):
        status, answer = await admin.post(RENEW, body)
        assert status == 400 and answer["errcode"] == errcode, (body, answer)
    status, answer = await admin.post(RENEW, {"user_id": "@nobody:test.local"})
    assert status == 404


def test_durations_read_as_synapse_writes_them():
    assert parse_duration_ms("6w") == 6 * 7 * 24 * 3600 * 1000
    assert parse_duration_ms("30s") == 30_000 and parse_duration_ms("500ms") == 500
    assert parse_duration_ms("1500") == 1500 and parse_duration_ms("1y") == 365 * 24 * 3600 * 1000
    for bad in ("", "w", "1.5d", "-1d", "3 days"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
