-- Dehydrated devices (MSC3814): at most one per user, a device whose (client-encrypted)
-- account the user's other devices can rehydrate. The device itself is an ordinary row of
-- `devices` with its keys; deleting it removes this record too.
CREATE TABLE dehydrated_devices (
    user_id      TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL,
    device_data  JSONB NOT NULL,
    created_ts   BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
