"""Prometheus metrics of one server: GET /metrics on listeners with the `metrics` resource.

The layers keep plain figures on their hot paths (homeserver/stats.py: a counter is an
addition, a latency one bisection); this module turns them into Prometheus metric families
only when scraped, in a registry of its own (several servers may run in one process, as in
the tests), beside prometheus_client's process, platform and GC collectors. The
database-wide figures (users, rooms, the federation queue and back-off) cost queries: they are
read at most every FIGURES_TTL_S, at scrape time, and a database that does not answer (or
hangs) leaves the last ones in place rather than failing or stalling the scrape. docs/metrics.md lists every metric.
Application services: the transactions this process pushed (counters), and each registered
appservice's feed as the database holds it (answering or backing off, transactions waiting,
last success).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from homeserver.stats import REQUEST_BUCKETS, AppServiceTraffic, CacheStats, FederationTraffic, Latency, PersistStats
from storage.database import Database
from storage.server_figures import ServerFigureQueries, ServerFigures

logger = logging.getLogger(__name__)

FIGURES_TTL_S = 30.0
FIGURES_TIMEOUT_S = 5.0


class ServerMetrics:
    def __init__(self, db: Database, figures: ServerFigureQueries, *, sync_waiters: Callable[[], int],
                 persist: PersistStats, federation_in: FederationTraffic, federation_out: FederationTraffic,
                 caches: Mapping[str, CacheStats], appservices_out: AppServiceTraffic | None = None,
                 appservice_ids: Iterable[str] = ()) -> None:
        self._db = db
        self._figure_queries = figures
        self._sync_waiters = sync_waiters
        self._persist = persist
        self._federation_in = federation_in
        self._federation_out = federation_out
        self._caches = dict(caches)
        self._appservices_out = appservices_out or AppServiceTraffic()
        self._appservice_ids = tuple(appservice_ids)  # those with a URL: the ones with a feed
        self._requests: dict[tuple[str, str, int], Latency] = {}
        self._figures: ServerFigures | None = None
        self._figures_read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_request(self, servlet: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered: `servlet` is its route's path template (never the raw path)."""
        key = (servlet, method, status)
        latency = self._requests.get(key)
        if latency is None:
            latency = self._requests[key] = Latency(REQUEST_BUCKETS)
        latency.observe(seconds)

    async def render(self) -> bytes:
        """The exposition text (Prometheus text format 0.0.4)."""
        await self._refresh_figures()
        return generate_latest(self.registry)

    async def _refresh_figures(self) -> None:
        """Start reading the figures when they are older than the TTL, and wait for that read
        at most FIGURES_TIMEOUT_S. A read that takes longer goes on in its own task (cancelling
        a query waits on asyncpg's cancel request, which hangs as long as the database does)
        and this scrape, like the ones that come while it runs, gets the last figures."""
        now = time.monotonic()
        if self._reading is not None or now - self._figures_read_at < FIGURES_TTL_S:
            return
        self._figures_read_at = now
        self._reading = asyncio.create_task(self._read_figures())
        await asyncio.wait({self._reading}, timeout=FIGURES_TIMEOUT_S)

    async def _read_figures(self) -> None:
        try:
            self._figures = await self._figure_queries.figures()
        except Exception as exc:  # the database is down: serve the rest of the metrics
            logger.warning("metrics: could not read the server's figures: %r", exc)
        finally:
            self._reading = None

    # --- the collector (called by generate_latest) -------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield _histogram("chatgo_http_request_duration_seconds",
                         "HTTP requests by servlet (route template), method and status, and their duration",
                         ["servlet", "method", "status"],
                         (((servlet, method, str(status)), latency)
                          for (servlet, method, status), latency in self._requests.items()))
        yield GaugeMetricFamily("chatgo_sync_waiters", "Long-polls (/sync, /events) waiting for something new",
                                value=self._sync_waiters())
        yield CounterMetricFamily("chatgo_events_persisted", "Room events written to timelines, local and received",
                                  value=self._persist.events)
        yield _histogram("chatgo_event_persist_duration_seconds", "Time to write one batch of events",
                         [], [((), self._persist.latency)])
        yield from self._database()
        yield from self._cache_families()
        yield from self._federation()
        yield from self._appservice_traffic()
        if self._figures is not None:
            yield from self._server_figures(self._figures)
            yield from self._appservice_feeds(self._figures)

    def _database(self) -> Iterator[Metric]:
        size, in_use, most = self._db.pool_usage()
        yield GaugeMetricFamily("chatgo_db_pool_connections", "Open connections of the database pool", value=size)
        yield GaugeMetricFamily("chatgo_db_pool_connections_in_use", "Pool connections running a statement or "
                                "transaction", value=in_use)
        yield GaugeMetricFamily("chatgo_db_pool_connections_max", "The most connections the pool may open",
                                value=most)
        yield _histogram("chatgo_db_query_duration_seconds",
                         "Time of each database statement, waiting for a pooled connection included",
                         [], [((), self._db.query_latency)])

    def _cache_families(self) -> Iterator[Metric]:
        size = GaugeMetricFamily("chatgo_cache_size", "Entries held by an in-memory cache", labels=["cache"])
        hits = CounterMetricFamily("chatgo_cache_hits", "Lookups a cache answered", labels=["cache"])
        misses = CounterMetricFamily("chatgo_cache_misses", "Lookups a cache could not answer", labels=["cache"])
        evictions = CounterMetricFamily("chatgo_cache_evictions", "Entries a cache dropped to stay within its size",
                                        labels=["cache"])
        held = GaugeMetricFamily("chatgo_cache_bytes", "Estimated bytes held by an in-memory cache", labels=["cache"])
        ceiling = GaugeMetricFamily("chatgo_cache_max_bytes", "The configured ceiling of an in-memory cache, in bytes",
                                    labels=["cache"])
        for name, stats in self._caches.items():
            size.add_metric([name], stats.size())
            hits.add_metric([name], stats.hits)
            misses.add_metric([name], stats.misses)
            evictions.add_metric([name], stats.evictions)
            if (in_bytes := stats.bytes()) is not None:
                held.add_metric([name], in_bytes)
                ceiling.add_metric([name], stats.max_bytes)
        yield from (size, hits, misses, evictions, held, ceiling)

    def _federation(self) -> Iterator[Metric]:
        for direction, peer, traffic in (("received", "origin", self._federation_in),
                                         ("sent", "destination", self._federation_out)):
            transactions = CounterMetricFamily(
                f"chatgo_federation_transactions_{direction}", f"Federation transactions {direction}, per server "
                "and result", labels=[peer, "result"])
            for (server, result), count in traffic.transactions.items():
                transactions.add_metric([server, result], count)
            yield transactions
            for kind, counts in (("pdus", traffic.pdus), ("edus", traffic.edus)):
                family = CounterMetricFamily(f"chatgo_federation_{kind}_{direction}",
                                             f"{kind[:3].upper()}s in the federation transactions {direction}, "
                                             "per server", labels=[peer])
                for server, count in counts.items():
                    family.add_metric([server], count)
                yield family

    def _appservice_traffic(self) -> Iterator[Metric]:
        transactions = CounterMetricFamily("chatgo_appservice_transactions_sent", "Transactions pushed to "
                                           "application services, per appservice and result", labels=["appservice",
                                                                                                       "result"])
        for (appservice, result), count in self._appservices_out.transactions.items():
            transactions.add_metric([appservice, result], count)
        yield transactions
        events = CounterMetricFamily("chatgo_appservice_events_sent", "Events in the transactions application "
                                     "services took, per appservice", labels=["appservice"])
        for appservice, count in self._appservices_out.events.items():
            events.add_metric([appservice], count)
        yield events

    def _appservice_feeds(self, figures: ServerFigures) -> Iterator[Metric]:
        up = GaugeMetricFamily("chatgo_appservice_up", "1 while an application service takes its transactions, "
                               "0 while it is backed off", labels=["appservice"])
        retry = GaugeMetricFamily("chatgo_appservice_retry_interval_seconds", "Back-off of application services "
                                  "whose last transaction failed", labels=["appservice"])
        pending = GaugeMetricFamily("chatgo_appservice_pending_transactions", "Transactions stored for an "
                                    "application service and not yet taken", labels=["appservice"])
        success = GaugeMetricFamily("chatgo_appservice_last_success_timestamp_seconds", "When an application "
                                    "service last took a transaction (Unix time)", labels=["appservice"])
        for appservice in self._appservice_ids:
            feed = figures.appservice_feeds.get(appservice)
            interval = feed.retry_interval if feed else 0
            up.add_metric([appservice], 0 if interval else 1)
            if interval:
                retry.add_metric([appservice], interval / 1000)
            pending.add_metric([appservice], feed.pending_transactions if feed else 0)
            if feed and feed.last_success_ts is not None:
                success.add_metric([appservice], feed.last_success_ts / 1000)
        yield from (up, retry, pending, success)

    @staticmethod
    def _server_figures(figures: ServerFigures) -> Iterator[Metric]:
        yield GaugeMetricFamily("chatgo_users", "Local user accounts, deactivated ones not counted",
                                value=figures.users)
        yield GaugeMetricFamily("chatgo_rooms", "Rooms this server knows", value=figures.rooms)
        queued = GaugeMetricFamily("chatgo_federation_queue_depth", "PDUs and EDUs waiting to be sent, per "
                                   "destination", labels=["destination", "kind"])
        for (destination, kind), count in figures.queued.items():
            queued.add_metric([destination, kind], count)
        yield queued
        retry = GaugeMetricFamily("chatgo_federation_destination_retry_interval_seconds",
                                  "Back-off of destinations whose last transaction failed", labels=["destination"])
        for destination, interval_ms in figures.backing_off.items():
            retry.add_metric([destination], interval_ms / 1000)
        yield retry
        yield GaugeMetricFamily("chatgo_federation_destinations_backing_off",
                                "Destinations waiting out a back-off", value=len(figures.backing_off))


def _histogram(name: str, documentation: str, labels: list[str],
               series: Iterable[tuple[tuple[str, ...], Latency]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, latency in series:
        family.add_metric(list(label_values), [(floatToGoString(bound), count) for bound, count in
                                               latency.cumulative()], latency.sum)
    return family
