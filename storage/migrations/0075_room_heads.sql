-- The version of each room's head (its forward extremities and current state): every persist
-- that moves the head adds one, in the same statement, through the row's lock. A writer that
-- built its events on version N writes them only if the room is still at N, so two processes
-- on one database never fork a room by sending into it at once (storage/events.py, persist).
-- A room without a row is at version 0.
CREATE TABLE room_heads (
    room_id  TEXT PRIMARY KEY,
    version  BIGINT NOT NULL
);
