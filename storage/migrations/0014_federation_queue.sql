-- The outbound federation queue: PDUs and EDUs waiting for delivery to other servers, and
-- each destination's back-off state. Rows live until the destination acknowledged them
-- (HTTP 200 to PUT /send/{txnId}), so nothing is lost when either server restarts.

-- One copy of each queued item, however many destinations it goes to.
CREATE TABLE federation_outbox (
    item_id     BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('pdu', 'edu')),
    body        JSONB NOT NULL,        -- the PDU, or the EDU {"edu_type", "content"}
    room_id     TEXT,                  -- a PDU's room (catch-up keeps the latest per room)
    created_ts  BIGINT NOT NULL
);

-- Which destination still waits for which item; delivered in item_id order.
CREATE TABLE federation_queue (
    destination TEXT NOT NULL,
    item_id     BIGINT NOT NULL REFERENCES federation_outbox (item_id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,         -- copied from the outbox, so a batch picks PDUs and EDUs apart
    PRIMARY KEY (destination, item_id)
);
CREATE INDEX federation_queue_item ON federation_queue (item_id);

-- Back-off per destination, as Synapse's `destinations` table: after a failure at
-- retry_last_ts, the next attempt waits retry_interval (doubling per failure, capped).
-- retry_interval = 0: the destination is healthy.
-- Several server processes may share the database: the one holding the lease (lease_owner,
-- until lease_until) is the only one delivering to the destination, so transactions are
-- neither duplicated nor reordered.
CREATE TABLE federation_destinations (
    destination     TEXT PRIMARY KEY,
    retry_last_ts   BIGINT NOT NULL DEFAULT 0,
    retry_interval  BIGINT NOT NULL DEFAULT 0,
    last_success_ts BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0
);

-- The stream_id of the last m.device_list_update sent for each local user: the next update's
-- prev_id (spec, "Device Management"), so that a peer that missed one notices the gap.
CREATE TABLE federation_device_list_sent (
    user_id    TEXT PRIMARY KEY,
    stream_id  BIGINT NOT NULL
);
