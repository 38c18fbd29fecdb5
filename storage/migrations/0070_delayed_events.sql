-- Delayed events (MSC4140): events a local user scheduled to be sent later, unless cancelled
-- or restarted before. A row lives until its event is sent (or cancelled): the scheduler of
-- any process sharing the database claims it when due (claimed_ts), sends it and deletes it.
-- A claim older than half a minute belongs to a process that died while sending: the row
-- may be claimed again (the send is idempotent, see services/rooms/delayed_events.py).
CREATE TABLE delayed_events (
    delay_id    TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    device_id   TEXT,
    room_id     TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    state_key   TEXT,              -- NULL for a message event
    content     JSONB NOT NULL,
    delay_ms    BIGINT NOT NULL CHECK (delay_ms >= 0),
    send_ts     BIGINT NOT NULL,   -- due: when it was scheduled or last restarted, plus delay_ms
    txn_id      TEXT,              -- the client's transaction ID (PUT .../send/{type}/{txnId})
    claimed_ts  BIGINT             -- set while a scheduler sends it
);
-- The scheduler's next wake-up: the earliest unclaimed row.
CREATE INDEX delayed_events_due ON delayed_events (send_ts) WHERE claimed_ts IS NULL;
CREATE INDEX delayed_events_user ON delayed_events (user_id, send_ts);
-- Another user's state event cancels the delayed state events for the same state.
CREATE INDEX delayed_events_state ON delayed_events (room_id, event_type, state_key) WHERE state_key IS NOT NULL;
-- A retried PUT with the same transaction ID finds the delayed event it scheduled.
CREATE UNIQUE INDEX delayed_events_txn ON delayed_events (user_id, device_id, room_id, txn_id)
    WHERE txn_id IS NOT NULL;
