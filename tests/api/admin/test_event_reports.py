"""Reporting content (spec: report_content.yaml) feeds the admin's report lists (Synapse's event
and user reports, ChatGO's room reports); an admin resolves a report by deleting it."""

import pytest

V3 = "/_matrix/client/v3"
ADMIN = "/_synapse/admin/v1"


@pytest.fixture
async def room(alice, bob):
    """Alice's public room (named, with an alias) that Bob joined, and Alice's message in it."""
    status, made = await alice.post(f"{V3}/createRoom", {"preset": "public_chat", "name": "Town square",
                                                          "room_alias_name": "square"})
    assert status == 200, made
    room_id = made["room_id"]
    status, _ = await bob.post(f"{V3}/join/{room_id}", {})
    assert status == 200
    status, sent = await alice.put(f"{V3}/rooms/{room_id}/send/m.room.message/t1", {"msgtype": "m.text", "body": "rude"})
    assert status == 200
    return room_id, sent["event_id"]


async def test_an_event_report_reaches_the_admin_list_and_is_resolved_by_delete(admin, bob, room):
    room_id, event_id = room
    status, body = await bob.post(f"{V3}/rooms/{room_id}/report/{event_id}", {"reason": "offensive", "score": -100})
    assert status == 200 and body == {}, body

    status, listed = await admin.get(f"{ADMIN}/event_reports")
    assert status == 200, listed
    assert listed["total"] == 1 and "next_token" not in listed
    report = listed["event_reports"][0]
    assert {k: v for k, v in report.items() if k not in ("id", "received_ts")} == {
        "room_id": room_id, "event_id": event_id, "user_id": "@bob:test.local", "reason": "offensive",
        "score": -100, "sender": "@alice:test.local", "name": "Town square", "canonical_alias": "#square:test.local"}

    status, detail = await admin.get(f"{ADMIN}/event_reports/{report['id']}")
    assert status == 200 and detail["id"] == report["id"]
    assert detail["event_json"]["content"] == {"msgtype": "m.text", "body": "rude"}
    assert detail["event_json"]["sender"] == "@alice:test.local"

    status, body = await admin.delete(f"{ADMIN}/event_reports/{report['id']}")
    assert status == 200 and body == {}
    status, listed = await admin.get(f"{ADMIN}/event_reports")
    assert listed == {"event_reports": [], "total": 0}
    status, body = await admin.get(f"{ADMIN}/event_reports/{report['id']}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await admin.delete(f"{ADMIN}/event_reports/{report['id']}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, audit = await admin.get(f"{ADMIN}/audit_log?action=event_report.")
    assert [(e["action"], e["target"]) for e in audit["entries"]] == [("event_report.delete", str(report["id"]))]


async def test_event_reports_page_order_and_filter(admin, alice, bob, room):
    room_id, event_id = room
    status, mine = await bob.put(f"{V3}/rooms/{room_id}/send/m.room.message/b1", {"msgtype": "m.text", "body": "hi"})
    for n in range(3):
        assert (await bob.post(f"{V3}/rooms/{room_id}/report/{event_id}", {"reason": f"r{n}"}))[0] == 200
    assert (await alice.post(f"{V3}/rooms/{room_id}/report/{mine['event_id']}", {}))[0] == 200

    status, page = await admin.get(f"{ADMIN}/event_reports?limit=2")
    assert [r["reason"] for r in page["event_reports"]] == [None, "r2"] and page["total"] == 4
    assert page["next_token"] == 2
    status, rest = await admin.get(f"{ADMIN}/event_reports?limit=2&from=2")
    assert [r["reason"] for r in rest["event_reports"]] == ["r1", "r0"] and "next_token" not in rest
    status, oldest = await admin.get(f"{ADMIN}/event_reports?dir=f&limit=1")
    assert oldest["event_reports"][0]["reason"] == "r0"

    status, by_bob = await admin.get(f"{ADMIN}/event_reports?user_id=%40bob")
    assert by_bob["total"] == 3 and {r["user_id"] for r in by_bob["event_reports"]} == {"@bob:test.local"}
    status, against_bob = await admin.get(f"{ADMIN}/event_reports?event_sender_user_id=%40bob%3Atest.local")
    assert [r["user_id"] for r in against_bob["event_reports"]] == ["@alice:test.local"]
    status, in_room = await admin.get(f"{ADMIN}/event_reports?room_id={room_id.split(':')[0]}")
    assert in_room["total"] == 4
    status, elsewhere = await admin.get(f"{ADMIN}/event_reports?room_id=%21nowhere")
    assert elsewhere == {"event_reports": [], "total": 0}


async def test_only_members_report_visible_events(client, admin, alice, bob, room):
    room_id, event_id = room
    carol = client.with_token((await client.register("carol"))["access_token"])
    not_found = "M_NOT_FOUND"
    status, body = await carol.post(f"{V3}/rooms/{room_id}/report/{event_id}", {"reason": "x"})
    assert status == 404 and body["errcode"] == not_found  # not in the room
    status, body = await bob.post(f"{V3}/rooms/{room_id}/report/$nope", {"reason": "x"})
    assert status == 404 and body["errcode"] == not_found
    status, other = await bob.post(f"{V3}/createRoom", {})
    status, body = await bob.post(f"{V3}/rooms/{other['room_id']}/report/{event_id}", {"reason": "x"})
    assert status == 404 and body["errcode"] == not_found  # the event is of another room
    status, _ = await alice.put(f"{V3}/rooms/{room_id}/redact/{event_id}/r1", {})
    assert status == 200
    status, body = await bob.post(f"{V3}/rooms/{room_id}/report/{event_id}", {"reason": "x"})
    assert status == 404 and body["errcode"] == not_found  # redacted
    for bad in ({"reason": 5}, {"score": "high"}, {"score": 1.5}):
        status, body = await alice.post(f"{V3}/rooms/{room_id}/report/{event_id}", bad)
        assert status == 400 and body["errcode"] == "M_BAD_JSON", bad
    status, listed = await admin.get(f"{ADMIN}/event_reports")
    assert listed["total"] == 0


async def test_room_reports(client, admin, bob, room):
    room_id, _ = room
    carol = client.with_token((await client.register("carol"))["access_token"])
    # Not joined is fine for a room report.
    status, body = await carol.post(f"{V3}/rooms/{room_id}/report", {"reason": "spam room"})
    assert status == 200 and body == {}
    status, body = await carol.post(f"{V3}/rooms/!unknown:test.local/report", {"reason": "x"})
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    for bad in ({}, {"reason": None}, {"reason": 3}):
        status, body = await carol.post(f"{V3}/rooms/{room_id}/report", bad)
        assert status == 400 and body["errcode"] == "M_BAD_JSON", bad

    status, listed = await admin.get(f"{ADMIN}/room_reports")
    assert listed["total"] == 1
    report = listed["room_reports"][0]
    assert (report["room_id"], report["user_id"], report["reason"], report["name"], report["canonical_alias"]) == (
        room_id, "@carol:test.local", "spam room", "Town square", "#square:test.local")
    status, one = await admin.get(f"{ADMIN}/room_reports/{report['id']}")
    assert one == report
    status, _ = await admin.delete(f"{ADMIN}/room_reports/{report['id']}")
    assert status == 200
    status, listed = await admin.get(f"{ADMIN}/room_reports")
    assert listed["total"] == 0


async def test_user_reports(admin, alice, bob):
    status, body = await alice.post(f"{V3}/users/@bob:test.local/report", {"reason": "harassment"})
    assert status == 200 and body == {}
    # Unknown and remote users: accepted, and dropped without saying so.
    for target in ("@ghost:test.local", "@someone:elsewhere.example"):
        status, body = await alice.post(f"{V3}/users/{target}/report", {"reason": "x"})
        assert status == 200 and body == {}, target
    status, body = await alice.post(f"{V3}/users/@bob:test.local/report", {"reason": "x" * 1001})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await alice.post(f"{V3}/users/@bob:test.local/report", {})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"

    status, listed = await admin.get(f"{ADMIN}/user_reports")
    assert listed["total"] == 1
    report = listed["user_reports"][0]
    assert (report["target_user_id"], report["user_id"], report["reason"]) == (
        "@bob:test.local", "@alice:test.local", "harassment")
    status, filtered = await admin.get(f"{ADMIN}/user_reports?target_user_id=alice")
    assert filtered["total"] == 0
    status, one = await admin.get(f"{ADMIN}/user_reports/{report['id']}")
    assert one == report
    status, _ = await admin.delete(f"{ADMIN}/user_reports/{report['id']}")
    assert status == 200
    status, body = await admin.get(f"{ADMIN}/user_reports/{report['id']}")
    assert status == 404


async def test_admin_errors(admin, alice):
    for kind in ("event_reports", "user_reports", "room_reports"):
        for query in ("from=-1", "limit=-5", "limit=x", "dir=up", "from=99999999999"):
            status, body = await admin.get(f"{ADMIN}/{kind}?{query}")
            assert status == 400 and body["errcode"] == "M_INVALID_PARAM", (kind, query)
        for report_id in ("abc", "-1", "1.5", "99999999999999999999"):
            status, body = await admin.get(f"{ADMIN}/{kind}/{report_id}")
            assert status == 400 and body["errcode"] == "M_INVALID_PARAM", (kind, report_id)
        status, body = await alice.get(f"{ADMIN}/{kind}")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        status, body = await alice.delete(f"{ADMIN}/{kind}/1")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"


class TestReportsAreRateLimited:
    @pytest.fixture
    def config_overrides(self):
        from tests.api.ratelimits import limits

        return limits({"rc_reports": {"per_second": 0.001, "burst_count": 2}})

    async def test_rc_reports_counts_every_kind_of_report_per_reporter(self, admin, alice, bob, room):
        from tests.api.ratelimits import assert_limited

        room_id, event_id = room
        assert (await bob.post(f"{V3}/rooms/{room_id}/report/{event_id}", {"reason": "1"}))[0] == 200
        assert (await bob.post(f"{V3}/users/@alice:test.local/report", {"reason": "2"}))[0] == 200
        await assert_limited(bob, "POST", f"{V3}/rooms/{room_id}/report", {"reason": "3"})
        await assert_limited(bob, "POST", f"{V3}/rooms/{room_id}/report/{event_id}", {"reason": "4"})
        # Per reporter: Alice still may.
        assert (await alice.post(f"{V3}/users/@bob:test.local/report", {"reason": "5"}))[0] == 200
        status, listed = await admin.get(f"{ADMIN}/event_reports")
        assert [r["reason"] for r in listed["event_reports"]] == ["1"]
