"""Media moderation for server admins (Synapse's media admin API and its user media endpoints):
list a user's or a room's media, quarantine (by media, room or user) and lift it, protect
media from quarantine, delete local media (by ID, by user, or unused since a date) and purge
cached remote media, media details, and storage used per user.

Invariants:
- quarantine goes by content, as Synapse's: quarantining media quarantines every media with
  the same bytes (local and cached remote, now and uploaded or fetched later), protected local
  media excepted; lifting it lifts it for all of them. Quarantined media answers 404 to
  everyone (download and thumbnail, local and remote; services/media/repository.py);
- room and user quarantines skip protected media;
- deleting media removes its rows, then the files (content, thumbnails) no media uses any
  more; identical content kept by other media stays;
- delete-by-date spares quarantined and protected media (and, with keep_profiles, avatars);
  the remote purge spares quarantined media. "Last used" is the last time media was served,
  to within ACCESS_RESOLUTION_MS, or its upload (fetch) when never served.
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.core.ids import server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from storage.accounts import AccountStore
from storage.database import Database
from storage.media import LocalMedia, MediaStore
from storage.media_admin import USAGE_ORDERS, USER_MEDIA_ORDERS, MediaAdminQueries, MediaUsage
from storage.media_files import MediaFileStore

_MXC = re.compile(r"mxc://([^/]+)/([^/?#]+)")
# Synapse refuses timestamps this small: they are seconds given where milliseconds are wanted.
_SMALLEST_TS_MS = 30_000_000_000
_MAX_BIGINT = 2**63 - 1


class AdminMediaService:
    def __init__(self, db: Database, media: MediaStore, queries: MediaAdminQueries, files: MediaFileStore,
                 accounts: AccountStore, audit: AdminAuditLog, server_name: str) -> None:
        self._db = db
        self._audit = audit
        self._media = media
        self._queries = queries
        self._files = files
        self._accounts = accounts
        self._server_name = server_name

    # --- listing ------------------------------------------------------------------------------

    async def user_media(self, user_id: str, start: int, limit: int, *, order_by: str | None,
                         backwards: bool | None) -> tuple[list[LocalMedia], int]:
        """A page of a local user's media. With neither `order_by` nor a direction: newest first."""
        await self._require_local_user(user_id)
        order, backwards = _user_media_order(order_by, backwards)
        return await self._queries.user_media(user_id, start, limit, order_by=order, backwards=backwards)

    async def room_media(self, room_id: str) -> tuple[list[str], list[str]]:
        """The local and remote mxc:// URIs the room's (unencrypted) events point at."""
        media = _parse_mxcs(await self._queries.room_media_urls(room_id))
        return ([f"mxc://{server}/{media_id}" for server, media_id in media if server == self._server_name],
                [f"mxc://{server}/{media_id}" for server, media_id in media if server != self._server_name])

    async def media_info(self, server_name: str, media_id: str) -> dict[str, Any]:
        """Synapse's media_info of local or cached remote media; 404 when we hold none."""
        if server_name == self._server_name:
            local = await self._media.get_media(media_id)
            if local is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown media")
            return {"media_origin": None, "user_id": local.user_id, "media_id": local.media_id,
                    "media_type": local.media_type, "media_length": local.media_length,
                    "upload_name": local.upload_name, "created_ts": local.created_ts, "filesystem_id": None,
                    "url_cache": None, "last_access_ts": local.last_access_ts, "quarantined_by": local.quarantined_by,
                    "authenticated": local.authenticated, "safe_from_quarantine": local.safe_from_quarantine,
                    "sha256": local.sha256}
        remote = await self._media.get_remote(server_name, media_id)
        if remote is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown media")
        return {"media_origin": remote.origin, "user_id": None, "media_id": remote.media_id,
                "media_type": remote.media_type, "media_length": remote.media_length,
                "upload_name": remote.upload_name, "created_ts": remote.fetched_ts, "filesystem_id": remote.sha256,
                "url_cache": None, "last_access_ts": remote.last_access_ts, "quarantined_by": remote.quarantined_by,
                "authenticated": remote.authenticated, "safe_from_quarantine": None, "sha256": remote.sha256}

    async def usage_by_user(self, start: int, limit: int, *, order_by: str = "user_id", backwards: bool = False,
                            from_ts: int = 0, until_ts: int | None = None,
                            search_term: str | None = None) -> tuple[list[MediaUsage], int]:
        """Storage used per local user (Synapse's users' media statistics)."""
        if order_by not in USAGE_ORDERS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"order_by must be one of {', '.join(USAGE_ORDERS)}")
        if not 0 <= from_ts <= _MAX_BIGINT:
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter from_ts must be a positive integer.")
        if until_ts is not None and not from_ts < until_ts <= _MAX_BIGINT:
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter until_ts must be greater than from_ts.")
        if search_term == "":
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter search_term cannot be an empty string.")
        return await self._queries.usage_by_user(start, limit, order_by=order_by, backwards=backwards,
                                                 from_ts=from_ts, until_ts=until_ts, search_term=search_term)

    # --- quarantine ---------------------------------------------------------------------------
    # Each change and its audit entry are written together; the target recorded is the mxc://
    # URI, room or user named.

    async def quarantine_media(self, admin_id: str, server_name: str, media_id: str) -> int:
        """Quarantine the media and all media with the same content; how many were marked."""
        return await self._quarantine(admin_id, "media.quarantine", f"mxc://{server_name}/{media_id}",
                                      *self._split([(server_name, media_id)]), quarantined_by=admin_id)

    async def unquarantine_media(self, admin_id: str, server_name: str, media_id: str) -> int:
        return await self._quarantine(admin_id, "media.unquarantine", f"mxc://{server_name}/{media_id}",
                                      *self._split([(server_name, media_id)]), quarantined_by=None)

    async def quarantine_room_media(self, admin_id: str, room_id: str) -> int:
        """Quarantine the media the room's events point at; how many media were marked."""
        media = _parse_mxcs(await self._queries.room_media_urls(room_id))
        return await self._quarantine(admin_id, "media.quarantine", room_id, *self._split(media),
                                      quarantined_by=admin_id)

    async def quarantine_user_media(self, admin_id: str, user_id: str) -> int:
        """Quarantine what a local user uploaded; how many media were marked."""
        return await self._quarantine(admin_id, "media.quarantine", user_id,
                                      await self._queries.user_media_ids(user_id), [], quarantined_by=admin_id)

    async def _quarantine(self, admin_id: str, action: str, target: str, local_ids: list[str],
                          remote: list[tuple[str, str]], *, quarantined_by: str | None) -> int:
        async with self._db.transaction():
            count = await self._media.quarantine(local_ids, remote, quarantined_by)
            await self._audit.record(admin_id, action, target, count=count)
        return count

    def _split(self, media: list[tuple[str, str]]) -> tuple[list[str], list[tuple[str, str]]]:
        """(server, media ID) pairs as the local media IDs and the remote pairs."""
        return ([media_id for server, media_id in media if server == self._server_name],
                [(server, media_id) for server, media_id in media if server != self._server_name])

    async def protect_media(self, admin_id: str, media_id: str, protected: bool) -> None:
        """Protect local media from quarantine (or stop protecting it); 404 for unknown media."""
        async with self._db.transaction():
            if not await self._media.set_safe_from_quarantine(media_id, protected):
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown media")
            await self._audit.record(admin_id, "media.protect" if protected else "media.unprotect", media_id)

    # --- deletion -----------------------------------------------------------------------------

    async def delete_media(self, admin_id: str, server_name: str, media_id: str) -> list[str]:
        """Delete one local media; the IDs deleted."""
        if server_name != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Can only delete local media")
        if await self._media.get_media(media_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown media")
        return await self._delete_local(admin_id, f"mxc://{server_name}/{media_id}", [media_id])

    async def delete_user_media(self, admin_id: str, user_id: str, start: int, limit: int, *, order_by: str | None,
                                backwards: bool | None) -> list[str]:
        """Delete a page of a local user's media (as listed with the same parameters)."""
        media, _ = await self.user_media(user_id, start, limit, order_by=order_by, backwards=backwards)
        return await self._delete_local(admin_id, user_id, [m.media_id for m in media])

    async def delete_unused_local_media(self, admin_id: str, before_ts: int, size_gt: int = 0,
                                        keep_profiles: bool = True) -> list[str]:
        """Delete local media not used since `before_ts` (and larger than `size_gt` bytes)."""
        _check_before_ts(before_ts)
        if not 0 <= size_gt <= _MAX_BIGINT:
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter size_gt must be a positive integer.")
        ids = await self._queries.unused_local_media(before_ts, size_gt, keep_profiles=keep_profiles,
                                                     mxc_prefix=f"mxc://{self._server_name}/")
        return await self._delete_local(admin_id, None, ids)

    async def purge_remote_media(self, admin_id: str, before_ts: int) -> int:
        """Forget cached remote media not used since `before_ts`; how many went. Asked again,
        such media is fetched from its origin again."""
        _check_before_ts(before_ts)
        async with self._db.transaction():
            count, unused = await self._media.delete_remote_unused_since(before_ts)
            await self._audit.record(admin_id, "media.purge_remote_cache", None, before_ts=before_ts, deleted=count)
        await self._files.delete(unused)
        return count

    async def _delete_local(self, admin_id: str, target: str | None, media_ids: list[str]) -> list[str]:
        if not media_ids:
            return []
        async with self._db.transaction():
            deleted, unused = await self._media.delete_local(media_ids)
            if deleted:
                await self._audit.record(admin_id, "media.delete", target, media_ids=deleted)
        # After the commit: a file goes once no row points at it. An identical upload racing
        # this could find its file removed; it would then 404 and be uploaded again.
        await self._files.delete(unused)
        return deleted

    async def _require_local_user(self, user_id: str) -> None:
        if server_name_of(user_id) != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Can only look up local users")
        if not await self._accounts.user_exists(user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown user")


def _user_media_order(order_by: str | None, backwards: bool | None) -> tuple[str, bool]:
    if order_by is None and backwards is None:
        return "created_ts", True  # Synapse's default: the newest first
    order_by = order_by or "created_ts"
    if order_by not in USER_MEDIA_ORDERS:
        raise MatrixError(400, Codes.INVALID_PARAM, f"order_by must be one of {', '.join(USER_MEDIA_ORDERS)}")
    return order_by, bool(backwards)


def _check_before_ts(before_ts: int) -> None:
    if before_ts < 0 or before_ts > _MAX_BIGINT:
        raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter before_ts must be a positive integer.")
    if before_ts < _SMALLEST_TS_MS:
        raise MatrixError(400, Codes.INVALID_PARAM,
                          "Query parameter before_ts you provided is from the year 1970. "
                          "Double check that you are providing a timestamp in milliseconds.")



def _parse_mxcs(urls: list[str]) -> list[tuple[str, str]]:
    """(server name, media ID) of each well-formed mxc:// URI, once each, in order."""
    found: dict[tuple[str, str], None] = {}
    for url in urls:
        if (match := _MXC.fullmatch(url)) is not None:
            found[(match.group(1), match.group(2))] = None
    return list(found)
