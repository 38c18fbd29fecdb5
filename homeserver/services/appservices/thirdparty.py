"""Third-party lookups (spec: client-server "Third-party Lookup", answered by the appservices
as "Third-party networks" of the application-service API).

The protocols are the ones appservices declare in their registration (`protocols`). A client's
question goes to every appservice with a URL that declares the protocol, concurrently, with
the hs_token, and the answers are put together as Synapse does:

- protocol metadata (`GET /thirdparty/protocol/{protocol}`): the first appservice's fields,
  with the `instances` of all of them; an instance with a `network_id` gets the `instance_id`
  `{appservice id}|{network_id}` (what `publicRooms` takes as `third_party_instance_id`).
  A valid answer is kept for an hour (PROTOCOL_CACHE_MS, as Synapse); a failure is not kept,
  so a bridge that was down is asked again.
- locations and users (`/thirdparty/location/{protocol}`, `/user/{protocol}` with the client's
  query fields; `/location?alias=`, `/user?userid=` from the appservices that declare any
  protocol): the results of all, concatenated, in registration order.

An appservice that fails, times out or answers nonsense counts as having nothing; a malformed
entry is dropped (metadata without an `instances` list, an instance or result that is not an
object, a result without its string `protocol` and `alias`/`userid` or its `fields` object).
Nothing found at all is 404 M_NOT_FOUND, as the spec's responses say (Synapse answers
200 with an empty list for lookups; it also answers 404 for an unknown protocol).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from homeserver.core.appservices import AppService, AppServiceRegistry
from homeserver.core.ids import InvalidId, is_valid_user_id, parse_room_alias
from homeserver.errors import Codes, MatrixError
from homeserver.services.appservices.client import AppServiceBadStatus, AppServiceClient, AppServiceError
from homeserver.services.clock import Clock

logger = logging.getLogger(__name__)

PROTOCOL_CACHE_MS = 60 * 60 * 1000
INSTANCE_ID_SEPARATOR = "|"  # registrations may not use it in their `id` (core.appservices)

Fields = list[tuple[str, str]]


class ThirdPartyLookups:
    def __init__(self, registry: AppServiceRegistry, client: AppServiceClient, clock: Clock) -> None:
        self._registry = registry
        self._client = client
        self._clock = clock
        self._metadata: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}  # -> (expires, info)

    # --- protocols ----------------------------------------------------------------------------

    async def protocols(self) -> dict[str, dict[str, Any]]:
        """GET /thirdparty/protocols: every declared protocol some appservice describes."""
        names = list(dict.fromkeys(p for s in self._registry.services for p in s.protocols))
        merged = await asyncio.gather(*(self._protocol(name) for name in names))
        return {name: info for name, info in zip(names, merged) if info is not None}

    async def protocol(self, protocol: str) -> dict[str, Any]:
        """GET /thirdparty/protocol/{protocol}; 404 for a protocol nobody describes."""
        info = await self._protocol(protocol)
        if info is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Unknown protocol {protocol!r}")
        return info

    async def _protocol(self, protocol: str) -> dict[str, Any] | None:
        services = self._serving(protocol)
        answers = await asyncio.gather(*(self._protocol_of(s, protocol) for s in services))
        infos = [a for a in answers if a is not None]
        if not infos:
            return None
        merged = dict(infos[0])  # the other fields should be the same everywhere
        merged["instances"] = [instance for info in infos for instance in info["instances"]]
        return merged

    async def _protocol_of(self, service: AppService, protocol: str) -> dict[str, Any] | None:
        key = (service.id, protocol)
        cached = self._metadata.get(key)
        now = self._clock.now_ms()
        if cached is not None and cached[0] > now:
            return cached[1]
        info = _checked_metadata(
            await self._get(service, "/thirdparty/protocol/" + _quoted(protocol)), service)
        if info is not None:
            self._metadata[key] = (now + PROTOCOL_CACHE_MS, info)
        return info

    # --- locations and users --------------------------------------------------------------------

    async def locations(self, protocol: str, fields: Fields) -> list[dict[str, Any]]:
        """GET /thirdparty/location/{protocol}: the portal rooms of a third-party location."""
        return await self._lookup(self._serving(protocol), "/thirdparty/location/" + _quoted(protocol), fields,
                                  "alias", "No portal rooms were found")

    async def users(self, protocol: str, fields: Fields) -> list[dict[str, Any]]:
        """GET /thirdparty/user/{protocol}: the Matrix users of a third-party user."""
        return await self._lookup(self._serving(protocol), "/thirdparty/user/" + _quoted(protocol), fields,
                                  "userid", "No users were found")

    async def locations_for_alias(self, alias: str | None) -> list[dict[str, Any]]:
        """GET /thirdparty/location?alias=: the third-party locations a room alias leads to."""
        if alias is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "'alias' is required")
        try:
            parse_room_alias(alias)
        except InvalidId as err:
            raise MatrixError(400, Codes.INVALID_PARAM, str(err)) from None
        return await self._lookup(self._bridges(), "/thirdparty/location", [("alias", alias)], "alias",
                                  "No third-party locations were found")

    async def users_for_id(self, user_id: str | None) -> list[dict[str, Any]]:
        """GET /thirdparty/user?userid=: the third-party users behind a Matrix user ID."""
        if user_id is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "'userid' is required")
        if not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{user_id!r} is not a user ID")
        return await self._lookup(self._bridges(), "/thirdparty/user", [("userid", user_id)], "userid",
                                  "No third-party users were found")

    async def _lookup(self, services: list[AppService], path: str, query: Fields, key: str,
                      not_found: str) -> list[dict[str, Any]]:
        answers = await asyncio.gather(*(self._get(s, path, query) for s in services))
        results = []
        for service, answer in zip(services, answers):
            results += _checked_results(answer, key, service)
        if not results:
            raise MatrixError(404, Codes.NOT_FOUND, not_found)
        return results

    # --- internals -------------------------------------------------------------------------------

    def _serving(self, protocol: str) -> list[AppService]:
        return [s for s in self._registry.for_protocol(protocol) if s.url is not None]

    def _bridges(self) -> list[AppService]:
        """The appservices that declare any protocol (the others have no third-party lookups)."""
        return [s for s in self._registry.services if s.protocols and s.url is not None]

    async def _get(self, service: AppService, path: str, query: Fields | None = None) -> Any:
        """The appservice's JSON answer; None when it has none (a 404) or failed."""
        try:
            return await self._client.get_json(service, path, query)
        except AppServiceBadStatus as err:
            if err.status != 404:
                logger.warning("third-party lookup %s at appservice %s: HTTP %d", path, service.id, err.status)
        except AppServiceError as err:
            logger.warning("third-party lookup %s at appservice %s failed: %s", path, service.id, err)
        return None


def _quoted(protocol: str) -> str:
    return urllib.parse.quote(protocol, safe="")


def _checked_metadata(info: Any, service: AppService) -> dict[str, Any] | None:
    """The protocol metadata as clients get it, or None when it is unusable."""
    if info is None:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("instances"), list):
        logger.warning("appservice %s sent protocol metadata without an 'instances' list", service.id)
        return None
    instances = []
    for instance in info["instances"]:
        if not isinstance(instance, dict):
            logger.warning("appservice %s sent a protocol instance that is not an object: %r", service.id, instance)
            continue
        instance = dict(instance)
        if isinstance(instance.get("network_id"), str):
            instance["instance_id"] = f"{service.id}{INSTANCE_ID_SEPARATOR}{instance['network_id']}"
        instances.append(instance)
    return {**info, "instances": instances}


def _checked_results(answer: Any, key: str, service: AppService) -> list[dict[str, Any]]:
    if answer is None:
        return []
    if not isinstance(answer, list):
        logger.warning("appservice %s answered a third-party lookup with something else than a list", service.id)
        return []
    results = []
    for result in answer:
        if (isinstance(result, dict) and isinstance(result.get(key), str)
                and isinstance(result.get("protocol"), str) and isinstance(result.get("fields"), dict)):
            results.append(result)
        else:
            logger.warning("appservice %s sent a malformed third-party result: %r", service.id, result)
    return results
