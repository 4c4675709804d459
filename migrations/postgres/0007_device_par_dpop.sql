-- Issue 25: sign-in on devices (RFC 8628), pushed authorization requests (RFC 9126), the JWT ids
-- a client assertion (RFC 7523) or a DPoP proof (RFC 9449) may use once, and refresh tokens bound
-- to a DPoP key. Additive only.

-- Device authorizations: the device holds the device code, the person types the user code on
-- /device. Both are stored as base64url(SHA-256). `status` is pending | approved | denied; an
-- approval records the person and the scopes granted. `entries` counts how often the user code
-- was entered; `next_poll_at` and `interval_secs` pace the device's polling (slow_down).
CREATE TABLE device_authorizations (
    device_code_hash  TEXT    PRIMARY KEY,
    user_code_hash    TEXT    NOT NULL UNIQUE,
    client_id         TEXT    NOT NULL,
    scopes            TEXT    NOT NULL,
    device_user_agent TEXT,
    device_ip         TEXT,
    status            TEXT    NOT NULL,
    user_id           TEXT    REFERENCES users (id) ON DELETE CASCADE,
    auth_time         BIGINT,
    entries           BIGINT  NOT NULL DEFAULT 0,
    interval_secs     BIGINT  NOT NULL,
    next_poll_at      BIGINT  NOT NULL,
    slow_down         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    used_at           BIGINT
);
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);

-- Pushed authorization requests: the request_uri's hash, the client that pushed it and the
-- validated request (JSON); taken once by /authorize with one DELETE ... RETURNING.
CREATE TABLE pushed_requests (
    request_uri_hash TEXT    PRIMARY KEY,
    client_id        TEXT    NOT NULL,
    request          TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);

-- One-time JWT ids: base64url(SHA-256) of the kind, the signer and the `jti`, kept until the
-- JWT could no longer be accepted anyway. A second insert of the same key is a replay, in every
-- process of a deployment.
CREATE TABLE used_jtis (
    jti_key    TEXT    PRIMARY KEY,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

-- The RFC 7638 thumbprint of the DPoP key a public client's refresh tokens are bound to.
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
-- The DPoP key an authorization request named (`dpop_jkt`, RFC 9449 §10): redeeming its code
-- needs a proof signed with that key.
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;
