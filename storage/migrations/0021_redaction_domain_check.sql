-- Room versions 3 and up leave redactions out of the auth rules: a redaction whose sender lacked
-- the redact power level applies only to events sent from its own server (spec, "Redactions").
-- domain_check marks those; reads apply such a redaction only where the domains match.
ALTER TABLE redactions ADD COLUMN domain_check BOOLEAN NOT NULL DEFAULT FALSE;
