-- Rooms a server admin blocked (PUT /_synapse/admin/v1/rooms/{roomId}/block, or a room
-- deletion with "block"): local users may not join, be invited to or knock on them, and other
-- servers' invites into them are refused. A room may be blocked before this server knows it.
CREATE TABLE blocked_rooms (
    room_id     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,     -- the admin who blocked it
    blocked_ts  BIGINT NOT NULL
);
