-- Issue 30: SQLite keeps what an access token's check needs in memory too (store/holder_cache.rs),
-- so the change feed is written here as on Postgres (0008 there): these triggers record every
-- change such an answer depends on, whoever makes it (this process, `guildgate` admin commands
-- run beside it, another release), and the serving process reads the rows it has not seen a
-- few times a second (store/change_feed.rs). Rows are kept an hour.
CREATE TRIGGER grants_changed AFTER UPDATE OF revoked_at, expires_at, session_id ON grants
    FOR EACH ROW
    WHEN OLD.revoked_at IS NOT NEW.revoked_at
        OR OLD.expires_at IS NOT NEW.expires_at
        OR OLD.session_id IS NOT NEW.session_id
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('grant', NEW.id, unixepoch());
END;

CREATE TRIGGER sessions_changed AFTER UPDATE OF ended_at, expires_at ON sessions
    FOR EACH ROW
    WHEN OLD.ended_at IS NOT NEW.ended_at
        OR OLD.expires_at IS NOT NEW.expires_at
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('session', NEW.id, unixepoch());
END;

CREATE TRIGGER users_changed AFTER UPDATE OF username, global_name, avatar, email,
    email_verified, locale, membership ON users
    FOR EACH ROW
    WHEN OLD.username IS NOT NEW.username
        OR OLD.global_name IS NOT NEW.global_name
        OR OLD.avatar IS NOT NEW.avatar
        OR OLD.email IS NOT NEW.email
        OR OLD.email_verified IS NOT NEW.email_verified
        OR OLD.locale IS NOT NEW.locale
        OR OLD.membership IS NOT NEW.membership
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('user', NEW.id, unixepoch());
END;

CREATE TRIGGER users_deleted AFTER DELETE ON users
    FOR EACH ROW
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('user', OLD.id, unixepoch());
END;

CREATE TRIGGER revoked_access_tokens_added AFTER INSERT ON revoked_access_tokens
    FOR EACH ROW
BEGIN
    INSERT INTO changes (kind, key, at) VALUES ('jti', NEW.jti, unixepoch());
END;
