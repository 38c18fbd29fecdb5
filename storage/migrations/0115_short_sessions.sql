-- Short-lived state a client or script carries between two requests that may reach different
-- processes: /hierarchy paging sessions, shared-secret registration nonces.
CREATE TABLE short_sessions (
    kind TEXT NOT NULL,           -- 'hierarchy', 'registration_nonce'
    id TEXT NOT NULL,             -- the token handed out
    value JSONB NOT NULL,
    expires_ts BIGINT NOT NULL,   -- ms; an expired session is never returned
    PRIMARY KEY (kind, id)
);
CREATE INDEX short_sessions_expiry ON short_sessions (expires_ts);
