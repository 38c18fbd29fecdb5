-- Faster joins (MSC3706 / MSC3902), the joining side: rooms joined over federation with a
-- partial state (the resident server left most members out of its send_join answer). The row
-- stays until the background resync has fetched and stored the full state at the join.
CREATE TABLE partial_state_rooms (
    room_id          TEXT PRIMARY KEY,
    join_event_id    TEXT NOT NULL,
    -- The servers the resident server said were in the room (servers_in_room): where our
    -- events go, and whom the resync asks, until the full state is known.
    servers_in_room  TEXT[] NOT NULL,
    started_ts       BIGINT NOT NULL,
    -- The process resyncing the room holds it until then (several processes on one database
    -- resume the same rooms at start-up: one of them does the work).
    lease_until_ts   BIGINT
);

-- When each room's full state came in: the events stream position the resync took. An
-- incremental /sync that does not lazy-load members hands such a room over again, whole (as
-- Synapse's "un-partial-stated rooms" stream), so its client learns the members it lacked.
CREATE TABLE partial_state_cleared (
    room_id          TEXT PRIMARY KEY,
    stream_ordering  BIGINT NOT NULL
);
