-- Custom profile fields (spec v1.16+: GET/PUT/DELETE /profile/{userId}/{keyName}), beside
-- the displayname and avatar_url columns.
ALTER TABLE profiles ADD COLUMN fields JSONB NOT NULL DEFAULT '{}'::jsonb;
