-- Key changes that only one user is told of in /sync's device_lists.changed (and
-- /keys/changes): their own user-signing key, and the signatures their user-signing key made
-- on other users' keys (spec: cross-signing; the user-signing key is seen by its owner only).
CREATE TABLE device_list_private_changes (
    viewer     TEXT NOT NULL,   -- who is told
    user_id    TEXT NOT NULL,   -- whose keys to fetch again
    stream_id  BIGINT NOT NULL,
    PRIMARY KEY (viewer, stream_id, user_id)
);
