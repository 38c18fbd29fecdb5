"""DestinationAdminQueries: the federation destinations as the admin API shows them (their
back-off and how far our deliveries got). Tables read: federation_destinations,
federation_destination_rooms (both written by FederationQueueStore)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class DestinationRow:
    destination: str
    retry_last_ts: int
    retry_interval: int
    failure_ts: int | None
    last_successful_stream_ordering: int | None


@dataclass(frozen=True, slots=True)
class DestinationRoomRow:
    room_id: str
    stream_ordering: int


# What a listing may be ordered by (the admin API's order_by values), ties broken by name.
DESTINATION_ORDERS = ("destination", "retry_last_ts", "retry_interval", "failure_ts",
                      "last_successful_stream_ordering")
_COLUMNS = "destination, retry_last_ts, retry_interval, failure_ts, last_successful_stream_ordering"


class DestinationAdminQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, start: int, limit: int, *, order_by: str, backwards: bool,
                   name_contains: str | None) -> tuple[list[DestinationRow], int]:
        if order_by not in DESTINATION_ORDERS:
            raise ValueError(order_by)
        direction = "DESC" if backwards else "ASC"
        where = "WHERE $1::text IS NULL OR strpos(destination, $1) > 0"
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM federation_destinations {where}
                ORDER BY {order_by} {direction}, destination {direction}
                LIMIT $2 OFFSET $3""",
            name_contains, limit, start,
        )
        total = await self._db.fetchval(f"SELECT count(*) FROM federation_destinations {where}", name_contains)
        return [DestinationRow(**r) for r in rows], total

    async def get(self, destination: str) -> DestinationRow | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM federation_destinations WHERE destination = $1",
                                      destination)
        return DestinationRow(**row) if row else None

    async def rooms(self, destination: str, start: int, limit: int, *,
                    backwards: bool) -> tuple[list[DestinationRoomRow], int]:
        """The rooms whose PDUs the destination acknowledged, by room ID."""
        rows = await self._db.fetch(
            f"""SELECT room_id, stream_ordering FROM federation_destination_rooms WHERE destination = $1
                ORDER BY room_id {'DESC' if backwards else 'ASC'} LIMIT $2 OFFSET $3""",
            destination, limit, start,
        )
        total = await self._db.fetchval(
            "SELECT count(*) FROM federation_destination_rooms WHERE destination = $1", destination)
        return [DestinationRoomRow(**r) for r in rows], total
