-- Per-user rate limit overrides set by server admins (Synapse's
-- /_synapse/admin/v1/users/<user_id>/override_ratelimit): messages_per_second 0 means the user
-- is never rate limited; other values replace rc_message for that user.
CREATE TABLE ratelimit_override (
    user_id              TEXT PRIMARY KEY,
    messages_per_second  BIGINT NOT NULL CHECK (messages_per_second >= 0),
    burst_count          BIGINT NOT NULL CHECK (burst_count >= 0)
);
