"""A NUL (%00) in a path or query is bad input (400), never a database error (500)."""

import pytest


@pytest.mark.parametrize("path", [
    "/_matrix/client/v3/profile/%40a%00%3Atest.local",
    "/_synapse/admin/v1/media/remote.example/a%00b",
    "/_synapse/admin/v1/registration_tokens/a%00b",
    "/_synapse/admin/v1/federation/destinations/a%00",
    "/_synapse/admin/v1/event_reports?user_id=a%00",
])
async def test_nul_in_the_path_or_query_is_refused(admin, path):
    status, body = await admin.get(path)
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM", body


async def test_percent_encoded_text_is_still_fine(admin):
    status, body = await admin.get("/_synapse/admin/v1/event_reports?user_id=%2500")
    assert status == 200 and body["total"] == 0
