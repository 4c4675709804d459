-- Issue 13 (account page): each session remembers the browser it was opened from, so a person
-- can tell their sessions apart. `user_agent` is the User-Agent header (cut to 512 bytes) and
-- `ip` the source address as guildgate saw it (after trusted proxies); both live only as long
-- as the session row.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
