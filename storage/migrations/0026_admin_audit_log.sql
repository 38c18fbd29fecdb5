-- Every change a server admin makes through the admin API or the admin page: who, what, when.
CREATE TABLE admin_audit_log (
    id         BIGSERIAL PRIMARY KEY,
    ts         BIGINT NOT NULL,
    admin_id   TEXT NOT NULL,          -- the admin's user ID
    action     TEXT NOT NULL,          -- e.g. "user.deactivate", "room.delete"
    target     TEXT,                   -- the user, room, media or token acted on
    details    JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX admin_audit_log_target ON admin_audit_log (target, id);
CREATE INDEX admin_audit_log_admin ON admin_audit_log (admin_id, id);
