"""Federation destinations for server admins (Synapse's federation admin API): every server
we have sent to, its back-off (retry_last_ts, retry_interval, since when it has been failing),
how far our deliveries got (overall and per room), and resetting a back-off so that the
sender tries the destination again at once.

Rooms are listed per destination once a PDU of theirs reached it (recorded as transactions
are acknowledged, not as events are queued, which would cost a write per event and server).
"""

from __future__ import annotations

from federation.sender import FederationSender
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from storage.federation_destinations import (
    DESTINATION_ORDERS,
    DestinationAdminQueries,
    DestinationRoomRow,
    DestinationRow,
)


class AdminDestinationService:
    def __init__(self, queries: DestinationAdminQueries, sender: FederationSender, audit: AdminAuditLog) -> None:
        self._queries = queries
        self._sender = sender
        self._audit = audit

    async def list(self, start: int, limit: int, *, order_by: str = "destination", backwards: bool = False,
                   name_contains: str | None = None) -> tuple[list[DestinationRow], int]:
        if order_by not in DESTINATION_ORDERS:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"Unknown value for order_by: {order_by} (one of {', '.join(DESTINATION_ORDERS)})")
        return await self._queries.page(start, limit, order_by=order_by, backwards=backwards,
                                        name_contains=name_contains)

    async def get(self, destination: str) -> DestinationRow:
        row = await self._queries.get(destination)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown destination")
        return row

    async def rooms(self, destination: str, start: int, limit: int, *,
                    backwards: bool = False) -> tuple[list[DestinationRoomRow], int]:
        await self.get(destination)
        return await self._queries.rooms(destination, start, limit, backwards=backwards)

    async def reset_connection(self, admin_id: str, destination: str) -> None:
        """Forget the destination's back-off and wake its delivery now. 404 for a destination we
        never sent to, 400 when it is not backing off (nothing to reset), as Synapse."""
        await self.get(destination)
        if not await self._sender.reset_retry(destination):
            raise MatrixError(400, Codes.UNKNOWN, "The retry timing does not need to be reset for this destination.")
        await self._audit.record(admin_id, "destination.reset_connection", destination)
