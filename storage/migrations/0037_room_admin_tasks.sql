-- Room deletions (DELETE /_synapse/admin/v2/rooms/{roomId}) and history purges
-- (POST /_synapse/admin/v1/purge_history/...) run in the background; their status lives here
-- so it can be read after the request, and from any process sharing the database.
-- A running task refreshes updated_ts (a heartbeat); one whose heartbeat stopped (its
-- process died) is reported, and at the next start recorded, as failed.
CREATE TABLE room_admin_tasks (
    task_id     TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('delete', 'purge_history')),
    room_id     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('scheduled', 'active', 'complete', 'failed')),
    params      JSONB NOT NULL DEFAULT '{}',
    result      JSONB,             -- a deletion's shutdown_room answer, as it progresses
    error       TEXT,
    requester   TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    updated_ts  BIGINT NOT NULL
);
CREATE INDEX room_admin_tasks_room ON room_admin_tasks (room_id, created_ts);
CREATE INDEX room_admin_tasks_running ON room_admin_tasks (updated_ts) WHERE status IN ('scheduled', 'active');
