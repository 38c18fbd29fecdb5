-- E-mail validation sessions (POST .../email/requestToken, then the link in the mail), and
-- the validated third-party identifiers of accounts (an address belongs to one account).
CREATE TABLE threepid_validation_sessions (
    session_id     TEXT PRIMARY KEY,
    client_secret  TEXT NOT NULL,
    medium         TEXT NOT NULL,
    address        TEXT NOT NULL,
    token          TEXT NOT NULL,
    send_attempt   INTEGER NOT NULL,
    created_ts     BIGINT NOT NULL,
    validated_ts   BIGINT
);
CREATE INDEX threepid_validation_sessions_lookup
    ON threepid_validation_sessions (client_secret, medium, address);

CREATE TABLE user_threepids (
    medium        TEXT NOT NULL,
    address       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    validated_ts  BIGINT NOT NULL,
    added_ts      BIGINT NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_by_user ON user_threepids (user_id);
