-- What the admin view and /metrics show of each appservice's feed besides its back-off: when it
-- last took a transaction, and why the last one it did not take failed (cleared when it answers).
ALTER TABLE appservice_state ADD COLUMN last_success_ts BIGINT;
ALTER TABLE appservice_state ADD COLUMN last_error TEXT;
