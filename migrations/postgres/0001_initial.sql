-- The whole data model (DESIGN.md "Data model"). Times are Unix seconds; secrets and tokens
-- are stored only as base64url(SHA-256). Kept column-for-column identical to
-- migrations/sqlite/0001_initial.sql apart from type names.

-- People, keyed by Discord snowflake: identity is the id, never the email (so no email index).
CREATE TABLE users (
    id                       TEXT    PRIMARY KEY,
    username                 TEXT    NOT NULL,
    global_name              TEXT,
    avatar                   TEXT,
    email                    TEXT,
    email_verified           BOOLEAN NOT NULL DEFAULT FALSE,
    locale                   TEXT,
    created_at               BIGINT  NOT NULL,
    updated_at               BIGINT  NOT NULL,
    -- JSON snapshot of guilds and roles, re-fetched after discord.membership_ttl.
    membership               TEXT,
    membership_fetched_at    BIGINT,
    -- Discord's access/refresh tokens, encrypted with secrets.encryption_key.
    discord_tokens           BYTEA,
    discord_token_expires_at BIGINT
);

-- Logins sent to Discord and not yet back; consumed by one DELETE ... RETURNING.
CREATE TABLE upstream_logins (
    state_hash    TEXT    PRIMARY KEY,
    binding_hash  TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    request       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX upstream_logins_expires_at ON upstream_logins (expires_at);

-- SSO sessions: the cookie holds the secret, the public id is the `sid` claim.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    secret_hash  TEXT    NOT NULL UNIQUE,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX sessions_user_id_created_at ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Which clients took part in a session, for back-channel logout.
CREATE TABLE session_clients (
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id     TEXT    NOT NULL,
    first_seen_at BIGINT  NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

-- Authorization codes. grant_id names the grant that redeeming creates, so it has no foreign key:
-- the grant row does not exist until redemption (or a replay writes it revoked).
CREATE TABLE auth_codes (
    code_hash      TEXT    PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    grant_id       TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);
CREATE INDEX auth_codes_session_id ON auth_codes (session_id);

-- Grants: one token family per client and person (RFC 9700 §4.14). A grant issued under a
-- session dies with it: ending revokes it, deleting the session deletes it.
CREATE TABLE grants (
    id         TEXT    PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT    REFERENCES sessions (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL,
    auth_time  BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_session_id ON grants (session_id);
CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_expires_at ON grants (expires_at);

-- Refresh tokens; rotated ones stay (used_at set) until their grant goes, for reuse detection.
CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);

-- Access tokens revoked one by one (RFC 7009), kept until they would have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- Remembered consent (client consent = "once").
CREATE TABLE consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    granted_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Back-channel logout tokens waiting to be delivered (retried with backoff). No foreign keys:
-- a delivery must outlive the session and grants it reports the end of.
CREATE TABLE logout_deliveries (
    id              TEXT    PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    session_id      TEXT,
    user_id         TEXT    NOT NULL,
    uri             TEXT    NOT NULL,
    logout_token    TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX logout_deliveries_next_attempt_at ON logout_deliveries (next_attempt_at);
