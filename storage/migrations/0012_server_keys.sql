-- Other servers' signing keys (federation key exchange), fetched directly or through notaries.

-- One row per verify key: signatures by it are accepted up to valid_until_ts (the response's
-- validity capped at 7 days after it was fetched, or an old key's expired_ts).
CREATE TABLE server_signing_keys (
    server_name     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    verify_key      TEXT NOT NULL,      -- unpadded base64 ed25519 public key
    valid_until_ts  BIGINT NOT NULL,
    expired         BOOLEAN NOT NULL,   -- listed in old_verify_keys
    from_server     TEXT NOT NULL,      -- the server itself, or the notary that vouched for it
    fetched_ts      BIGINT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);

-- The signed key responses as received (with the server's own signature), served again
-- when we answer notary queries (POST /_matrix/key/v2/query).
CREATE TABLE server_key_responses (
    server_name     TEXT NOT NULL,
    from_server     TEXT NOT NULL,
    valid_until_ts  BIGINT NOT NULL,    -- the response's own valid_until_ts
    fetched_ts      BIGINT NOT NULL,
    response        JSONB NOT NULL,
    PRIMARY KEY (server_name, from_server)
);
