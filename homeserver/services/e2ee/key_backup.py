"""Server-side key backup (room_keys): versions, and the room keys stored under one.

Keys are only written to the current (latest) version: writing to an older one is 403
M_WRONG_ROOM_KEYS_VERSION with the current version. A key replaces a stored one only when it
is better: verified beats unverified, then a lower first_message_index, then fewer
forwards (spec: "Server-side key backups", storing keys). Each change bumps the version's etag.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from storage.database import Database
from storage.key_backup import BackedUpKey, KeyBackupStore

WRONG_VERSION = "M_WRONG_ROOM_KEYS_VERSION"


class KeyBackupService:
    def __init__(self, db: Database, store: KeyBackupStore) -> None:
        self._db = db
        self._store = store

    # --- versions ----------------------------------------------------------------------------

    async def create_version(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        algorithm, auth_data = _version_body(body)
        version = await self._store.create_version(requester.user_id, algorithm, auth_data)
        return {"version": str(version)}

    async def get_version(self, requester: Requester, version: str | None) -> dict[str, Any]:
        found = await self._store.get_version(requester.user_id, _version_number(version) if version else None)
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown backup version")
        return {"version": str(found.version), "algorithm": found.algorithm, "auth_data": found.auth_data,
                "etag": str(found.etag), "count": await self._store.count(requester.user_id, found.version)}

    async def update_version(self, requester: Requester, version: str, body: dict[str, Any]) -> None:
        number = _version_number(version)
        found = await self._store.get_version(requester.user_id, number)
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown backup version")
        algorithm, auth_data = _version_body(body)
        if "version" in body and body["version"] != version:
            raise MatrixError(400, Codes.INVALID_PARAM, "'version' does not match the path")
        if algorithm != found.algorithm:
            raise MatrixError(400, Codes.INVALID_PARAM, "The algorithm of a backup version cannot change")
        await self._store.update_version(requester.user_id, number, auth_data)

    async def delete_version(self, requester: Requester, version: str) -> None:
        if not await self._store.delete_version(requester.user_id, _version_number(version)):
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown backup version")

    # --- keys --------------------------------------------------------------------------------

    async def put_keys(self, requester: Requester, version: str | None, rooms: Any) -> dict[str, Any]:
        """`rooms`: {room_id: {"sessions": {session_id: key}}}."""
        user_id = requester.user_id
        number = _version_number(version)
        current = await self._store.get_version(user_id, None)
        if current is None or await self._store.get_version(user_id, number) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown backup version")
        if current.version != number:
            raise MatrixError(403, WRONG_VERSION, "Not the current backup version",
                              current_version=str(current.version))
        incoming = _parse_rooms(rooms)
        async with self._db.transaction():
            stored = {(k.room_id, k.session_id): k for k in await self._store.get_keys(user_id, number)}
            better = [k for k in incoming if _is_better(k, stored.get((k.room_id, k.session_id)))]
            if better:
                await self._store.put_keys(user_id, number, better)
                await self._store.bump_etag(user_id, number)
        return await self._counts(user_id, number)

    async def get_keys(self, requester: Requester, version: str | None, room_id: str | None = None,
                       session_id: str | None = None) -> dict[str, Any]:
        number = await self._existing(requester.user_id, version)
        keys = await self._store.get_keys(requester.user_id, number, room_id, session_id)
        if session_id is not None:
            if not keys:
                raise MatrixError(404, Codes.NOT_FOUND, "No key for this session")
            return _key_json(keys[0])
        rooms: dict[str, Any] = {}
        for key in keys:
            rooms.setdefault(key.room_id, {"sessions": {}})["sessions"][key.session_id] = _key_json(key)
        if room_id is not None:
            return rooms.get(room_id, {"sessions": {}})
        return {"rooms": rooms}

    async def delete_keys(self, requester: Requester, version: str | None, room_id: str | None = None,
                          session_id: str | None = None) -> dict[str, Any]:
        number = await self._existing(requester.user_id, version)
        async with self._db.transaction():
            await self._store.delete_keys(requester.user_id, number, room_id, session_id)
            await self._store.bump_etag(requester.user_id, number)
        return await self._counts(requester.user_id, number)

    async def _existing(self, user_id: str, version: str | None) -> int:
        number = _version_number(version)
        if await self._store.get_version(user_id, number) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown backup version")
        return number

    async def _counts(self, user_id: str, version: int) -> dict[str, Any]:
        found = await self._store.get_version(user_id, version)
        return {"etag": str(found.etag if found else 0), "count": await self._store.count(user_id, version)}


def _version_number(version: str | None) -> int:
    if version is None:
        raise MatrixError(400, Codes.MISSING_PARAM, "'version' is required")
    if not version.isdigit() or len(version) > 18:
        raise MatrixError(404, Codes.NOT_FOUND, "Unknown backup version")
    return int(version)


def _version_body(body: dict[str, Any]) -> tuple[str, Any]:
    algorithm, auth_data = body.get("algorithm"), body.get("auth_data")
    if not isinstance(algorithm, str) or not algorithm:
        raise MatrixError(400, Codes.BAD_JSON, "'algorithm' must be a string")
    # The spec describes an object, but the server never reads it: like Synapse, keep any
    # JSON value the client sends (sytest sends a string).
    if auth_data is None:
        raise MatrixError(400, Codes.MISSING_PARAM, "'auth_data' is required")
    return algorithm, auth_data


def _parse_rooms(rooms: Any) -> list[BackedUpKey]:
    if not isinstance(rooms, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'rooms' must be an object")
    keys = []
    for room_id, room in rooms.items():
        sessions = room.get("sessions") if isinstance(room, dict) else None
        if not isinstance(sessions, dict):
            raise MatrixError(400, Codes.BAD_JSON, "Each room needs a 'sessions' object")
        for session_id, key in sessions.items():
            keys.append(_parse_key(room_id, session_id, key))
    return keys


def _parse_key(room_id: str, session_id: str, key: Any) -> BackedUpKey:
    if not isinstance(key, dict):
        raise MatrixError(400, Codes.BAD_JSON, "A key must be an object")
    index, forwards, verified, data = (key.get("first_message_index"), key.get("forwarded_count"),
                                       key.get("is_verified"), key.get("session_data"))
    for name, value in (("first_message_index", index), ("forwarded_count", forwards)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise MatrixError(400, Codes.BAD_JSON, f"'{name}' must be a non-negative integer")
    # session_data is opaque to the server: like auth_data, any JSON value is kept as sent
    # (the spec describes an object; Synapse and sytest do not insist).
    if not isinstance(verified, bool) or data is None:
        raise MatrixError(400, Codes.BAD_JSON, "'is_verified' must be a boolean and 'session_data' is required")
    return BackedUpKey(room_id, session_id, index, forwards, verified, data)


def _is_better(new: BackedUpKey, old: BackedUpKey | None) -> bool:
    if old is None:
        return True
    if new.is_verified != old.is_verified:
        return new.is_verified
    if new.first_message_index != old.first_message_index:
        return new.first_message_index < old.first_message_index
    return new.forwarded_count < old.forwarded_count


def _key_json(key: BackedUpKey) -> dict[str, Any]:
    return {"first_message_index": key.first_message_index, "forwarded_count": key.forwarded_count,
            "is_verified": key.is_verified, "session_data": key.session_data}
