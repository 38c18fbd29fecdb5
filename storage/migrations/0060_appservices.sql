-- Application services: how far each one's feed has got, and the transactions waiting for it.
-- An appservice's transactions are built from the room-event and aux streams in order; the
-- positions they cover advance in the same statement that stores the transaction, so a
-- restart neither loses nor repeats anything. A transaction is retried as stored (same
-- txn_id, same body) until the appservice answers 2xx, then deleted.

CREATE TABLE appservice_state (
    appservice_id   TEXT PRIMARY KEY,
    event_position  BIGINT NOT NULL,          -- room events up to here are in its transactions
    aux_position    BIGINT NOT NULL,          -- receipts, presence, to-device, device lists (aux stream)
    last_txn_id     BIGINT NOT NULL DEFAULT 0,
    -- Back-off, as federation_destinations: retry_interval = 0 while it answers.
    retry_last_ts   BIGINT NOT NULL DEFAULT 0,
    retry_interval  BIGINT NOT NULL DEFAULT 0,
    -- Several server processes may share the database: only the lease holder feeds it.
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE appservice_txns (
    appservice_id  TEXT NOT NULL,
    txn_id         BIGINT NOT NULL,
    body           JSONB NOT NULL,            -- the PUT /transactions body, exactly as sent
    event_count    INTEGER NOT NULL,
    created_ts     BIGINT NOT NULL,
    PRIMARY KEY (appservice_id, txn_id)
);

-- To-device messages by stream position (appservices get those for their users).
CREATE INDEX device_inbox_by_stream ON device_inbox (stream_id);

-- The appservice that registered a user in its exclusive namespace (as Synapse's users.appservice_id).
ALTER TABLE users ADD COLUMN appservice_id TEXT;
