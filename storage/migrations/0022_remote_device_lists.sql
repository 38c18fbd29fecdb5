-- Device lists of users of other servers (spec, "Device Management"): kept while a local user
-- shares a room with them, from their server's GET /user/devices answers and the
-- m.device_list_update EDUs that follow, so that /keys/query answers from here. A user with no
-- row is not tracked: the next query resyncs. stream_id is the last update applied; an update
-- whose prev_id names another one means we missed some, and the list is fetched again.
CREATE TABLE remote_device_lists (
    user_id           TEXT PRIMARY KEY,
    stream_id         BIGINT NOT NULL,
    master_key        JSONB,
    self_signing_key  JSONB,
    updated_ts        BIGINT NOT NULL
);

CREATE TABLE remote_devices (
    user_id       TEXT NOT NULL REFERENCES remote_device_lists (user_id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    display_name  TEXT,
    keys          JSONB,          -- the device keys object as the server gave it
    PRIMARY KEY (user_id, device_id)
);
