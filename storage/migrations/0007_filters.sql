-- Client filters (POST /user/{userId}/filter), referenced by ID from /sync and /messages.
CREATE TABLE user_filters (
    user_id    TEXT NOT NULL,
    filter_id  BIGINT NOT NULL,
    filter     JSONB NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);
