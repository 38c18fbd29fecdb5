-- Room aliases on this server, and rooms published in the public room directory.

CREATE TABLE room_aliases (
    alias       TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    creator     TEXT,
    created_ts  BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE published_rooms (
    room_id       TEXT PRIMARY KEY,
    published_ts  BIGINT NOT NULL
);
