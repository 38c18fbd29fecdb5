-- The media repository: local content, its thumbnails, and URL previews. The bytes live on
-- disk in the media store, one file per distinct content (named by its SHA-256).

-- Local media: uploads, and images fetched for URL previews. A row whose media_length is
-- NULL is an mxc:// URI reserved by POST /_matrix/media/v1/create and not yet uploaded.
CREATE TABLE local_media (
    media_id       TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,               -- the uploader (or creator of the reservation)
    created_ts     BIGINT NOT NULL,
    media_type     TEXT,
    upload_name    TEXT,
    media_length   BIGINT,
    sha256         TEXT,                        -- the content's file in the media store
    -- Uploaded while the unauthenticated legacy download endpoints were frozen: served only
    -- by the authenticated ones while the freeze lasts.
    authenticated  BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((media_length IS NULL) = (sha256 IS NULL))
);

-- Counting a user's pending reservations.
CREATE INDEX local_media_pending ON local_media (user_id, created_ts) WHERE media_length IS NULL;

-- Thumbnails, made on first request and kept. Keyed by the content they were made from, so
-- identical uploads share them; the thumbnail's own bytes are content in the media store too.
CREATE TABLE media_thumbnails (
    sha256            TEXT NOT NULL,            -- the content thumbnailed
    width             INTEGER NOT NULL,         -- the size asked of the thumbnailer (a preset)
    height            INTEGER NOT NULL,
    method            TEXT NOT NULL,            -- crop | scale
    animated          BOOLEAN NOT NULL,         -- an animated thumbnail was asked for
    media_type        TEXT NOT NULL,            -- of the thumbnail
    thumbnail_sha256  TEXT NOT NULL,
    length            BIGINT NOT NULL,
    PRIMARY KEY (sha256, width, height, method, animated)
);

-- URL previews, kept per URL and fetch time (the `ts` parameter asks for a past preview).
CREATE TABLE url_previews (
    url         TEXT NOT NULL,
    fetched_ts  BIGINT NOT NULL,
    expires_ts  BIGINT NOT NULL,
    og          JSONB NOT NULL,
    PRIMARY KEY (url, fetched_ts)
);
