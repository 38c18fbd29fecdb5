-- Remote media: the content of other servers' mxc:// URIs, fetched once over federation and
-- then served from here. The bytes are files of the media store, like local content (so a
-- remote file identical to a local one is stored once, and they share thumbnails).
CREATE TABLE remote_media (
    origin         TEXT NOT NULL,               -- the server of the mxc:// URI
    media_id       TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    upload_name    TEXT,
    media_length   BIGINT NOT NULL,
    sha256         TEXT NOT NULL,
    fetched_ts     BIGINT NOT NULL,
    -- Fetched while the unauthenticated legacy endpoints were frozen (as local_media).
    authenticated  BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (origin, media_id)
);
