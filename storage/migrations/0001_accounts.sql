-- Accounts, devices, access and refresh tokens, user-interactive auth sessions and
-- registration tokens: everything login and registration need.

CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    password_hash  TEXT,                     -- argon2id; NULL = cannot log in with a password
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest       BOOLEAN NOT NULL DEFAULT FALSE,
    user_type      TEXT,                     -- NULL for ordinary users, e.g. 'bot', 'support'
    deactivated    BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts     BIGINT NOT NULL
);

CREATE TABLE devices (
    user_id             TEXT NOT NULL REFERENCES users (user_id),
    device_id           TEXT NOT NULL,
    display_name        TEXT,
    last_seen_ts        BIGINT,
    last_seen_ip        TEXT,
    last_seen_user_agent TEXT,
    created_ts          BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE refresh_tokens (
    id             BIGSERIAL PRIMARY KEY,
    token_hash     BYTEA NOT NULL UNIQUE,    -- sha256 of the token: a database leak leaks no tokens
    user_id        TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    -- The token that replaced this one. The old token stays usable until its successor is
    -- used, so a client that lost the refresh response can retry (spec: "Refreshing access tokens").
    next_token_id  BIGINT REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    created_ts     BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

CREATE TABLE access_tokens (
    id                BIGSERIAL PRIMARY KEY,
    token_hash        BYTEA NOT NULL UNIQUE,
    user_id           TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    valid_until_ts    BIGINT,                -- NULL = does not expire
    refresh_token_id  BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    created_ts        BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

CREATE TABLE ui_auth_sessions (
    session_id   TEXT PRIMARY KEY,
    -- What the session was started for (method + path) and by whom: a session cannot be
    -- reused for another operation or by another user.
    operation    TEXT NOT NULL,
    user_id      TEXT,
    completed    JSONB NOT NULL DEFAULT '[]'::jsonb,  -- stage types done so far
    result       JSONB NOT NULL DEFAULT '{}'::jsonb,  -- what stages learned (e.g. the token used)
    created_ts   BIGINT NOT NULL
);

CREATE TABLE registration_tokens (
    token         TEXT PRIMARY KEY,
    uses_allowed  INTEGER,                   -- NULL = unlimited
    pending       INTEGER NOT NULL DEFAULT 0,
    completed     INTEGER NOT NULL DEFAULT 0,
    expiry_ts     BIGINT                     -- NULL = never
);
