"""Server-side search (POST /search, room events) and the user directory (POST /user_directory/search).

Search covers the rooms the user is joined to (narrowed by the filter's rooms), keys
content.body / content.name / content.topic, ordered by rank or recency, with optional
event context; history visibility applies to every result. The user directory lists users
who share a room with the searcher or sit in a public room (Synapse's default).
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.rooms.timeline import TimelineService
from storage.search import SearchQueries

KEY_TYPES = {"content.body": "m.room.message", "content.name": "m.room.name", "content.topic": "m.room.topic"}
MAX_RESULTS = 100
MAX_USER_RESULTS = 50


class SearchService:
    def __init__(self, queries: SearchQueries, rooms: RoomStateCache, formatter: EventFormatter,
                 timeline: TimelineService, *, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._queries = queries
        self._rooms = rooms
        self._format = formatter
        self._timeline = timeline

    async def search(self, requester: Requester, body: dict[str, Any], next_batch: str | None) -> dict[str, Any]:
        categories = body.get("search_categories")
        if not isinstance(categories, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'search_categories' must be an object")
        criteria = categories.get("room_events")
        if criteria is None:
            return {"search_categories": {}}
        if not isinstance(criteria, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'room_events' must be an object")
        term = criteria.get("search_term")
        if not isinstance(term, str) or not term.strip():
            raise MatrixError(400, Codes.BAD_JSON, "'search_term' must be a non-empty string")
        keys = criteria.get("keys", list(KEY_TYPES))
        if not isinstance(keys, list) or not keys or any(k not in KEY_TYPES for k in keys):
            raise MatrixError(400, Codes.BAD_JSON, f"'keys' must be a list of {sorted(KEY_TYPES)}")
        order_by = criteria.get("order_by", "rank")
        if order_by not in ("rank", "recent"):
            raise MatrixError(400, Codes.BAD_JSON, "'order_by' must be 'rank' or 'recent'")
        event_filter = criteria.get("filter") or {}
        if not isinstance(event_filter, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'filter' must be an object")
        limit = event_filter.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise MatrixError(400, Codes.BAD_JSON, "'filter.limit' must be a positive integer")
        limit = min(limit, MAX_RESULTS)
        offset = _parse_batch(next_batch)

        rooms = await self._queries.rooms_with_membership(requester.user_id)
        wanted_rooms = event_filter.get("rooms")
        if isinstance(wanted_rooms, list):
            rooms = [r for r in rooms if r in wanted_rooms]
        if isinstance(event_filter.get("not_rooms"), list):
            rooms = [r for r in rooms if r not in event_filter["not_rooms"]]
        hits, count = await self._queries.search_events(
            rooms, term, [KEY_TYPES[k] for k in keys], order_by_rank=order_by == "rank", offset=offset, limit=limit,
            senders=_string_list(event_filter, "senders"), not_senders=_string_list(event_filter, "not_senders"),
        )
        context = criteria.get("event_context")
        results = []
        for hit in hits:
            row = hit.row
            snap = await self._rooms.snapshot(row.room_id)
            if snap is None:
                continue
            timeline = await self._format.visibility(row.room_id, requester.user_id)
            if not self._format.visible([row], timeline, requester.user_id):
                continue
            result: dict[str, Any] = {
                "rank": hit.rank,
                "result": (await self._format.format_events([row], snap.version, requester))[0],
            }
            if isinstance(context, dict):
                result["context"] = await self._context(requester, row.room_id, row.event_id, context)
            results.append(result)
        room_events: dict[str, Any] = {
            "count": count,
            "highlights": sorted(set(re.findall(r"\w+", term.lower()))),
            "results": results,
        }
        if offset + limit < count:
            room_events["next_batch"] = f"o{offset + limit}"
        if criteria.get("include_state") is True:
            room_events["state"] = {room_id: await self._timeline.get_state(requester, room_id)
                                    for room_id in {r["result"]["room_id"] for r in results}}
        return {"search_categories": {"room_events": room_events}}

    async def _context(self, requester: Requester, room_id: str, event_id: str, options: dict[str, Any]) -> dict[str, Any]:
        before = options.get("before_limit", 5)
        after = options.get("after_limit", 5)
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 50 for v in (before, after)):
            raise MatrixError(400, Codes.BAD_JSON, "before_limit/after_limit must be integers from 0 to 50")
        ctx = await self._timeline.context(requester, room_id, event_id, before + after, lazy_load_members=False)
        out = {"events_before": ctx["events_before"][:before], "events_after": ctx["events_after"][:after],
               "start": ctx["start"], "end": ctx["end"]}
        if options.get("include_profile") is True:
            out["profile_info"] = {
                e["state_key"]: {"displayname": e["content"].get("displayname"), "avatar_url": e["content"].get("avatar_url")}
                for e in ctx["state"] if e["type"] == "m.room.member"
            }
        return out

    async def search_users(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """Limited per user (rc_user_directory), as Synapse."""
        await self._limiter.check(Action.USER_DIRECTORY, requester.user_id, user_id=requester.user_id)
        term = body.get("search_term")
        if not isinstance(term, str):
            raise MatrixError(400, Codes.BAD_JSON, "'search_term' must be a string")
        limit = body.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise MatrixError(400, Codes.BAD_JSON, "'limit' must be a non-negative integer")
        limit = min(limit, MAX_USER_RESULTS)
        users = await self._queries.search_users(requester.user_id, term.strip(), limit)
        results = []
        for user in users[:limit]:
            entry: dict[str, Any] = {"user_id": user.user_id}
            if user.display_name is not None:
                entry["display_name"] = user.display_name
            if user.avatar_url is not None:
                entry["avatar_url"] = user.avatar_url
            results.append(entry)
        return {"results": results, "limited": len(users) > limit}


def _parse_batch(token: str | None) -> int:
    if not token:
        return 0
    if token.startswith("o") and token[1:].isdigit():
        return int(token[1:])
    raise MatrixError(400, Codes.INVALID_PARAM, "Invalid 'next_batch' token")


def _string_list(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(400, Codes.BAD_JSON, f"'filter.{key}' must be a list of strings")
    return value
