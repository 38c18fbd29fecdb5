-- What users reported to the server admins (spec: "Reporting content"), until an admin
-- resolves (deletes) the report: events (with the client's body: reason, score), rooms and users.
CREATE TABLE event_reports (
    id           BIGSERIAL PRIMARY KEY,
    received_ts  BIGINT NOT NULL,
    room_id      TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,          -- the reporter
    reason       TEXT,
    content      JSONB NOT NULL          -- the report's body as sent (reason, score, ...)
);
CREATE INDEX event_reports_received ON event_reports (received_ts, id);

CREATE TABLE room_reports (
    id           BIGSERIAL PRIMARY KEY,
    received_ts  BIGINT NOT NULL,
    room_id      TEXT NOT NULL,
    user_id      TEXT NOT NULL,          -- the reporter
    reason       TEXT NOT NULL
);
CREATE INDEX room_reports_received ON room_reports (received_ts, id);

CREATE TABLE user_reports (
    id              BIGSERIAL PRIMARY KEY,
    received_ts     BIGINT NOT NULL,
    target_user_id  TEXT NOT NULL,       -- the user reported
    user_id         TEXT NOT NULL,       -- the reporter
    reason          TEXT NOT NULL
);
CREATE INDEX user_reports_received ON user_reports (received_ts, id);
