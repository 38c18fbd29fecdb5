-- What the admin API tells of each federation destination (Synapse's destinations and
-- destination_rooms): since when it has been failing, and how far our delivered PDUs got.

-- failure_ts: the first failure of the current run of failures (NULL once it answers again).
-- last_successful_stream_ordering: the stream ordering of the latest PDU it acknowledged.
ALTER TABLE federation_destinations ADD COLUMN failure_ts BIGINT;
ALTER TABLE federation_destinations ADD COLUMN last_successful_stream_ordering BIGINT;

-- A queued PDU's stream ordering (NULL for PDUs relayed for others and for EDUs).
ALTER TABLE federation_outbox ADD COLUMN stream_ordering BIGINT;

-- Per destination and room, the stream ordering of the latest PDU the destination acknowledged.
CREATE TABLE federation_destination_rooms (
    destination      TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    PRIMARY KEY (destination, room_id)
);
