-- Accounts deactivated with `erase: true` (POST /account/deactivate): the events they sent are
-- served redacted to other servers from then on (spec: "Account deactivation").
CREATE TABLE erased_users (
    user_id    TEXT PRIMARY KEY,
    erased_ts  BIGINT NOT NULL
);
