"""The msisdn requestToken endpoints: no SMS is sent, so a well-formed request is refused as
Synapse refuses it without an msisdn delegate; a malformed one says what is wrong."""

import pytest

V3 = "/_matrix/client/v3"
GOOD = {"client_secret": "monkeys_are_GREAT", "country": "GB", "phone_number": "07700 900001", "send_attempt": 1}


@pytest.mark.parametrize(("path", "errcode"), [
    ("/register/msisdn/requestToken", "M_UNKNOWN"),
    ("/account/3pid/msisdn/requestToken", "M_THREEPID_MEDIUM_NOT_SUPPORTED"),
    ("/account/password/msisdn/requestToken", "M_THREEPID_MEDIUM_NOT_SUPPORTED"),
])
async def test_phone_numbers_are_not_supported(client, path, errcode):
    status, body = await client.post(V3 + path, {**GOOD, "next_link": "https://example.org/done"})
    assert (status, body["errcode"]) == (400, errcode)
    assert "phone number" in body["error"]


@pytest.mark.parametrize("path", ["/register/msisdn/requestToken", "/account/3pid/msisdn/requestToken",
                                  "/account/password/msisdn/requestToken"])
async def test_bad_requests(client, path):
    cases = [
        ({k: v for k, v in GOOD.items() if k != "phone_number"}, "M_MISSING_PARAM"),
        ({**GOOD, "send_attempt": "1"}, "M_BAD_JSON"),
        ({**GOOD, "country": 44}, "M_BAD_JSON"),
        ({**GOOD, "next_link": 3}, "M_BAD_JSON"),
        ({**GOOD, "client_secret": "not secret!"}, "M_INVALID_PARAM"),
        ({**GOOD, "phone_number": "call me"}, "M_INVALID_PARAM"),
        ({**GOOD, "country": "GBR"}, "M_INVALID_PARAM"),
    ]
    for body, errcode in cases:
        status, answer = await client.post(V3 + path, body)
        assert (status, answer["errcode"]) == (400, errcode), body
    status, answer = await client.post(V3 + path, [GOOD])
    assert (status, answer["errcode"]) == (400, "M_BAD_JSON")
