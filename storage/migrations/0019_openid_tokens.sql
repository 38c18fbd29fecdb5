-- OpenID tokens (spec: "OpenID"): a user asks for one and hands it to a third party (a widget,
-- an integration manager), which exchanges it with us over federation for the user's ID. They
-- prove nothing else and expire within the hour.
CREATE TABLE openid_tokens (
    token       TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    expires_ts  BIGINT NOT NULL
);
CREATE INDEX openid_tokens_expiry ON openid_tokens (expires_ts);
