-- Redacted events keep their original PDU for the redaction window (config
-- redaction_retention_period_ms); then the stored PDU is replaced by its redacted form.
ALTER TABLE redactions ADD COLUMN pruned BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX redactions_unpruned ON redactions (received_ts) WHERE NOT pruned;
