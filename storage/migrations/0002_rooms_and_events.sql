-- Rooms and their event graph: events (PDUs), prev/auth edges, forward extremities, state
-- snapshots (parent + delta, with periodic full copies), each room's current state,
-- membership history, redactions and per-device transaction IDs.

CREATE TABLE rooms (
    room_id        TEXT PRIMARY KEY,
    room_version   TEXT NOT NULL,
    creator        TEXT,
    created_ts     BIGINT NOT NULL
);

-- The room-events stream: each event added to a timeline takes the next position.
-- A sync token carries a position of this stream.
CREATE SEQUENCE events_stream_seq;

CREATE TABLE events (
    event_id          TEXT PRIMARY KEY,
    room_id           TEXT NOT NULL,
    stream_ordering   BIGINT UNIQUE,          -- NULL for outliers (known, not in the timeline)
    depth             BIGINT NOT NULL,        -- topological position
    type              TEXT NOT NULL,
    state_key         TEXT,                   -- NULL = not a state event
    sender            TEXT NOT NULL,
    origin_server_ts  BIGINT NOT NULL,
    received_ts       BIGINT NOT NULL,
    pdu               JSONB NOT NULL,         -- the PDU as on the wire, without `unsigned`
    outlier           BOOLEAN NOT NULL DEFAULT FALSE,
    rejected_reason   TEXT,                   -- failed auth: kept for the graph, never shown
    soft_failed       BOOLEAN NOT NULL DEFAULT FALSE,
    -- State snapshots before and after the event (equal for non-state events); NULL for outliers.
    state_before      BIGINT,
    state_after       BIGINT,
    -- m.relates_to, denormalised for /relations, threads and aggregations.
    relates_to        TEXT,
    rel_type          TEXT,
    -- Local sends: who sent it from which device with which transaction ID (for unsigned.transaction_id).
    txn_device_id     TEXT,
    txn_id            TEXT
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering) WHERE stream_ordering IS NOT NULL;
CREATE INDEX events_room_topo ON events (room_id, depth, stream_ordering);
CREATE INDEX events_relations ON events (relates_to, rel_type, stream_ordering) WHERE relates_to IS NOT NULL;
CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);

CREATE TABLE event_edges (
    event_id       TEXT NOT NULL,
    prev_event_id  TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth_edges (
    event_id       TEXT NOT NULL,
    auth_event_id  TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_event_id)
);

-- The events with no children yet: the prev_events of the room's next event.
CREATE TABLE forward_extremities (
    room_id   TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- A state snapshot is its parent's state plus the entries listed under it (a delta), or,
-- when prev_group is NULL, exactly its entries (a full copy). A full copy is written every
-- so often (see StateStore) so that resolving a snapshot never reads a long chain.
CREATE TABLE state_groups (
    id          BIGSERIAL PRIMARY KEY,
    room_id     TEXT NOT NULL,
    prev_group  BIGINT REFERENCES state_groups (id),
    chain_length INTEGER NOT NULL             -- deltas between this group and its full copy
);
CREATE TABLE state_group_entries (
    group_id   BIGINT NOT NULL REFERENCES state_groups (id),
    type       TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    PRIMARY KEY (group_id, type, state_key)
);

-- Each room's current state, for fast reads; `membership` is set for m.room.member rows.
CREATE TABLE current_state (
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
-- "Rooms of a user": the member rows by user.
CREATE INDEX current_state_user_rooms ON current_state (state_key, membership) WHERE type = 'm.room.member';

-- Every membership event in timeline order: rooms a user left, members at a point in time.
CREATE TABLE room_memberships (
    event_id         TEXT PRIMARY KEY,
    room_id          TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    sender           TEXT NOT NULL,
    membership       TEXT NOT NULL,
    display_name     TEXT,
    avatar_url       TEXT,
    stream_ordering  BIGINT NOT NULL
);
CREATE INDEX room_memberships_user ON room_memberships (user_id, stream_ordering);
CREATE INDEX room_memberships_room ON room_memberships (room_id, stream_ordering);

-- Redactions: which event redacts which. Reads apply them; the original PDU is kept for
-- the redaction window.
CREATE TABLE redactions (
    event_id     TEXT PRIMARY KEY,            -- the m.room.redaction event
    redacts      TEXT NOT NULL,
    received_ts  BIGINT NOT NULL
);
CREATE INDEX redactions_redacts ON redactions (redacts);

-- Idempotent sends: (user, device, room, txn_id) -> the event it created. Transaction IDs
-- are scoped to the request path, and the room is part of every path that takes one.
CREATE TABLE event_txn_ids (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    txn_id      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, room_id, txn_id)
);

-- Local users' profiles (displayname, avatar_url), copied into their member events.
CREATE TABLE profiles (
    user_id      TEXT PRIMARY KEY,
    displayname  TEXT,
    avatar_url   TEXT
);

-- Rooms a user has forgotten (POST /rooms/{roomId}/forget): hidden from them until they
-- are in the room again.
CREATE TABLE forgotten_rooms (
    user_id  TEXT NOT NULL,
    room_id  TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
