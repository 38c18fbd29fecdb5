-- Notary answers (GET/POST /_matrix/key/v2/query) are about keys: keep the signed response each
-- key came in, per key, so that a later response that no longer lists an old key (a server that
-- forgot it) does not make us forget the proof we had of it. The rows are a cache: starting empty
-- only costs a fetch.
DROP TABLE server_key_responses;

CREATE TABLE server_key_responses (
    server_name     TEXT NOT NULL,
    key_id          TEXT NOT NULL,      -- a key of verify_keys or old_verify_keys in `response`
    from_server     TEXT NOT NULL,      -- the server itself, or the notary that vouched for it
    valid_until_ts  BIGINT NOT NULL,    -- the response's own valid_until_ts
    fetched_ts      BIGINT NOT NULL,
    response        JSONB NOT NULL,
    PRIMARY KEY (server_name, key_id, from_server)
);
