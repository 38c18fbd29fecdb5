"""The admin view of the application services (ChatGO's own: Synapse has no such endpoint):
each registration as loaded (never its tokens) and how its feed stands — answering or backing
off and until when, the transactions stored and not yet taken, when it last took one, how far
its feed is behind the room-event stream, and which process feeds it. Read-only.

The feed's state is read from the database (one query for all), so every process of a server
shows the same, whichever one holds the feed's lease.
"""

from __future__ import annotations

from typing import Any

from homeserver.core.appservices import NAMESPACE_KINDS, AppService, AppServiceRegistry
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.streams.tracker import StreamTracker
from storage.appservices import AppServiceStore, FeedSummary


class AppServiceAdmin:
    def __init__(self, registry: AppServiceRegistry, store: AppServiceStore, events: StreamTracker,
                 clock: Clock) -> None:
        self._registry = registry
        self._store = store
        self._events = events
        self._clock = clock

    async def list(self) -> dict[str, Any]:
        """GET /_synapse/admin/v1/appservices: every registered appservice, in config order."""
        feeds = await self._feeds()
        entries = [self._entry(s, feeds.get(s.id)) for s in self._registry.services]
        return {"appservices": entries, "total": len(entries)}

    async def appservice(self, appservice_id: str) -> dict[str, Any]:
        """GET /_synapse/admin/v1/appservices/{appserviceId}."""
        service = self._registry.by_id(appservice_id)
        if service is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"No appservice {appservice_id!r} is registered")
        return self._entry(service, (await self._feeds()).get(service.id))

    async def _feeds(self) -> dict[str, FeedSummary]:
        if not self._registry:
            return {}
        return {f.appservice_id: f for f in await self._store.summaries()}

    def _entry(self, service: AppService, feed: FeedSummary | None) -> dict[str, Any]:
        return {
            "id": service.id,
            "url": service.url,
            "sender": service.sender,
            "registration_file": service.source,
            "namespaces": {kind: [{"regex": ns.regex.pattern, "exclusive": ns.exclusive}
                                  for ns in getattr(service, kind)] for kind in NAMESPACE_KINDS},
            "protocols": list(service.protocols),
            "rate_limited": service.rate_limited,
            "receive_ephemeral": service.wants_ephemeral,
            "msc3202": service.msc3202,
            "msc4190": service.msc4190,
            # An appservice without a URL gets no traffic: it has no feed.
            "feed": None if service.url is None else self._feed(feed),
        }

    def _feed(self, feed: FeedSummary | None) -> dict[str, Any]:
        if feed is None:  # registered, not started yet: it starts at the streams' current ends
            return {"up": True, "backing_off_until_ts": None, "retry_interval_ms": 0, "last_error": None,
                    "last_success_ts": None, "pending_transactions": 0, "pending_events": 0,
                    "oldest_pending_ts": None, "events_behind": 0, "fed_by": None}
        backing_off = feed.retry_interval > 0
        leased = feed.lease_owner is not None and feed.lease_until > self._clock.now_ms()
        return {
            "up": not backing_off,
            "backing_off_until_ts": feed.retry_last_ts + feed.retry_interval if backing_off else None,
            "retry_interval_ms": feed.retry_interval,
            "last_error": feed.last_error,
            "last_success_ts": feed.last_success_ts,
            "pending_transactions": feed.pending_transactions,
            "pending_events": feed.pending_events,
            "oldest_pending_ts": feed.oldest_pending_ts,
            # Stream positions not looked at yet (the feed writes its position about once a second).
            "events_behind": max(0, self._events.current - feed.event_position),
            "fed_by": feed.lease_owner if leased else None,
        }
