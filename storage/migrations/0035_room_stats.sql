-- Per-room figures for the admin room list (GET /_synapse/admin/v1/rooms), which sorts and
-- filters every room by them: kept up to date by EventStore.persist in the statement that
-- changes current_state (deltas of the changed rows), so a listing reads one row per room.
CREATE TABLE room_stats (
    room_id               TEXT PRIMARY KEY,
    state_events          INTEGER NOT NULL DEFAULT 0,   -- rows of current_state
    joined_members        INTEGER NOT NULL DEFAULT 0,
    joined_local_members  INTEGER NOT NULL DEFAULT 0,   -- joined users with an account here
    -- What clients show of the room, from its current state: name, topic, avatar,
    -- canonical_alias, join_rules, guest_access, history_visibility, encryption (algorithm),
    -- room_type and federatable (m.room.create's type and m.federate); JSON null when unset.
    state                 JSONB NOT NULL DEFAULT '{}'
);

-- The rooms already there (storage.events.STATS_FIELDS lists the same fields).
INSERT INTO room_stats (room_id, state_events, joined_members, joined_local_members, state)
SELECT c.room_id, count(*),
       count(*) FILTER (WHERE c.type = 'm.room.member' AND c.membership = 'join'),
       count(*) FILTER (WHERE c.type = 'm.room.member' AND c.membership = 'join'
                        AND EXISTS (SELECT 1 FROM users u WHERE u.user_id = c.state_key)),
       coalesce((SELECT jsonb_object_agg(f.name, e.pdu->'content'->f.key)
                 FROM current_state s
                 JOIN (VALUES ('m.room.name', 'name', 'name'), ('m.room.topic', 'topic', 'topic'),
                              ('m.room.avatar', 'url', 'avatar'),
                              ('m.room.canonical_alias', 'alias', 'canonical_alias'),
                              ('m.room.join_rules', 'join_rule', 'join_rules'),
                              ('m.room.guest_access', 'guest_access', 'guest_access'),
                              ('m.room.history_visibility', 'history_visibility', 'history_visibility'),
                              ('m.room.encryption', 'algorithm', 'encryption'),
                              ('m.room.create', 'type', 'room_type'),
                              ('m.room.create', 'm.federate', 'federatable')) AS f(type, key, name)
                   ON f.type = s.type AND s.state_key = ''
                 JOIN events e ON e.event_id = s.event_id
                 WHERE s.room_id = c.room_id), '{}')
FROM current_state c GROUP BY c.room_id;
