"""The Synapse admin API's accounts (docs/admin_api/user_admin_api.md): list, query, create or
modify, deactivate (and erase), reset passwords, the admin flag, and what an admin reads about
an account (rooms, devices' sessions, account data, pushers).

Every change is recorded in the admin audit log. Accounts of other servers are refused with
400 M_INVALID_PARAM where Synapse refuses them, unknown local accounts with 404 M_NOT_FOUND.
Everything a request asks is checked before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.accounts import MAX_PASSWORD_LENGTH, AccountService
from homeserver.services.accounts.devices import Device, DeviceService
from homeserver.services.accounts.profiles import MAX_AVATAR_URL_LENGTH, MAX_DISPLAYNAME_LENGTH, ProfileService
from homeserver.services.accounts.threepids import ThreepidService
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.auth import AccountRestrictions, AuthService, Requester
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.push.pushers import PusherService
from homeserver.services.rooms.messaging import MessagingService
from storage.accounts import AccountStore, UserRow
from storage.admin_users import ORDER_COLUMNS, AdminUserQueries, AdminUserRow, UserFilter

# Synapse's user types (its `user_types.extra_user_types` config adds more; ours has none).
USER_TYPES = ("bot", "support")
THREEPID_MEDIA = ("email", "msisdn")


@dataclass(frozen=True)
class UserListQuery:
    """GET /_synapse/admin/v2|v3/users, its parameters parsed (None: no filter on it)."""
    offset: int = 0
    limit: int = 100
    user_id: str | None = None      # user IDs containing this (ignored when `name` is given)
    name: str | None = None         # localparts or display names containing this
    guests: bool = True
    deactivated: bool | None = False
    admins: bool | None = None
    include_locked: bool = False
    not_user_types: tuple[str, ...] = ()  # "" stands for "no type"
    order_by: str = "name"
    descending: bool = False


class AdminUserService:
    def __init__(self, accounts: AccountService, account_store: AccountStore, queries: AdminUserQueries,
                 auth: AuthService, restrictions: AccountRestrictions, devices: DeviceService,
                 profiles: ProfileService, threepids: ThreepidService, messaging: MessagingService,
                 account_data: AccountDataService, pushers: PusherService, audit: AdminAuditLog,
                 server_name: str) -> None:
        self._accounts = accounts
        self._store = account_store
        self._queries = queries
        self._auth = auth
        self._restrictions = restrictions
        self._devices = devices
        self._profiles = profiles
        self._threepids = threepids
        self._messaging = messaging
        self._account_data = account_data
        self._pushers = pushers
        self._audit = audit
        self.server_name = server_name

    # --- looking accounts up ------------------------------------------------------------------

    def check_local(self, user_id: str, refusal: str = "Can only look up local users") -> None:
        """400 for a malformed user ID, and (`refusal`) for another server's user."""
        if not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user ID: {user_id!r}")
        if server_name_of(user_id) != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, refusal)

    async def local_user(self, user_id: str, refusal: str = "Can only look up local users") -> UserRow:
        self.check_local(user_id, refusal)
        user = await self._store.get_user(user_id)
        if user is None:
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")
        return user

    async def list_users(self, query: UserListQuery) -> dict[str, Any]:
        if query.order_by not in ORDER_COLUMNS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unknown value for order_by: {query.order_by!r}")
        if not (0 <= query.offset < 2**62 and 0 <= query.limit < 2**62):
            raise MatrixError(400, Codes.INVALID_PARAM, "'from' and 'limit' must be positive integers")
        where = UserFilter(user_id=query.user_id, name=query.name, guests=query.guests, deactivated=query.deactivated,
                           admins=query.admins, include_locked=query.include_locked,
                           not_user_types=query.not_user_types)
        rows, total = await self._queries.page(where, query.order_by, query.descending, query.offset, query.limit)
        body: dict[str, Any] = {"users": [_summary(r) for r in rows], "total": total}
        if query.offset + query.limit < total:
            body["next_token"] = str(query.offset + len(rows))
        return body

    async def get_user(self, user_id: str) -> dict[str, Any]:
        """GET /_synapse/admin/v2/users/{userId}."""
        self.check_local(user_id)
        details = await self._details(user_id)
        if details is None:
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")
        return details

    async def _details(self, user_id: str) -> dict[str, Any] | None:
        row = await self._queries.user(user_id)
        if row is None:
            return None
        threepids = await self._threepids.account_threepids(user_id)
        return {
            **_summary(row),
            # Seconds here, milliseconds in the listing: as Synapse answers both.
            "creation_ts": row.created_ts // 1000,
            "threepids": threepids["threepids"],
            "external_ids": [{"auth_provider": p, "external_id": e} for p, e in await self._store.external_ids_of(user_id)],
            "appservice_id": None,
            "consent_server_notice_sent": None, "consent_version": None, "consent_ts": None,
            "suspended": row.suspended,
        }

    # --- creating and changing accounts -------------------------------------------------------

    async def put_user(self, requester: Requester, user_id: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """PUT /_synapse/admin/v2/users/{userId}: create the account (True) or change it."""
        self.check_local(user_id, "This endpoint can only be used with local users")
        change = _UserChange.parse(body)
        user = await self._store.get_user(user_id)
        if user is None:
            await self._create(requester, user_id, change)
            created = True
        else:
            await self._modify(requester, user, change)
            created = False
        details = await self._details(user_id)
        assert details is not None
        return created, details

    async def _create(self, requester: Requester, user_id: str, change: _UserChange) -> None:
        localpart = user_id[1:].split(":", 1)[0]
        if localpart != localpart.lower():
            raise MatrixError(400, Codes.INVALID_USERNAME, "User ID may not contain upper-case letters")
        await self._check_threepids_free(user_id, change)
        if change.external_ids is not None:
            await self._check_external_ids_free(user_id, change.external_ids)
        await self._accounts.create_user(localpart, change.password, admin=change.admin or False,
                                         displayname=change.displayname or None,
                                         user_type=None if change.user_type is _UNSET else change.user_type)
        if change.threepids is not None:
            await self._threepids.set_account_threepids(user_id, change.threepids)
        if change.external_ids is not None:
            await self._set_external_ids(user_id, change.external_ids)
        if change.avatar_url:
            await self._profiles.set_field(requester, user_id, "avatar_url", {"avatar_url": change.avatar_url})
        await self._audit.record(requester.user_id, "user.create", user_id, **change.audited())

    async def _modify(self, requester: Requester, user: UserRow, change: _UserChange) -> None:
        user_id = user.user_id
        if change.admin is False and user.is_admin and user_id == requester.user_id:
            raise MatrixError(400, Codes.UNKNOWN, "You may not demote yourself.")
        await self._check_threepids_free(user_id, change)
        if change.external_ids is not None:
            await self._check_external_ids_free(user_id, change.external_ids)
        if change.displayname is not None:
            await self._profiles.set_field(requester, user_id, "displayname", {"displayname": change.displayname})
        if change.threepids is not None:
            await self._threepids.set_account_threepids(user_id, change.threepids)
        if change.external_ids is not None:
            await self._set_external_ids(user_id, change.external_ids)
        if change.avatar_url is not None:
            await self._profiles.set_field(requester, user_id, "avatar_url", {"avatar_url": change.avatar_url})
        if change.admin is not None and change.admin != user.is_admin:
            await self._set_admin(user_id, change.admin)
        reactivate = change.deactivated is False and user.deactivated
        if change.password is not None and not reactivate:
            await self._accounts.set_password(user_id, change.password, logout_devices=change.logout_devices)
        if change.deactivated and not user.deactivated:
            await self._accounts.deactivate_user(user_id, erase=False)
        elif reactivate:
            await self._accounts.reactivate_user(user_id, change.password)
        if change.locked is not None and change.locked != user.locked:
            await self._restrictions.set(user_id, "locked", change.locked)
        if change.user_type is not _UNSET:
            await self._store.set_user_type(user_id, change.user_type)
        await self._audit.record(requester.user_id, "user.modify", user_id, **change.audited())

    async def _check_threepids_free(self, user_id: str, change: _UserChange) -> None:
        for medium, address in change.threepids or ():
            owner = await self._threepids.owner(medium, address)
            if owner not in (None, user_id):
                raise MatrixError(400, Codes.THREEPID_IN_USE, f"{address} belongs to another account")

    async def _check_external_ids_free(self, user_id: str, external_ids: list[tuple[str, str]]) -> None:
        for provider, external_id in external_ids:
            if (await self._store.user_by_external_id(provider, external_id)) not in (None, user_id):
                raise MatrixError(409, Codes.UNKNOWN, "External id is already in use.")

    async def _set_external_ids(self, user_id: str, external_ids: list[tuple[str, str]]) -> None:
        if not await self._store.replace_external_ids(user_id, external_ids):
            raise MatrixError(409, Codes.UNKNOWN, "External id is already in use.")

    async def _set_admin(self, user_id: str, is_admin: bool) -> None:
        await self._store.set_admin(user_id, is_admin)
        self._auth.forget_user(user_id)  # the flag rides on cached requesters

    async def deactivate(self, requester: Requester, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_synapse/admin/v1/deactivate/{userId}; `erase` also erases it."""
        erase = body.get("erase", False)
        if not isinstance(erase, bool):
            raise MatrixError(400, Codes.BAD_JSON, "Param 'erase' must be a boolean, if given")
        await self.local_user(user_id, "Can only deactivate local users")
        result = await self._accounts.deactivate_user(user_id, erase=erase)
        await self._audit.record(requester.user_id, "user.deactivate", user_id, erase=erase)
        return {"id_server_unbind_result": result}

    async def reset_password(self, requester: Requester, user_id: str, body: dict[str, Any]) -> None:
        """POST /_synapse/admin/v1/reset_password/{userId}."""
        new_password = body.get("new_password")
        if new_password is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing params: ['new_password']")
        if not isinstance(new_password, str) or not new_password:
            raise MatrixError(400, Codes.INVALID_PARAM, "'new_password' must be a non-empty string")
        logout_devices = body.get("logout_devices", True)
        if not isinstance(logout_devices, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'logout_devices' must be a boolean")
        await self.local_user(user_id, "Can only reset the password of local users")
        await self._accounts.set_password(user_id, new_password, logout_devices=logout_devices)
        await self._audit.record(requester.user_id, "user.reset_password", user_id, logout_devices=logout_devices)

    async def is_admin(self, user_id: str) -> bool:
        return (await self.local_user(user_id, "Only local users can be admins of this homeserver")).is_admin

    async def set_admin(self, requester: Requester, user_id: str, body: dict[str, Any]) -> None:
        """PUT /_synapse/admin/v1/users/{userId}/admin."""
        if "admin" not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing params: ['admin']")
        value = body["admin"]
        if not isinstance(value, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'admin' must be a boolean")
        user = await self.local_user(user_id, "Only local users can be admins of this homeserver")
        if user_id == requester.user_id and not value:
            raise MatrixError(400, Codes.UNKNOWN, "You may not demote yourself.")
        if user.is_admin != value:
            await self._set_admin(user_id, value)
        await self._audit.record(requester.user_id, "user.set_admin", user_id, admin=value)

    async def username_available(self, username: str | None) -> dict[str, Any]:
        """GET /_synapse/admin/v1/username_available (open even when registration is closed)."""
        if not username:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing string query parameter 'username'")
        await self._accounts.check_username_free(username)
        return {"available": True}

    # --- devices ------------------------------------------------------------------------------

    async def devices(self, user_id: str) -> dict[str, Any]:
        await self.local_user(user_id)
        devices = [_device(d) for d in await self._devices.list_devices(user_id)]
        return {"devices": devices, "total": len(devices)}

    async def device(self, user_id: str, device_id: str) -> dict[str, Any]:
        await self.local_user(user_id)
        return _device(await self._devices.get_device(user_id, device_id))

    async def create_device(self, requester: Requester, user_id: str, body: dict[str, Any]) -> None:
        """Create the device unless it exists (Synapse's POST .../devices)."""
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or not device_id:
            raise MatrixError(400, Codes.MISSING_PARAM, "'device_id' must be a non-empty string")
        await self.local_user(user_id)
        await self._devices.create_device(user_id, device_id)
        await self._audit.record(requester.user_id, "user.device.create", user_id, device_id=device_id)

    async def update_device(self, requester: Requester, user_id: str, device_id: str, body: dict[str, Any]) -> None:
        await self.local_user(user_id)
        if "display_name" in body:  # as Synapse: without one, nothing changes
            await self._devices.update_device(user_id, device_id, body)
        else:
            await self._devices.get_device(user_id, device_id)  # 404 for an unknown one
        await self._audit.record(requester.user_id, "user.device.update", user_id, device_id=device_id,
                                 display_name=body.get("display_name"))

    async def delete_devices(self, requester: Requester, user_id: str, device_ids: Any) -> None:
        """Delete devices (their tokens go with them); unknown ones are ignored, as Synapse."""
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise MatrixError(400, Codes.BAD_JSON, "'devices' must be a list of device IDs")
        await self.local_user(user_id)
        await self._devices.delete_devices_now(user_id, device_ids)
        await self._audit.record(requester.user_id, "user.device.delete", user_id, device_ids=device_ids)

    # --- what an admin reads about an account -----------------------------------------------------

    async def joined_rooms(self, user_id: str) -> dict[str, Any]:
        """Rooms the user is joined to (another server's user: those this server shares)."""
        await self._known(user_id)
        rooms = sorted(await self._messaging.joined_rooms(user_id))
        return {"joined_rooms": rooms, "total": len(rooms)}

    async def memberships(self, user_id: str) -> dict[str, Any]:
        await self._known(user_id)
        return {"memberships": await self._queries.memberships(user_id)}

    async def _known(self, user_id: str) -> None:
        """Other servers' users are fine; an unknown local one is 404."""
        if not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user ID: {user_id!r}")
        if server_name_of(user_id) == self.server_name and await self._store.get_user(user_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")

    async def sent_invite_count(self, user_id: str, from_ts: int) -> dict[str, Any]:
        _check_ts(from_ts)
        await self._known(user_id)
        return {"invite_count": await self._queries.sent_invite_count(user_id, from_ts)}

    async def cumulative_joined_room_count(self, user_id: str, from_ts: int) -> dict[str, Any]:
        _check_ts(from_ts)
        await self._known(user_id)
        return {"cumulative_joined_room_count": await self._queries.rooms_joined_since(user_id, from_ts)}

    async def whois(self, requester: Requester, user_id: str) -> dict[str, Any]:
        self.check_local(user_id, "Can only whois a local user")
        return await self._devices.whois(requester, user_id, self.server_name)

    async def account_data(self, user_id: str) -> dict[str, Any]:
        await self.local_user(user_id)
        return {"account_data": await self._account_data.all_of(user_id)}

    async def pushers(self, user_id: str) -> dict[str, Any]:
        await self.local_user(user_id)
        pushers = await self._pushers.get_pushers(user_id)
        return {"pushers": pushers, "total": len(pushers)}

    async def user_by_external_id(self, auth_provider: str, external_id: str) -> dict[str, Any]:
        user_id = await self._store.user_by_external_id(auth_provider, external_id)
        if user_id is None:
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")
        return {"user_id": user_id}

    async def user_by_threepid(self, medium: str, address: str) -> dict[str, Any]:
        user_id = await self._threepids.owner(medium, address)
        if user_id is None:
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")
        return {"user_id": user_id}


def _check_ts(ts: int) -> None:
    if not -2**63 <= ts < 2**63:
        raise MatrixError(400, Codes.INVALID_PARAM, "'from_ts' is out of range")


def _device(device: Device) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device_id": device.device_id, "user_id": device.user_id, "last_seen_ip": device.last_seen_ip,
        "last_seen_user_agent": device.last_seen_user_agent, "last_seen_ts": device.last_seen_ts,
        "dehydrated": False,
    }
    if device.display_name is not None:
        out["display_name"] = device.display_name
    return out


def _summary(row: AdminUserRow) -> dict[str, Any]:
    """An account as the listing shows it (the query adds to it)."""
    return {
        "name": row.user_id, "is_guest": row.is_guest, "admin": row.is_admin, "user_type": row.user_type,
        "deactivated": row.deactivated, "erased": row.erased, "shadow_banned": row.shadow_banned,
        "displayname": row.displayname, "avatar_url": row.avatar_url, "creation_ts": row.created_ts,
        "last_seen_ts": row.last_seen_ts, "locked": row.locked,
    }


_UNSET: Any = object()


@dataclass(frozen=True)
class _UserChange:
    """The body of PUT /_synapse/admin/v2/users/{userId}, checked; None = leave as is."""
    password: str | None
    logout_devices: bool
    displayname: str | None
    avatar_url: str | None
    threepids: list[tuple[str, str]] | None
    external_ids: list[tuple[str, str]] | None
    admin: bool | None
    deactivated: bool | None
    locked: bool | None
    user_type: Any  # a type, None (cleared) or _UNSET

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _UserChange:
        password = body.get("password")
        if password is not None and (not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid password")
        flags = {}
        for key in ("logout_devices", "admin", "deactivated", "locked"):
            value = body.get(key)
            if value is not None and not isinstance(value, bool):
                raise MatrixError(400, Codes.BAD_JSON, f"'{key}' parameter is not of type boolean")
            flags[key] = value
        if flags["deactivated"] and flags["locked"]:
            raise MatrixError(400, Codes.INVALID_PARAM, "An user can't be deactivated and locked")
        displayname = body.get("displayname")
        if displayname is not None and (not isinstance(displayname, str) or len(displayname) > MAX_DISPLAYNAME_LENGTH):
            raise MatrixError(400, Codes.BAD_JSON, f"'displayname' must be a string of at most {MAX_DISPLAYNAME_LENGTH} characters")
        avatar_url = body.get("avatar_url")
        if avatar_url is not None and (not isinstance(avatar_url, str) or len(avatar_url) > MAX_AVATAR_URL_LENGTH):
            raise MatrixError(400, Codes.BAD_JSON, f"'avatar_url' must be a string of at most {MAX_AVATAR_URL_LENGTH} characters")
        user_type = body["user_type"] if "user_type" in body else _UNSET
        if user_type is not _UNSET and user_type is not None and user_type not in USER_TYPES:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid user type")
        return cls(
            password=password, logout_devices=flags["logout_devices"] is not False, displayname=displayname,
            avatar_url=avatar_url, threepids=_pairs(body, "threepids", ("medium", "address")),
            external_ids=_pairs(body, "external_ids", ("auth_provider", "external_id")),
            admin=flags["admin"], deactivated=flags["deactivated"], locked=flags["locked"], user_type=user_type)

    def audited(self) -> dict[str, Any]:
        """What the audit log keeps of the change (never the password)."""
        out: dict[str, Any] = {k: v for k, v in (
            ("displayname", self.displayname), ("avatar_url", self.avatar_url), ("admin", self.admin),
            ("deactivated", self.deactivated), ("locked", self.locked)) if v is not None}
        if self.password is not None:
            out["password_changed"] = True
        if self.threepids is not None:
            out["threepids"] = [list(t) for t in self.threepids]
        if self.external_ids is not None:
            out["external_ids"] = [list(e) for e in self.external_ids]
        if self.user_type is not _UNSET:
            out["user_type"] = self.user_type
        return out


def _pairs(body: dict[str, Any], key: str, fields: tuple[str, str]) -> list[tuple[str, str]] | None:
    """A list of objects with two string fields (threepids, external_ids); None when absent."""
    items = body.get(key)
    if items is None:
        return None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a list of objects")
    out = []
    for item in items:
        missing = [f for f in fields if f not in item]
        if missing:
            raise MatrixError(400, Codes.MISSING_PARAM, f"Missing params: {missing}")
        if not all(isinstance(item[f], str) and item[f] for f in fields):
            raise MatrixError(400, Codes.BAD_JSON, f"{key}: {' and '.join(fields)} must be non-empty strings")
        out.append((item[fields[0]], item[fields[1]]))
    if key == "threepids" and any(medium not in THREEPID_MEDIA for medium, _ in out):
        raise MatrixError(400, Codes.INVALID_PARAM, f"threepids: medium must be one of {list(THREEPID_MEDIA)}")
    return out
