"""Filters: upload, fetch, and resolve the `filter` parameter of /sync (an ID or inline JSON)."""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.core.filters import InvalidFilter, validate_filter
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from storage.filters import FilterStore


class FilterService:
    def __init__(self, filters: FilterStore) -> None:
        self._filters = filters

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
        found = await self._filters.get(user_id, int(filter_id))
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No such filter")
        return found

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
