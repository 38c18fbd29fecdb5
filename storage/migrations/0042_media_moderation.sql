-- Media moderation (Synapse's media admin API): quarantine (served to nobody: 404), protection
-- from quarantine, and the last time media was served (what "delete media not used since" and
-- "purge the remote media cache" go by).
ALTER TABLE local_media ADD COLUMN quarantined_by TEXT;           -- the admin who quarantined it
ALTER TABLE local_media ADD COLUMN safe_from_quarantine BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE local_media ADD COLUMN last_access_ts BIGINT;         -- NULL: never served
ALTER TABLE remote_media ADD COLUMN quarantined_by TEXT;
ALTER TABLE remote_media ADD COLUMN last_access_ts BIGINT;

-- A user's media, newest first (admin listing, quarantine and deletion by user).
CREATE INDEX local_media_user ON local_media (user_id, created_ts);
-- Quarantine goes by content (identical files are one file): find every media of a hash, and
-- whether a file is still used before it is removed from disk.
CREATE INDEX local_media_sha256 ON local_media (sha256);
CREATE INDEX remote_media_sha256 ON remote_media (sha256);
CREATE INDEX media_thumbnails_thumbnail ON media_thumbnails (thumbnail_sha256);
