"""Filters: upload, fetch, and resolve the `filter` parameter of /sync (an ID or inline JSON).

A stored filter never changes (a new one gets a new ID), so those read are kept in memory: a
client names its filter on every /sync, and a woken /sync should not wait for the database
to read it again. The dicts handed out are shared: callers only read them."""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.caching import ByteLRU, json_size
from homeserver.core.filters import NO_FILTER, InvalidFilter, SyncFilter, validate_filter
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from storage.filters import FilterStore


class FilterService:
    def __init__(self, filters: FilterStore, max_bytes: int) -> None:
        self._filters = filters
        self._cache: ByteLRU[tuple[str, int], dict[str, Any]] = ByteLRU(max_bytes, json_size)
        self.cache_stats = self._cache.stats
        # (user, the `filter` parameter) -> the filter compiled for /sync, and its estimated
        # bytes: a client sends the same filter with every /sync (inline JSON included), and
        # parsing, validating and compiling it took a tenth of a woken /sync's CPU.
        self._compiled: ByteLRU[tuple[str, str], tuple[SyncFilter, int]] = ByteLRU(max_bytes, lambda v: v[1])
        self.compiled_cache_stats = self._compiled.stats

    async def define(self, requester: Requester, user_id: str, body: dict[str, Any]) -> str:
        if user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot create filters for other users")
        try:
            validate_filter(body)
        except InvalidFilter as err:
            raise MatrixError(400, Codes.BAD_JSON, str(err)) from None
        return str(await self._filters.add(user_id, body))

    async def get(self, requester: Requester, user_id: str, filter_id: str) -> dict[str, Any]:
        if user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot get filters for other users")
        if not filter_id.isdigit():
            raise MatrixError(404, Codes.NOT_FOUND, "No such filter")
        key = (user_id, int(filter_id))
        found = self._cache.get(key)
        if found is None:
            found = await self._filters.get(*key)
            if found is None:
                raise MatrixError(404, Codes.NOT_FOUND, "No such filter")
            self._cache.put(key, found)
        return found

    async def sync_filter(self, requester: Requester, param: str | None) -> SyncFilter:
        """A /sync `filter` parameter (`resolve`), compiled."""
        if not param:
            return NO_FILTER
        key = (requester.user_id, param)
        found = self._compiled.get(key)
        if found is None:
            value = await self.resolve(requester, param)
            found = (SyncFilter.from_json(value), 2 * json_size(value) + len(param))
            self._compiled.put(key, found)
        return found[0]

    async def resolve(self, requester: Requester, param: str | None) -> dict[str, Any]:
        """A /sync `filter` parameter: a stored filter's ID, or the filter itself as JSON."""
        if not param:
            return {}
        if param.lstrip().startswith("{"):
            try:
                value = orjson.loads(param)
            except orjson.JSONDecodeError:
                raise MatrixError(400, Codes.NOT_JSON, "'filter' is not JSON") from None
            try:
                return validate_filter(value)
            except InvalidFilter as err:
                raise MatrixError(400, Codes.BAD_JSON, str(err)) from None
        return await self.get(requester, requester.user_id, param)
