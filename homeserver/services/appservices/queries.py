"""Asking appservices about users and aliases we do not know (spec: "Querying").

An appservice may create a user or a room alias of its namespaces on demand: when a local
user it could own is unknown, or a local alias of its namespaces does not exist, we ask it
(GET /_matrix/app/v1/users/{userId}, /rooms/{roomAlias}); while it answers, it creates the user
or the room and alias through the client API, and the request that needed them goes on.

As Synapse: users are asked for before an event naming them is pushed (an invite to a ghost
that does not exist yet), from every appservice interested in the user in turn until one
says yes; aliases when one is resolved (a join by alias, a directory lookup, a peer's query).
A failed or refused query is a "no" (the caller then answers 404 as for any unknown entity).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from homeserver.core.appservices import AppServiceRegistry
from homeserver.core.ids import server_name_of
from homeserver.services.appservices.client import AppServiceClient
from storage.appservices import AppServiceQueries

logger = logging.getLogger(__name__)


class AppServiceLookups:
    def __init__(self, registry: AppServiceRegistry, client: AppServiceClient, queries: AppServiceQueries,
                 server_name: str) -> None:
        self._registry = registry
        self._client = client
        self._queries = queries
        self._server_name = server_name

    async def query_user(self, user_id: str) -> bool:
        """Ask the appservices interested in the user, in turn, whether it exists."""
        for service in self._registry.interested_in_user(user_id):
            if service.url is not None and await self._client.query_user(service, user_id):
                return True
        return False

    async def query_alias(self, alias: str) -> bool:
        """Ask the appservices whose namespaces hold the alias, in turn, to create it; True
        when one says it did (the caller reads the directory again)."""
        for service in self._registry.with_alias(alias):
            if service.url is not None and await self._client.query_alias(service, alias):
                return True
        return False

    async def introduce_users(self, user_ids: Iterable[str]) -> None:
        """Query the local users among `user_ids` who do not exist (and are no appservice's
        sender, which needs no account) from the appservices interested in them."""
        candidates = sorted(u for u in set(user_ids)
                            if server_name_of(u) == self._server_name and self._registry.by_sender(u) is None
                            and self._registry.interested_in_user(u))
        if not candidates:
            return
        known = await self._queries.existing_users(candidates)
        for user_id in candidates:
            if user_id not in known and not await self.query_user(user_id):
                logger.debug("no appservice knows %s", user_id)
