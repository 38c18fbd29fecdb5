"""Server-wide figures for /metrics, read when Prometheus scrapes (and cached there a while).

ServerFigureQueries: writes nothing. Tables read: users, rooms, federation_queue,
federation_destinations, appservice_state, appservice_txns.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ServerFigures:
    users: int  # local accounts, deactivated ones not counted
    rooms: int  # rooms this server knows (created here or joined from elsewhere)
    queued: dict[tuple[str, str], int]  # (destination, 'pdu' | 'edu') -> items waiting
    backing_off: dict[str, int]  # destination -> current retry interval (ms), for those failing
    appservice_feeds: dict[str, AppServiceFeedFigures]  # appservice ID -> its feed


@dataclass(frozen=True, slots=True)
class AppServiceFeedFigures:
    retry_interval: int  # ms; 0 while the appservice answers
    pending_transactions: int  # stored, not yet taken
    last_success_ts: int | None


class ServerFigureQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def figures(self) -> ServerFigures:
        counts = await self._db.fetchrow(
            """SELECT (SELECT count(*) FROM users WHERE NOT deactivated) AS users,
                      (SELECT count(*) FROM rooms) AS rooms""")
        queued = await self._db.fetch(
            "SELECT destination, kind, count(*) AS n FROM federation_queue GROUP BY destination, kind")
        backing_off = await self._db.fetch(
            "SELECT destination, retry_interval FROM federation_destinations WHERE retry_interval > 0")
        feeds = await self._db.fetch(
            """SELECT s.appservice_id, s.retry_interval, s.last_success_ts, count(t.txn_id)::int AS pending
               FROM appservice_state s LEFT JOIN appservice_txns t ON t.appservice_id = s.appservice_id
               GROUP BY s.appservice_id""")
        assert counts is not None
        return ServerFigures(
            users=counts["users"], rooms=counts["rooms"],
            queued={(r["destination"], r["kind"]): r["n"] for r in queued},
            backing_off={r["destination"]: r["retry_interval"] for r in backing_off},
            appservice_feeds={r["appservice_id"]: AppServiceFeedFigures(r["retry_interval"], r["pending"],
                                                                        r["last_success_ts"]) for r in feeds},
        )
