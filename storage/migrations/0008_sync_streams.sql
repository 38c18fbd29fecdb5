-- The "aux" stream: one sequence of positions shared by every per-user change /sync delivers
-- besides room events (account data, receipts, to-device messages, device-list changes,
-- presence). A sync token carries the room-event position and this one.
CREATE SEQUENCE aux_stream_seq;

-- Account data, global (room_id = '') and per room. Room tags are the m.tag type of a room.
CREATE TABLE account_data (
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL DEFAULT '',
    type       TEXT NOT NULL,
    content    JSONB NOT NULL,
    stream_id  BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_by_stream ON account_data (user_id, stream_id);

-- The latest receipt of each (room, type, user, thread); thread_id '' is an unthreaded receipt.
-- event_stream_ordering places the receipted event in the room-event stream (unread counts).
CREATE TABLE receipts (
    room_id                TEXT NOT NULL,
    receipt_type           TEXT NOT NULL,
    user_id                TEXT NOT NULL,
    thread_id              TEXT NOT NULL DEFAULT '',
    event_id               TEXT NOT NULL,
    event_stream_ordering  BIGINT NOT NULL,
    ts                     BIGINT NOT NULL,
    stream_id              BIGINT NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_by_stream ON receipts (stream_id);
CREATE INDEX receipts_by_user ON receipts (user_id, room_id);

-- To-device messages waiting for a device; deleted once the device syncs past them.
CREATE TABLE device_inbox (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    stream_id  BIGINT NOT NULL,
    message    JSONB NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id)
);
-- sendToDevice transaction IDs, so a retried request delivers nothing twice.
CREATE TABLE to_device_txns (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

-- A user's devices or keys changed at stream_id (clients re-query their keys).
CREATE TABLE device_list_changes (
    user_id    TEXT NOT NULL,
    stream_id  BIGINT NOT NULL,
    PRIMARY KEY (user_id, stream_id)
);
CREATE INDEX device_list_changes_by_stream ON device_list_changes (stream_id);

-- Presence, one row per user; stream_id is the last change.
CREATE TABLE presence (
    user_id           TEXT PRIMARY KEY,
    state             TEXT NOT NULL,
    status_msg        TEXT,
    last_active_ts    BIGINT NOT NULL,
    currently_active  BOOLEAN NOT NULL DEFAULT FALSE,
    stream_id         BIGINT NOT NULL
);
CREATE INDEX presence_by_stream ON presence (stream_id);
