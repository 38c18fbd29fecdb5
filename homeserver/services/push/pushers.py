"""Pushers (GET /pushers, POST /pushers/set) and HTTP push delivery to push gateways.

Use cases: list a user's pushers; create, replace or delete one; send a notification to the
push gateways of a user's pushers for each event whose push rules said `notify`.

Invariants:
- delivery never blocks a send: the evaluator hands over the notifications and returns; they
  go out in background tasks with a short exponential back-off (spec, push gateway API:
  "the homeserver SHOULD retry ... using exponential backoff");
- a pushkey the gateway reports as `rejected` loses its pusher (spec: push gateway API);
- unless `push.allow_private_gateways` is set, no request goes to a loopback, private,
  link-local or otherwise non-public address (checked on the URL and on every DNS answer);
- one aiohttp ClientSession, created on first use and closed by `close()` at shutdown.
Deliveries in flight are not persisted: a restart drops them (the counts in /sync do not
depend on them).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from homeserver.config import PushConfig
from homeserver.core.events import Event
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from storage.push import PusherRow, PusherStore

logger = logging.getLogger(__name__)

NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_APP_ID_LENGTH = 64
MAX_PUSHKEY_BYTES = 512
RETRY_DELAYS_S = (0.5, 2.0, 8.0, 30.0)
REQUEST_TIMEOUT_S = 15


@dataclass(frozen=True)
class Notice:
    """One notifying push action to deliver: the event, for whom, and how."""
    user_id: str
    event: Event
    tweaks: dict[str, Any]
    sender_display_name: str | None = None
    room_name: str | None = None
    room_alias: str | None = None


@dataclass(frozen=True)
class EventNotices:
    """The notifying push actions of one event: whom it notifies and with which tweaks.
    One object per event, not per member: few of a big room's members have a pusher, and
    the Notice of each of those is made only once their pushers are found."""
    event: Event
    recipients: list[tuple[str, dict[str, Any]]]  # (user ID, tweaks)
    sender_display_name: str | None = None
    room_name: str | None = None
    room_alias: str | None = None


class PusherService:
    def __init__(self, pushers: PusherStore, badge_count: Callable[[str], Awaitable[int]], clock: Clock,
                 config: PushConfig, retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self._pushers = pushers
        self._badge_count = badge_count
        self._clock = clock
        self._config = config
        self._retry_delays = retry_delays_s
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Waits for the push actions of the events published so far (set by the app).
        self.settle: Callable[[], Awaitable[None]] | None = None

    # --- the client API -------------------------------------------------------------------------

    async def get_pushers(self, user_id: str) -> list[dict[str, Any]]:
        out = []
        for p in await self._pushers.of_user(user_id):
            pusher: dict[str, Any] = {
                "pushkey": p.pushkey, "kind": p.kind, "app_id": p.app_id, "app_display_name": p.app_display_name,
                "device_display_name": p.device_display_name, "lang": p.lang, "data": p.data,
            }
            if p.profile_tag is not None:
                pusher["profile_tag"] = p.profile_tag
            out.append(pusher)
        return out

    async def set_pusher(self, requester: Requester, body: dict[str, Any]) -> None:
        """Spec (postPusher): `kind: null` deletes the (app_id, pushkey) pusher; otherwise it is
        created or replaced, and without `append` other users' pushers with the same app_id
        and pushkey are removed."""
        _require(body, ("kind", "app_id", "pushkey"))
        app_id, pushkey, kind = body["app_id"], body["pushkey"], body["kind"]
        if not isinstance(app_id, str) or not app_id or len(app_id) > MAX_APP_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"'app_id' must be a string of 1 to {MAX_APP_ID_LENGTH} characters")
        if not isinstance(pushkey, str) or not pushkey or len(pushkey.encode()) > MAX_PUSHKEY_BYTES:
            raise MatrixError(400, Codes.INVALID_PARAM, f"'pushkey' must be a string of 1 to {MAX_PUSHKEY_BYTES} bytes")
        if kind is None:
            await self._pushers.delete(requester.user_id, app_id, pushkey)
            return
        if not isinstance(kind, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'kind' must be a string or null")
        _require(body, ("app_display_name", "device_display_name", "lang", "data"))
        for key in ("app_display_name", "device_display_name", "lang"):
            if not isinstance(body[key], str):
                raise MatrixError(400, Codes.INVALID_PARAM, f"'{key}' must be a string")
        profile_tag = body.get("profile_tag")
        if profile_tag is not None and not isinstance(profile_tag, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'profile_tag' must be a string")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise MatrixError(400, Codes.INVALID_PARAM, "'append' must be a boolean")
        data = body["data"]
        if not isinstance(data, dict):
            raise MatrixError(400, Codes.INVALID_PARAM, "'data' must be an object")
        if kind != "http":
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unsupported pusher kind {kind!r}: only 'http' is")
        if "url" not in data:
            raise MatrixError(400, Codes.MISSING_PARAM, "'data.url' is required for an http pusher")
        self._check_url(data["url"])
        if "format" in data and not isinstance(data["format"], str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'data.format' must be a string")
        if not requester.device_id:  # a pusher goes with its device; an admin's "login as" token has none
            raise MatrixError(400, Codes.UNKNOWN, "A pusher needs a device: log in as the user to set one")
        await self._pushers.put(PusherRow(
            user_id=requester.user_id, app_id=app_id, pushkey=pushkey, device_id=requester.device_id, kind=kind,
            app_display_name=body["app_display_name"], device_display_name=body["device_display_name"],
            profile_tag=profile_tag, lang=body["lang"], data=data, pushkey_ts=self._clock.now_ms(),
        ), remove_other_users=not append)

    def _check_url(self, url: Any) -> None:
        """Spec (PusherData.url): an HTTP(S) URL whose path is /_matrix/push/v1/notify."""
        if not isinstance(url, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'data.url' must be a string")
        try:
            parsed = yarl.URL(url)
        except ValueError:
            raise MatrixError(400, Codes.INVALID_PARAM, "'data.url' is not a URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise MatrixError(400, Codes.INVALID_PARAM, "'data.url' must be an http or https URL")
        if parsed.path != NOTIFY_PATH:
            raise MatrixError(400, Codes.INVALID_PARAM, f"'data.url' must have the path {NOTIFY_PATH}")
        if not self._config.allow_private_gateways and not _public_host(parsed.host):
            raise MatrixError(400, Codes.INVALID_PARAM, "'data.url' points at a private or loopback address")

    # --- delivery ---------------------------------------------------------------------------------

    def deliver(self, notices: list[EventNotices]) -> None:
        """Send the notices to the users' pushers in the background (returns at once)."""
        if notices:
            self._spawn(self._deliver(notices))

    def badge_changed(self, user_id: str) -> None:
        """The user's unread count changed with no new notification (they read something):
        send the count alone to their pushers, in the background (spec, push gateway API:
        "the counts may be sent ... by themselves"), so a phone's badge follows."""
        self._spawn(self._update_badge(user_id))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for the deliveries in flight (tests, shutdown), and for those of the events
        published so far (`settle`, set by the app: their evaluation runs in the background)."""
        if self.settle is not None:
            await self.settle()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop the deliveries in flight and close the HTTP session (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, batches: list[EventNotices]) -> None:
        try:
            # Read each time (one query per batch, off the send path): several processes may
            # share the database, and any of them may have set a pusher.
            users = {user_id for batch in batches for user_id, _ in batch.recipients}
            pushers: dict[str, list[PusherRow]] = {}
            for pusher in await self._pushers.of_users(list(users)):
                if pusher.kind == "http":
                    pushers.setdefault(pusher.user_id, []).append(pusher)
            if not pushers:
                return
            notices = [Notice(user_id, batch.event, tweaks, batch.sender_display_name, batch.room_name,
                              batch.room_alias)
                       for batch in batches for user_id, tweaks in batch.recipients if user_id in pushers]
            badges = {user_id: await self._badge_count(user_id) for user_id in pushers}
            sends = [self._send(pusher, notification(notice, pusher, badges[notice.user_id]))
                     for notice in notices for pusher in pushers[notice.user_id]]
            await asyncio.gather(*sends)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("push delivery failed", exc_info=True)

    async def _update_badge(self, user_id: str) -> None:
        try:
            pushers = [p for p in await self._pushers.of_users([user_id]) if p.kind == "http"]
            if not pushers:
                return
            unread = await self._badge_count(user_id)
            # The count is sent even when it is zero: a gateway updates the badge only with one.
            await asyncio.gather(*(self._send(p, {"notification": {
                "prio": "low", "counts": {"unread": unread}, "devices": [_device(p, {})],
            }}) for p in pushers))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("push badge update failed", exc_info=True)

    async def _send(self, pusher: PusherRow, body: dict[str, Any]) -> None:
        url = pusher.data.get("url")
        if not isinstance(url, str):
            return
        for attempt, delay in enumerate((0.0, *self._retry_delays)):
            if delay:
                await asyncio.sleep(delay)
            try:
                host = yarl.URL(url).host or ""
                if not self._config.allow_private_gateways and _is_ip(host) and not _public_host(host):
                    logger.warning("not pushing to %s: private address", url)
                    return
                async with self._http().post(url, json=body) as resp:
                    if 200 <= resp.status < 300:
                        await self._handle_rejections(pusher, resp)
                        return
                    if 400 <= resp.status < 500 and resp.status != 429:
                        logger.warning("push gateway %s refused a notification: HTTP %d", url, resp.status)
                        return
                    logger.info("push gateway %s answered HTTP %d (attempt %d)", url, resp.status, attempt + 1)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
                logger.info("push gateway %s unreachable (attempt %d): %s", url, attempt + 1, err)
        logger.warning("giving up pushing to %s", url)

    async def _handle_rejections(self, pusher: PusherRow, resp: aiohttp.ClientResponse) -> None:
        try:
            answer = await resp.json(content_type=None)
        except ValueError:
            return
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        if isinstance(rejected, list) and pusher.pushkey in rejected:
            logger.info("push gateway rejected pushkey of %s/%s: removing the pusher", pusher.user_id, pusher.app_id)
            await self._pushers.delete(pusher.user_id, pusher.app_id, pusher.pushkey)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self._config.allow_private_gateways else _PublicOnlyResolver()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver, limit=100),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            )
        return self._session


def notification(notice: Notice, pusher: PusherRow, unread: int) -> dict[str, Any]:
    """The body of POST /_matrix/push/v1/notify for one pusher (spec: push gateway API)."""
    event, tweaks = notice.event, notice.tweaks
    device = _device(pusher, tweaks)
    # Low priority lets gateways save battery: only what may ring or highlight is urgent. An
    # encrypted event may be anything, so it is high.
    urgent = event.type == "m.room.encrypted" or tweaks.get("highlight") is True or bool(tweaks.get("sound"))
    body: dict[str, Any] = {
        "event_id": event.event_id, "room_id": event.room_id, "prio": "high" if urgent else "low",
        # The count even at zero, as Synapse sends it (a gateway then clears the badge).
        "counts": {"unread": unread}, "devices": [device],
    }
    if pusher.data.get("format") != "event_id_only":
        body["id"] = event.event_id  # the pre-r0 name, which Synapse still sends (and sytest reads)
        body["type"] = event.type
        body["sender"] = event.sender
        if notice.sender_display_name:
            body["sender_display_name"] = notice.sender_display_name
        # A room without a name is named by its alias, as Synapse names it in pushes.
        if notice.room_name or notice.room_alias:
            body["room_name"] = notice.room_name or notice.room_alias
        if notice.room_alias:
            body["room_alias"] = notice.room_alias
        if event.type == "m.room.member" and event.state_key is not None:
            body["membership"] = event.content.get("membership")
            body["user_is_target"] = event.state_key == notice.user_id
        if event.content:
            body["content"] = event.content
    return {"notification": body}


def _device(pusher: PusherRow, tweaks: dict[str, Any]) -> dict[str, Any]:
    return {
        "app_id": pusher.app_id, "pushkey": pusher.pushkey, "pushkey_ts": pusher.pushkey_ts // 1000,
        # Everything the client put in data except the URL (spec: PusherData).
        "data": {k: v for k, v in pusher.data.items() if k != "url"},
        "tweaks": tweaks,
    }


def _require(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in body]
    if missing:
        raise MatrixError(400, Codes.MISSING_PARAM, "Missing parameters: " + ", ".join(missing))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _public_host(host: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses
    (and the name localhost); True for public addresses and other names (their DNS answers
    are checked when connecting)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class _PublicOnlyResolver(AbstractResolver):
    """DNS answers minus non-public addresses: a gateway name cannot lead into our network."""

    def __init__(self) -> None:
        self._inner = aiohttp.DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        public = [a for a in answers if _public_host(a["host"])]
        if not public:
            raise OSError(f"{host} has no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()
