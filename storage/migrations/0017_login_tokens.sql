-- Login tokens (m.login.token): handed to a client at the end of single sign-on, exchanged once
-- at POST /login for an access token, and short-lived.
CREATE TABLE login_tokens (
    token       TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    expires_ts  BIGINT NOT NULL
);
CREATE INDEX login_tokens_expiry ON login_tokens (expires_ts);
