-- What the Synapse-compatible admin API keeps about accounts.

-- Moderation flags (PUT /_synapse/admin/v2/users, .../shadow_ban, /_matrix/client/v1/admin/lock
-- and /suspend). Few accounts carry one: the server keeps those in memory, read through the
-- partial index.
ALTER TABLE users
    ADD COLUMN shadow_banned BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN locked        BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN suspended     BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX users_restricted ON users (user_id) WHERE shadow_banned OR locked OR suspended;

-- The accounts' identities at external identity providers (SSO), as an admin sets them.
CREATE TABLE user_external_ids (
    auth_provider  TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    PRIMARY KEY (auth_provider, external_id)
);
CREATE INDEX user_external_ids_by_user ON user_external_ids (user_id);

-- Account validity (the `account_validity` config section): when an account expires.
CREATE TABLE account_validity (
    user_id        TEXT PRIMARY KEY REFERENCES users (user_id),
    expiration_ts  BIGINT NOT NULL,
    -- A renewal e-mail went out for this period (or the admin turned them off for it).
    email_sent     BOOLEAN NOT NULL DEFAULT FALSE
);

-- "Login as a user" (POST /_synapse/admin/v1/users/{userId}/login): a token of the admin
-- (user_id) acting as another user (puppets_user_id), on no device, as Synapse's puppet
-- tokens: the user's device list does not show it, and the admin's /logout/all ends it.
ALTER TABLE access_tokens
    ALTER COLUMN device_id DROP NOT NULL,
    ADD COLUMN puppets_user_id TEXT REFERENCES users (user_id);
