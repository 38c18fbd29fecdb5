-- Rooms shared with other servers: the snapshot of each room's current state (which, after
-- a state resolution, is no single event's state_after), backfilled history, the
-- transactions peers sent us, and the stripped state of invites and knocks from other servers.

-- The state snapshot matching current_state. NULL: the state_after of the newest timeline
-- event (rooms written before this column).
ALTER TABLE rooms ADD COLUMN state_group BIGINT;

-- Backfilled (older) events take negative positions, counting down, so that they sort before
-- the live timeline and never show up as news in an incremental /sync.
CREATE SEQUENCE events_backfill_seq;

-- PUT /send/{txnId}: a peer's retried transaction gets the first answer again.
CREATE TABLE federation_inbound_txns (
    origin       TEXT NOT NULL,
    txn_id       TEXT NOT NULL,
    response     JSONB NOT NULL,
    received_ts  BIGINT NOT NULL,
    PRIMARY KEY (origin, txn_id)
);

-- The stripped state another server sent with an invite (invite_room_state) or a knock
-- (knock_room_state), keyed by the membership event it came with: what /sync shows under
-- rooms.invite / rooms.knock for a room this server is not in.
CREATE TABLE stripped_room_state (
    event_id  TEXT PRIMARY KEY,
    room_id   TEXT NOT NULL,
    state     JSONB NOT NULL
);
