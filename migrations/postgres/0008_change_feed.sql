-- Issue 28: the change feed. Each process keeps what an access token's check needs in memory
-- (store/holder_cache.rs); triggers write here every change such an answer depends on (a
-- grant revoked or ended, a session ended, a person's profile or membership, a jti revoked),
-- whoever makes it (requests, jobs, admin commands, another release), and every process reads
-- the rows it has not seen a few times a second (store/change_feed.rs). Rows are kept an hour.
CREATE TABLE changes (
    seq  BIGSERIAL PRIMARY KEY,
    kind TEXT      NOT NULL,
    key  TEXT      NOT NULL,
    at   BIGINT    NOT NULL
);
CREATE INDEX changes_at ON changes (at);

-- A row whose `id` changed (the kind is the trigger's argument).
CREATE FUNCTION guildgate_changed_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (kind, key, at)
        VALUES (TG_ARGV[0], OLD.id, floor(extract(epoch FROM clock_timestamp()))::bigint);
    ELSE
        INSERT INTO changes (kind, key, at)
        VALUES (TG_ARGV[0], NEW.id, floor(extract(epoch FROM clock_timestamp()))::bigint);
    END IF;
    RETURN NULL;
END
$$;

-- An access token revoked by its jti.
CREATE FUNCTION guildgate_revoked_jti() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (kind, key, at)
    VALUES ('jti', NEW.jti, floor(extract(epoch FROM clock_timestamp()))::bigint);
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_changed AFTER UPDATE OF revoked_at, expires_at, session_id ON grants
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.session_id IS DISTINCT FROM NEW.session_id)
    EXECUTE FUNCTION guildgate_changed_id('grant');

CREATE TRIGGER sessions_changed AFTER UPDATE OF ended_at, expires_at ON sessions
    FOR EACH ROW
    WHEN (OLD.ended_at IS DISTINCT FROM NEW.ended_at
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION guildgate_changed_id('session');

CREATE TRIGGER users_changed AFTER UPDATE OF username, global_name, avatar, email,
    email_verified, locale, membership ON users
    FOR EACH ROW
    WHEN (OLD.username IS DISTINCT FROM NEW.username
        OR OLD.global_name IS DISTINCT FROM NEW.global_name
        OR OLD.avatar IS DISTINCT FROM NEW.avatar
        OR OLD.email IS DISTINCT FROM NEW.email
        OR OLD.email_verified IS DISTINCT FROM NEW.email_verified
        OR OLD.locale IS DISTINCT FROM NEW.locale
        OR OLD.membership IS DISTINCT FROM NEW.membership)
    EXECUTE FUNCTION guildgate_changed_id('user');

CREATE TRIGGER users_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION guildgate_changed_id('user');

CREATE TRIGGER revoked_access_tokens_added AFTER INSERT ON revoked_access_tokens
    FOR EACH ROW EXECUTE FUNCTION guildgate_revoked_jti();
