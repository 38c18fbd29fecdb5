-- Full-text search over message bodies, room names and topics (POST /search).
-- 'simple' configuration: no stemming or stop words, so any language matches word for word.
CREATE INDEX events_search ON events USING GIN (
    to_tsvector('simple', coalesce(pdu->'content'->>'body', '') || ' ' ||
                          coalesce(pdu->'content'->>'name', '') || ' ' ||
                          coalesce(pdu->'content'->>'topic', ''))
) WHERE type IN ('m.room.message', 'm.room.name', 'm.room.topic');
