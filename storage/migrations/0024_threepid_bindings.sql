-- Third-party identifiers (e-mail addresses, phone numbers) that a user bound to their
-- Matrix ID on an identity server through us (POST /account/3pid/bind): remembered so that
-- unbinding them, or deactivating the account, can ask that identity server to forget them.
CREATE TABLE threepid_id_server_bindings (
    user_id    TEXT NOT NULL,
    medium     TEXT NOT NULL,
    address    TEXT NOT NULL,
    id_server  TEXT NOT NULL,
    PRIMARY KEY (user_id, medium, address, id_server)
);
