"""ServerNoticeQueries: finding a user's server notices room. Tables read: current_state."""

from __future__ import annotations

from storage.database import Database


class ServerNoticeQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def notice_room(self, user_id: str, system_user_id: str) -> str | None:
        """A room the user is invited to or joined, where the system user is joined (as
        Synapse: only the system user's join makes a room a notices room), the joined first."""
        return await self._db.fetchval(
            """SELECT u.room_id FROM current_state u
               JOIN current_state s ON s.room_id = u.room_id AND s.type = 'm.room.member' AND s.state_key = $2
                                   AND s.membership = 'join'
               WHERE u.type = 'm.room.member' AND u.state_key = $1 AND u.membership IN ('invite', 'join')
               ORDER BY u.membership = 'join' DESC, u.room_id LIMIT 1""",
            user_id, system_user_id)

    async def is_joined(self, room_id: str, user_id: str) -> bool:
        return bool(await self._db.fetchval(
            """SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member' AND state_key = $2
               AND membership = 'join'""",
            room_id, user_id))
