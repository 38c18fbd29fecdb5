"""Media moderation through Synapse's admin API over real HTTP, with real files on disk:
quarantine (by media, room, user; by content), protection, deletion (by ID, user, date) with
the files gone, the remote cache purge, media details and usage statistics."""

import time

import pytest

from storage.media import MediaStore, RemoteMedia
from storage.media_files import MediaFileStore
from tests.api.test_media import AUTHED, LEGACY, content_files, fetch, image_bytes, upload

ADMIN = "/_synapse/admin/v1"
V3 = "/_matrix/client/v3"
NOW_MS = int(time.time() * 1000)
FUTURE = NOW_MS + 3_600_000


@pytest.fixture
def config_overrides(tmp_path) -> dict:
    return {"data_dir": str(tmp_path)}


async def served(user, media_id: str, server: str = "test.local") -> list[int]:
    """The statuses of the media's download (both families) and thumbnail."""
    statuses = []
    for path in (f"{AUTHED}/download/{server}/{media_id}", f"{LEGACY}/download/{server}/{media_id}",
                 f"{AUTHED}/thumbnail/{server}/{media_id}?width=32&height=32"):
        status, _, _ = await fetch(user, path)
        statuses.append(status)
    return statuses


async def test_quarantined_media_404s_everywhere_and_so_does_its_content_under_other_ids(admin, alice, bob):
    data = image_bytes()
    media_id = await upload(alice, data)
    same_bytes = await upload(bob, data)
    other = await upload(alice, image_bytes(color=(0, 0, 200)))
    assert await served(bob, media_id) == [200, 200, 200]

    status, body = await admin.post(f"{ADMIN}/media/quarantine/test.local/{media_id}", {})
    assert status == 200 and body == {}
    assert await served(bob, media_id) == [404, 404, 404]
    assert await served(alice, same_bytes) == [404, 404, 404]  # quarantine goes by content
    assert await served(alice, other) == [200, 200, 200]
    status, body = await alice.get(f"{AUTHED}/download/test.local/{media_id}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    # Uploaded again later: born quarantined.
    again = await upload(bob, data)
    assert await served(bob, again) == [404, 404, 404]
    status, info = await admin.get(f"{ADMIN}/media/test.local/{again}")
    assert info["media_info"]["quarantined_by"] == "@admin:test.local"

    status, body = await admin.post(f"{ADMIN}/media/unquarantine/test.local/{media_id}", {})
    assert status == 200
    for each in (media_id, same_bytes, again):
        assert await served(bob, each) == [200, 200, 200]
    status, audit = await admin.get(f"{ADMIN}/audit_log?action=media.")
    assert [(e["action"], e["target"]) for e in audit["entries"]] == [
        ("media.unquarantine", f"mxc://test.local/{media_id}"), ("media.quarantine", f"mxc://test.local/{media_id}")]


async def test_quarantined_cached_remote_media_404s(admin, alice, db, tmp_path):
    files = MediaFileStore(tmp_path / "media")
    stored = await files.write_bytes(image_bytes(color=(5, 5, 5)))
    await MediaStore(db).add_remote(RemoteMedia("remote.example", "cached1", "image/png", "r.png", stored.length,
                                                stored.sha256, NOW_MS, False))
    assert await served(alice, "cached1", "remote.example") == [200, 200, 200]
    status, info = await admin.get(f"{ADMIN}/media/remote.example/cached1")
    assert status == 200 and info["media_info"]["media_origin"] == "remote.example"
    assert info["media_info"]["user_id"] is None and info["media_info"]["sha256"] == stored.sha256
    status, _ = await admin.post(f"{ADMIN}/media/quarantine/remote.example/cached1", {})
    assert status == 200
    assert await served(alice, "cached1", "remote.example") == [404, 404, 404]


async def send_image(user, room_id: str, url: str, thumbnail_url: str | None = None, txn: str = "i1") -> None:
    content = {"msgtype": "m.image", "body": "pic", "url": url}
    if thumbnail_url:
        content["info"] = {"thumbnail_url": thumbnail_url}
    status, body = await user.put(f"{V3}/rooms/{room_id}/send/m.room.message/{txn}", content)
    assert status == 200, body


async def test_room_media_listing_and_quarantine_spare_protected_media(admin, alice, bob):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = room["room_id"]
    picture = await upload(alice, image_bytes(color=(1, 2, 3)))
    thumb = await upload(alice, image_bytes(size=(8, 8), color=(3, 2, 1)))
    sticker = await upload(alice, image_bytes(color=(9, 9, 9)))
    await send_image(alice, room_id, f"mxc://test.local/{picture}", f"mxc://test.local/{thumb}", "i1")
    await send_image(alice, room_id, f"mxc://test.local/{sticker}", "mxc://remote.example/abc", "i2")
    await send_image(alice, room_id, "not-an-mxc", None, "i3")

    status, media = await admin.get(f"{ADMIN}/room/{room_id}/media")
    assert status == 200
    assert media == {"local": [f"mxc://test.local/{sticker}", f"mxc://test.local/{picture}",
                               f"mxc://test.local/{thumb}"],
                     "remote": ["mxc://remote.example/abc"]}

    status, _ = await admin.post(f"{ADMIN}/media/protect/{sticker}", {})
    assert status == 200
    status, body = await admin.post(f"{ADMIN}/room/{room_id}/media/quarantine", {})
    assert status == 200 and body == {"num_quarantined": 2}  # the remote one is not cached here
    assert await served(bob, picture) == [404, 404, 404]
    assert await served(bob, thumb) == [404, 404, 404]
    assert await served(bob, sticker) == [200, 200, 200]
    # Protection holds against quarantine by ID too; once lifted, the sticker can be quarantined.
    status, _ = await admin.post(f"{ADMIN}/media/quarantine/test.local/{sticker}", {})
    assert await served(bob, sticker) == [200, 200, 200]
    status, _ = await admin.post(f"{ADMIN}/media/unprotect/{sticker}", {})
    status, _ = await admin.post(f"{ADMIN}/media/quarantine/test.local/{sticker}", {})
    assert await served(bob, sticker) == [404, 404, 404]


async def test_user_media_listing_and_quarantine(admin, alice, bob):
    ids = [await upload(alice, image_bytes(color=(n, 0, 0)), filename=f"f{n}.png") for n in range(3)]
    bobs = await upload(bob, image_bytes(color=(0, 99, 0)))
    status, page = await admin.get(f"{ADMIN}/users/@alice:test.local/media?limit=2")
    assert status == 200 and page["total"] == 3 and page["next_token"] == 2
    assert [m["media_id"] for m in page["media"]] == [ids[2], ids[1]]  # newest first by default
    first = page["media"][1]
    assert (first["upload_name"], first["media_type"], first["quarantined_by"], first["safe_from_quarantine"]) == (
        "f1.png", "image/png", None, False)
    status, rest = await admin.get(f"{ADMIN}/users/@alice:test.local/media?limit=2&from=2")
    assert [m["media_id"] for m in rest["media"]] == [ids[0]] and "next_token" not in rest
    status, by_name = await admin.get(f"{ADMIN}/users/@alice:test.local/media?order_by=upload_name&dir=b")
    assert [m["upload_name"] for m in by_name["media"]] == ["f2.png", "f1.png", "f0.png"]

    status, _ = await admin.post(f"{ADMIN}/media/protect/{ids[0]}", {})
    status, body = await admin.post(f"{ADMIN}/user/@alice:test.local/media/quarantine", {})
    assert status == 200 and body == {"num_quarantined": 2}
    assert await served(bob, ids[1]) == [404, 404, 404]
    assert await served(bob, ids[0]) == [200, 200, 200]
    assert await served(alice, bobs) == [200, 200, 200]
    status, listed = await admin.get(f"{ADMIN}/users/@alice:test.local/media?order_by=media_id")
    assert {m["media_id"]: (m["quarantined_by"], m["safe_from_quarantine"]) for m in listed["media"]} == {
        ids[0]: (None, True), ids[1]: ("@admin:test.local", False), ids[2]: ("@admin:test.local", False)}


async def test_deleting_media_removes_its_files_but_not_content_others_keep(admin, alice, bob, tmp_path):
    media_root = tmp_path / "media"
    shared = image_bytes(color=(7, 7, 7))
    mine = await upload(alice, shared)
    theirs = await upload(bob, shared)
    alone = await upload(alice, image_bytes(size=(400, 300), color=(70, 7, 7)))
    assert await served(alice, alone) == [200, 200, 200]  # a thumbnail file of its own now
    files_before = set(content_files(media_root))
    assert len(files_before) == 3

    status, body = await admin.delete(f"{ADMIN}/media/test.local/{alone}")
    assert status == 200 and body == {"deleted_media": [alone], "total": 1}
    assert len(content_files(media_root)) == 1  # its content and its thumbnail are gone from disk
    assert (await served(alice, alone))[:2] == [404, 404]
    status, body = await admin.delete(f"{ADMIN}/media/test.local/{mine}")
    assert body == {"deleted_media": [mine], "total": 1}
    assert len(content_files(media_root)) == 1  # Bob's media has the same bytes: the file stays
    assert await served(alice, theirs) == [200, 200, 200]
    status, body = await admin.delete(f"{ADMIN}/media/test.local/{mine}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"

    status, body = await admin.delete(f"{ADMIN}/users/@bob:test.local/media")
    assert body == {"deleted_media": [theirs], "total": 1}
    assert content_files(media_root) == []
    status, audit = await admin.get(f"{ADMIN}/audit_log?action=media.delete")
    assert [e["target"] for e in audit["entries"]] == [
        "@bob:test.local", f"mxc://test.local/{mine}", f"mxc://test.local/{alone}"]


async def test_delete_unused_media_by_date_and_size_keeps_avatars_quarantined_and_protected(admin, alice, tmp_path):
    small = await upload(alice, b"tiny", content_type="text/plain")
    big = await upload(alice, image_bytes(size=(200, 200), color=(1, 1, 1)))
    avatar = await upload(alice, image_bytes(size=(150, 150), color=(2, 2, 2)))
    kept_q = await upload(alice, image_bytes(size=(120, 120), color=(3, 3, 3)))
    kept_p = await upload(alice, image_bytes(size=(130, 130), color=(4, 4, 4)))
    await alice.put(f"{V3}/profile/@alice:test.local/avatar_url", {"avatar_url": f"mxc://test.local/{avatar}"})
    await admin.post(f"{ADMIN}/media/quarantine/test.local/{kept_q}", {})
    await admin.post(f"{ADMIN}/media/protect/{kept_p}", {})

    status, body = await admin.post(f"{ADMIN}/media/delete?before_ts={NOW_MS - 3_600_000}", {})
    assert status == 200 and body == {"deleted_media": [], "total": 0}  # all used recently
    status, body = await admin.post(f"{ADMIN}/media/delete?before_ts={FUTURE}&size_gt=100", {})
    assert status == 200 and body == {"deleted_media": [big], "total": 1}
    status, body = await admin.post(f"{ADMIN}/media/delete?before_ts={FUTURE}&keep_profiles=false", {})
    assert sorted(body["deleted_media"]) == sorted([small, avatar])
    status, left = await admin.get(f"{ADMIN}/users/@alice:test.local/media")
    assert sorted(m["media_id"] for m in left["media"]) == sorted([kept_q, kept_p])
    assert len(content_files(tmp_path / "media")) == 2


async def test_purge_remote_media_cache(admin, alice, db, tmp_path):
    files, store = MediaFileStore(tmp_path / "media"), MediaStore(db)
    for n, fetched in enumerate((NOW_MS - 7_200_000, NOW_MS - 7_200_000, NOW_MS)):
        stored = await files.write_bytes(f"remote content {n}".encode())
        await store.add_remote(RemoteMedia("remote.example", f"r{n}", "text/plain", None, stored.length,
                                           stored.sha256, fetched, False))
    await admin.post(f"{ADMIN}/media/quarantine/remote.example/r1", {})  # kept as evidence
    status, body = await admin.post(f"{ADMIN}/purge_media_cache?before_ts={NOW_MS - 3_600_000}", {})
    assert status == 200 and body == {"deleted": 1}
    assert len(content_files(tmp_path / "media")) == 2
    status, body = await admin.get(f"{ADMIN}/media/remote.example/r0")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    for kept in ("r1", "r2"):
        status, _ = await admin.get(f"{ADMIN}/media/remote.example/{kept}")
        assert status == 200, kept


async def test_media_info(admin, alice):
    media_id = await upload(alice, image_bytes(), filename="pic.png")
    status, body = await admin.get(f"{ADMIN}/media/test.local/{media_id}")
    assert status == 200
    info = body["media_info"]
    assert (info["media_id"], info["user_id"], info["media_origin"], info["upload_name"], info["media_type"],
            info["quarantined_by"], info["safe_from_quarantine"]) == (
        media_id, "@alice:test.local", None, "pic.png", "image/png", None, False)
    assert info["media_length"] == len(image_bytes()) and len(info["sha256"]) == 64
    status, body = await admin.get(f"{ADMIN}/media/test.local/unknown")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"
    status, body = await admin.get(f"{ADMIN}/media/remote.example/never-fetched")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


async def test_users_media_statistics(admin, alice, bob, client):
    for n in range(3):
        await upload(alice, bytes([n]) * (10 + n), content_type="text/plain")
    await upload(bob, b"x" * 100, content_type="text/plain")
    await bob.put(f"{V3}/profile/@bob:test.local/displayname", {"displayname": "Robert"})

    status, body = await admin.get(f"{ADMIN}/statistics/users/media")
    assert status == 200, body
    assert body == {"total": 2, "users": [
        {"user_id": "@alice:test.local", "displayname": "alice", "media_count": 3, "media_length": 33},
        {"user_id": "@bob:test.local", "displayname": "Robert", "media_count": 1, "media_length": 100}]}
    status, body = await admin.get(f"{ADMIN}/statistics/users/media?order_by=media_length&dir=b&limit=1")
    assert [u["user_id"] for u in body["users"]] == ["@bob:test.local"] and body["next_token"] == 1
    status, body = await admin.get(f"{ADMIN}/statistics/users/media?search_term=Rob")
    assert [u["user_id"] for u in body["users"]] == ["@bob:test.local"]
    status, body = await admin.get(f"{ADMIN}/statistics/users/media?search_term=lic")
    assert [u["user_id"] for u in body["users"]] == ["@alice:test.local"]
    status, body = await admin.get(f"{ADMIN}/statistics/users/media?from_ts={FUTURE}")
    assert body == {"users": [], "total": 0}
    status, body = await admin.get(f"{ADMIN}/statistics/users/media?until_ts={FUTURE}&order_by=media_count")
    assert [u["media_count"] for u in body["users"]] == [1, 3]


async def test_largest_rooms_statistics(admin, alice, db):
    status, room = await alice.post(f"{V3}/createRoom", {"preset": "public_chat"})
    for n in range(20):
        await alice.put(f"{V3}/rooms/{room['room_id']}/send/m.room.message/m{n}", {"msgtype": "m.text", "body": "x"})
    await db.execute("ANALYZE")
    status, body = await admin.get(f"{ADMIN}/statistics/database/rooms")
    assert status == 200
    assert [r["room_id"] for r in body["rooms"]] == [room["room_id"]] and body["rooms"][0]["estimated_size"] > 0


@pytest.mark.parametrize("method, path, errcode", [
    ("POST", "/media/delete", "M_MISSING_PARAM"),
    ("POST", "/media/delete?before_ts=1000", "M_INVALID_PARAM"),
    ("POST", f"/media/delete?before_ts={FUTURE}&size_gt=-1", "M_INVALID_PARAM"),
    ("POST", f"/media/delete?before_ts={FUTURE}&keep_profiles=maybe", "M_INVALID_PARAM"),
    ("POST", "/purge_media_cache?before_ts=-5", "M_INVALID_PARAM"),
    ("POST", "/purge_media_cache?before_ts=abc", "M_INVALID_PARAM"),
    ("POST", "/purge_media_cache", "M_MISSING_PARAM"),
    ("DELETE", "/media/remote.example/abc", "M_INVALID_PARAM"),
    ("GET", "/users/@alice:elsewhere.example/media", "M_INVALID_PARAM"),
    ("GET", "/users/@alice:test.local/media?order_by=size", "M_INVALID_PARAM"),
    ("GET", "/users/@alice:test.local/media?dir=z", "M_INVALID_PARAM"),
    ("GET", "/users/@alice:test.local/media?limit=-1", "M_INVALID_PARAM"),
    ("GET", "/statistics/users/media?order_by=nothing", "M_INVALID_PARAM"),
    ("GET", "/statistics/users/media?search_term=", "M_INVALID_PARAM"),
    ("GET", "/statistics/users/media?from_ts=-1", "M_INVALID_PARAM"),
    ("GET", "/statistics/users/media?from_ts=10&until_ts=5", "M_INVALID_PARAM"),
])
async def test_bad_input(admin, alice, method, path, errcode):
    status, body = await admin.request(method, f"{ADMIN}{path}", {})
    assert status == 400 and body["errcode"] == errcode, body


async def test_unknown_things_and_non_admins(admin, alice):
    for method, path in (("GET", "/users/@ghost:test.local/media"), ("DELETE", "/users/@ghost:test.local/media"),
                         ("POST", "/media/protect/nothing"), ("POST", "/media/unprotect/nothing")):
        status, body = await admin.request(method, f"{ADMIN}{path}", {})
        assert status == 404 and body["errcode"] == "M_NOT_FOUND", path
    media_id = await upload(alice, b"data", content_type="text/plain")
    for method, path in (("GET", "/users/@alice:test.local/media"), ("POST", f"/media/quarantine/test.local/{media_id}"),
                         ("POST", "/room/!r:test.local/media/quarantine"), ("DELETE", f"/media/test.local/{media_id}"),
                         ("POST", f"/media/delete?before_ts={FUTURE}"), ("GET", "/statistics/users/media"),
                         ("GET", "/statistics/database/rooms"), ("POST", f"/purge_media_cache?before_ts={FUTURE}")):
        status, body = await alice.request(method, f"{ADMIN}{path}", {})
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", path
    status, _, _ = await fetch(alice, f"{AUTHED}/download/test.local/{media_id}")
    assert status == 200  # untouched by the refused requests
