//! The SQL both backends run, as one text: it is written for both engines (`$N` parameters,
//! `ON CONFLICT`, `RETURNING`, Unix-second integers). The one statement that must differ per
//! engine, claiming logout deliveries, lives with its backend.
//!
//! "Live" always means: not revoked/ended and `expires_at > now`; a grant issued under a session
//! is live only while that session is.

// ---- People and pending Discord logins.

pub(super) const UPSERT_USER: &str = "INSERT INTO users (id, username, global_name, avatar, \
    email, email_verified, locale, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
    ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
    global_name = excluded.global_name, avatar = excluded.avatar, email = excluded.email, \
    email_verified = excluded.email_verified, locale = excluded.locale, \
    updated_at = excluded.updated_at";
pub(super) const GET_USER: &str = "SELECT id, username, global_name, avatar, email, \
    email_verified, locale, updated_at FROM users WHERE id = $1";

/// Inserts only while the source has fewer than `$8` unexpired pending logins.
pub(super) const INSERT_UPSTREAM_LOGIN: &str = "INSERT INTO upstream_logins (state_hash, \
    binding_hash, pkce_verifier, request, created_at, expires_at, source) \
    SELECT $1, $2, $3, $4, $5, $6, $7 \
    WHERE (SELECT COUNT(*) FROM upstream_logins WHERE source = $7 AND expires_at > $5) < $8";
/// `UPSERT_USER` with the membership snapshot (`$9`, `$10`) and, unless NULL, the sealed Discord
/// tokens (`$11`, `$12`): what a completed sign-in learnt. A macro so each engine's sign-in
/// statement can embed it.
macro_rules! save_sign_in {
    () => {
        "INSERT INTO users (id, username, global_name, avatar, email, email_verified, locale, \
        created_at, updated_at, membership, membership_fetched_at, discord_tokens, \
        discord_token_expires_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12) \
        ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
        global_name = excluded.global_name, avatar = excluded.avatar, email = excluded.email, \
        email_verified = excluded.email_verified, locale = excluded.locale, \
        updated_at = excluded.updated_at, membership = excluded.membership, \
        membership_fetched_at = excluded.membership_fetched_at, \
        discord_tokens = COALESCE(excluded.discord_tokens, users.discord_tokens), \
        discord_token_expires_at = \
            COALESCE(excluded.discord_token_expires_at, users.discord_token_expires_at)"
    };
}
pub(super) use save_sign_in;
/// The new session of a sign-in: [`INSERT_SESSION`]'s columns, as `$13`..`$21`.
macro_rules! insert_signed_in_session {
    () => {
        "INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, \
        last_seen_at, user_agent, ip) VALUES ($13, $14, $15, $16, $17, $18, $19, $20, $21)"
    };
}
pub(super) use insert_signed_in_session;
/// Records a code's client in its session as its code is stored; `$values` names the
/// session's, the client's and the time's placeholders.
macro_rules! code_client_into {
    ($values:literal) => {
        concat!(
            "INSERT INTO session_clients (session_id, client_id, first_seen_at) VALUES ",
            $values,
            " ON CONFLICT (session_id, client_id) DO NOTHING"
        )
    };
}
pub(super) use code_client_into;
/// Records a code's client in its session (`$5`, `$2`, at `$11`) as its code is stored.
macro_rules! add_code_client {
    () => {
        $crate::store::sql::code_client_into!("($5, $2, $11)")
    };
}
pub(super) use add_code_client;
/// [`add_code_client!`] for the code of a sign-in, whose placeholders follow the sign-in's
/// (see [`insert_signed_in_code!`]).
macro_rules! add_signed_in_code_client {
    () => {
        $crate::store::sql::code_client_into!("($26, $23, $32)")
    };
}
pub(super) use add_signed_in_code_client;
pub(super) const FORGET_UPSTREAM_LOGINS: &str =
    "DELETE FROM upstream_logins WHERE binding_hash = $1";
pub(super) const TAKE_UPSTREAM_LOGIN: &str = "DELETE FROM upstream_logins \
    WHERE state_hash = $1 AND binding_hash = $2 AND expires_at > $3 \
    RETURNING state_hash, binding_hash, pkce_verifier, request, created_at, expires_at";

// ---- Sessions.

pub(super) const INSERT_SESSION: &str = "INSERT INTO sessions (id, secret_hash, user_id, \
    auth_time, created_at, expires_at, last_seen_at, user_agent, ip) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(super) const FIND_SESSION: &str = "SELECT id, secret_hash, user_id, auth_time, created_at, \
    expires_at, last_seen_at, user_agent, ip FROM sessions \
    WHERE secret_hash = $1 AND ended_at IS NULL AND expires_at > $2";
pub(super) const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL";
pub(super) const ADD_SESSION_CLIENT: &str = "INSERT INTO session_clients (session_id, client_id, \
    first_seen_at) VALUES ($1, $2, $3) ON CONFLICT (session_id, client_id) DO NOTHING";
pub(super) const END_SESSION: &str = "UPDATE sessions SET ended_at = $2 \
    WHERE id = $1 AND ended_at IS NULL AND expires_at > $2 \
    RETURNING id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at, \
    user_agent, ip";
/// Ends every live session of a person (`$1`), returning them.
pub(super) const END_USER_SESSIONS: &str = "UPDATE sessions SET ended_at = $2 \
    WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
    RETURNING id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at, \
    user_agent, ip";
pub(super) const REVOKE_SESSION_GRANTS: &str =
    "UPDATE grants SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL";
/// Every grant of a person, with a session or without (`offline_access`).
pub(super) const REVOKE_USER_GRANTS: &str =
    "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
/// Unordered: callers sort in Rust, so both engines agree whatever the collation.
pub(super) const SESSION_CLIENTS: &str =
    "SELECT client_id FROM session_clients WHERE session_id = $1";
pub(super) const LIST_USER_SESSIONS: &str = "SELECT id, secret_hash, user_id, auth_time, \
    created_at, expires_at, last_seen_at, user_agent, ip FROM sessions \
    WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC";
pub(super) const LIST_SESSIONS: &str = "SELECT id, secret_hash, user_id, auth_time, created_at, \
    expires_at, last_seen_at, user_agent, ip FROM sessions WHERE ended_at IS NULL AND expires_at > $1 \
    ORDER BY created_at DESC, id DESC";

// ---- Authorization codes.

/// An authorization code's row; `$values` names its 13 placeholders in column order.
macro_rules! auth_code_into {
    ($values:literal) => {
        concat!(
            "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, user_id, session_id, \
            grant_id, scopes, nonce, code_challenge, auth_time, created_at, expires_at, dpop_jkt) \
            VALUES ",
            $values
        )
    };
}
pub(super) use auth_code_into;
/// An authorization code (`$1`..`$13`).
macro_rules! insert_auth_code {
    () => {
        $crate::store::sql::auth_code_into!(
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )
    };
}
pub(super) use insert_auth_code;
/// The code of a sign-in written with it (`Store::save_sign_in`): the same columns as
/// [`insert_auth_code!`], as `$22`..`$34` after the sign-in's `$1`..`$21`.
macro_rules! insert_signed_in_code {
    () => {
        $crate::store::sql::auth_code_into!(
            "($22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)"
        )
    };
}
pub(super) use insert_signed_in_code;
/// Spends a code (`$1` its hash, `$2` now): one conditional UPDATE, so of concurrent callers
/// exactly one changes the row.
macro_rules! spend_auth_code {
    () => {
        "UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL"
    };
}
pub(super) use spend_auth_code;
/// Spends a code (`$1`, at `$2`) only when it is live and its redemption by client `$3` with
/// redirect URI `$4`, the presented verifier's challenge `$5` (NULL: none) and DPoP key `$6`
/// passes every check `flows::code` makes, and it asks for no grant outliving its session where
/// the client may have one (`$7`). Otherwise nothing is spent, and the caller takes the full
/// path, which tells what failed (`LIKE` only has to catch every such code, not only them).
macro_rules! spend_checked_auth_code {
    () => {
        "UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL \
        AND expires_at > $2 AND client_id = $3 AND redirect_uri = $4 \
        AND (code_challenge = $5 OR (code_challenge IS NULL AND $5 IS NULL)) \
        AND (dpop_jkt IS NULL OR dpop_jkt = $6) \
        AND NOT ($7 AND scopes LIKE '%offline_access%')"
    };
}
pub(super) use spend_checked_auth_code;
/// The grant of the code `c` spent by [`spend_checked_auth_code!`], created at `$2`, ending at
/// `$8`, its refresh tokens bound to DPoP key `$9`; the statement goes on with `FROM`.
macro_rules! grant_of_spent_code {
    () => {
        "INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, created_at, \
        expires_at, dpop_jkt) \
        SELECT c.grant_id, c.client_id, c.user_id, c.session_id, c.scopes, c.auth_time, $2, $8, $9"
    };
}
pub(super) use grant_of_spent_code;
/// The spent code's columns and its person's, as `SpentCode` reads them (see each backend's
/// `SPEND_AUTH_CODE`: `c` is the code, `u` the person).
macro_rules! spent_code_columns {
    () => {
        "c.code_hash, c.client_id, c.redirect_uri, c.user_id, c.session_id, c.grant_id, \
        c.scopes, c.nonce, c.code_challenge, c.auth_time, c.created_at, c.expires_at, \
        c.dpop_jkt, u.id, u.username, u.global_name, u.avatar, u.email, u.email_verified, \
        u.locale, u.updated_at"
    };
}
pub(super) use spent_code_columns;
/// Revokes the spent code's grant, or, when the first redeemer has not written it yet, writes it
/// already revoked so that redeemer's `insert_grant` fails with `Conflict`: a replay racing the
/// legitimate redemption can never leave a live grant behind.
pub(super) const REVOKE_REPLAYED_CODE_GRANT: &str = "INSERT INTO grants (id, client_id, user_id, \
    session_id, scopes, auth_time, created_at, expires_at, revoked_at) \
    SELECT grant_id, client_id, user_id, session_id, scopes, auth_time, $2, expires_at + $3, $2 \
    FROM auth_codes WHERE code_hash = $1 AND used_at IS NOT NULL \
    ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(grants.revoked_at, excluded.revoked_at) \
    RETURNING id";
/// Keep a replayed code's revoked grant row this long past the code's expiry: long enough that
/// an in-flight redemption's `insert_grant` for the same id still meets it and fails.
pub(super) const REPLAY_TOMBSTONE_SECS: i64 = 3600;

// ---- Grants, refresh tokens, access tokens.

/// A grant's row (`$1`..`$9`); a macro so each engine's grant statement can embed it.
macro_rules! insert_grant {
    () => {
        "INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, created_at, \
        expires_at, revoked_at, dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $12)"
    };
}
pub(super) use insert_grant;
pub(super) const GET_GRANT: &str = "SELECT id, client_id, user_id, session_id, scopes, \
    auth_time, created_at, expires_at, revoked_at, dpop_jkt FROM grants WHERE id = $1";
/// Everyone holding a live grant (the same liveness as `LIST_USER_GRANTS`): whom live
/// membership re-checks after missing Gateway events.
pub(super) const LIVE_GRANT_HOLDERS: &str = "SELECT DISTINCT g.user_id FROM grants g \
    WHERE g.revoked_at IS NULL AND g.expires_at > $1 \
    AND (g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s \
        WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $1)) \
    ORDER BY g.user_id";
pub(super) const LIST_USER_GRANTS: &str = "SELECT g.id, g.client_id, g.user_id, g.session_id, \
    g.scopes, g.auth_time, g.created_at, g.expires_at, g.revoked_at, g.dpop_jkt FROM grants g \
    WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2 \
    AND (g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s \
        WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $2)) \
    ORDER BY g.created_at, g.id";
/// The gate of every rotation: spends refresh token `$1` only if it is live, client `$2`'s,
/// and its grant is live at `$3`. A macro so each engine's rotation statement can embed it.
///
/// Here and in every check a request makes, the grant's session is read by a scalar subquery
/// on its key (NULL, so not live, when the session is gone), not with `OR EXISTS (…)`:
/// Postgres may answer an `EXISTS` under `OR` with a hashed subplan, and did on a young
/// database without statistics, scanning every live session on each refresh and `/userinfo`.
macro_rules! spend_refresh_token {
    () => {
        "UPDATE refresh_tokens SET used_at = $3 \
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $3 \
        AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id \
            AND g.client_id = $2 AND g.revoked_at IS NULL AND g.expires_at > $3 \
            AND (g.session_id IS NULL OR (SELECT s.ended_at IS NULL AND s.expires_at > $3 \
                FROM sessions s WHERE s.id = g.session_id)))"
    };
}
pub(super) use spend_refresh_token;
/// The gate of a refresh in one trip: [`spend_refresh_token!`]'s conditions, and also that the
/// grant is bound to no DPoP key or to `$6`, and (unless `$7` is negative) that the person's
/// membership snapshot was taken after `$7`. When any fails nothing is spent, and the caller
/// takes the full path (which classifies reuse, re-checks a stale snapshot, and so on).
macro_rules! spend_fresh_refresh_token {
    () => {
        "UPDATE refresh_tokens SET used_at = $3 \
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $3 \
        AND EXISTS (SELECT 1 FROM grants g JOIN users u ON u.id = g.user_id \
            WHERE g.id = refresh_tokens.grant_id \
            AND g.client_id = $2 AND g.revoked_at IS NULL AND g.expires_at > $3 \
            AND (g.session_id IS NULL OR (SELECT s.ended_at IS NULL AND s.expires_at > $3 \
                FROM sessions s WHERE s.id = g.session_id)) \
            AND (g.dpop_jkt IS NULL OR g.dpop_jkt = $6) \
            AND ($7 < 0 OR u.membership_fetched_at > $7))"
    };
}
pub(super) use spend_fresh_refresh_token;
/// What a refresh in one trip returns: the grant `g`, its person `u` (but `id`) and their
/// membership snapshot.
macro_rules! fresh_rotation_columns {
    () => {
        concat!(
            $crate::store::sql::grant_columns!(),
            ", u.username, u.global_name, u.avatar, u.email, u.email_verified, u.locale, \
            u.updated_at, u.membership, u.membership_fetched_at"
        )
    };
}
pub(super) use fresh_rotation_columns;
/// The columns of a grant, as `GrantRecord` decodes them, for `g`.
macro_rules! grant_columns {
    () => {
        "g.id, g.client_id, g.user_id, g.session_id, g.scopes, g.auth_time, g.created_at, \
        g.expires_at, g.revoked_at, g.dpop_jkt"
    };
}
pub(super) use grant_columns;
pub(super) const PRESENTED_REFRESH_TOKEN: &str = "SELECT rt.grant_id, g.client_id, rt.used_at \
    FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id WHERE rt.token_hash = $1";
/// Where refresh token `$1` (`rt`) is live at `$2` and so is its grant `g`.
macro_rules! live_refresh_grant {
    () => {
        "WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > $2 \
        AND g.revoked_at IS NULL AND g.expires_at > $2 \
        AND (g.session_id IS NULL OR (SELECT s.ended_at IS NULL AND s.expires_at > $2 \
            FROM sessions s WHERE s.id = g.session_id))"
    };
}
pub(super) const FIND_REFRESH_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id ",
    live_refresh_grant!()
);
/// [`FIND_REFRESH_GRANT`] with the grant's person (the user's columns but `id`, which is
/// `g.user_id`; NULL when the person is gone): what a refresh reads, in one statement.
pub(super) const FIND_REFRESH_HOLDER: &str = concat!(
    "SELECT ",
    grant_columns!(),
    ", u.username, u.global_name, u.avatar, u.email, u.email_verified, u.locale, u.updated_at \
    FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id \
    LEFT JOIN users u ON u.id = g.user_id ",
    live_refresh_grant!()
);
pub(super) const REVOKE_GRANT: &str =
    "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
pub(super) const REVOKE_LIVE_GRANT: &str = "UPDATE grants SET revoked_at = $2 \
    WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2";
pub(super) const REVOKE_ACCESS_TOKEN: &str = "INSERT INTO revoked_access_tokens (jti, \
    expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
/// A live access token's person and their membership snapshot, with what a cached answer
/// depends on: until when the grant and its session live, and which session (each process
/// keeps the answer in memory, `holder_cache.rs`). Live: the grant unrevoked and unexpired,
/// its session (if any) not ended or expired, the `jti` not revoked; primary-key lookups only.
pub(super) const TOKEN_HOLDER_CACHEABLE: &str = "SELECT u.id, u.username, u.global_name, \
    u.avatar, u.email, u.email_verified, u.locale, u.updated_at, u.membership, \
    u.membership_fetched_at, g.expires_at AS grant_expires_at, g.session_id, \
    s.expires_at AS session_expires_at \
    FROM grants g JOIN users u ON u.id = g.user_id LEFT JOIN sessions s ON s.id = g.session_id \
    WHERE g.id = $1 AND g.revoked_at IS NULL AND g.expires_at > $3 \
    AND (g.session_id IS NULL OR (s.ended_at IS NULL AND s.expires_at > $3)) \
    AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = $2)";

// ---- Consents, membership snapshots, sealed Discord tokens.

pub(super) const GET_CONSENT: &str =
    "SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2";
pub(super) const SAVE_CONSENT: &str = "INSERT INTO consents (user_id, client_id, scopes, \
    granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) \
    DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at";
pub(super) const REVOKE_CONSENT: &str =
    "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";
/// Unordered: callers sort in Rust.
pub(super) const LIST_USER_CONSENTS: &str =
    "SELECT client_id, scopes, granted_at FROM consents WHERE user_id = $1";
/// When each client last signed the person in: a grant is created at every code redemption
/// (refreshes keep their grant), so its `created_at` is a sign-in. Rows are kept until GC.
pub(super) const LAST_SIGN_INS: &str = "SELECT client_id, MAX(created_at) AS last_sign_in \
    FROM grants WHERE user_id = $1 GROUP BY client_id";
/// Every still-unrevoked grant of one person for one client, session or not; returns the ids.
pub(super) const REVOKE_CLIENT_GRANTS: &str = "UPDATE grants SET revoked_at = $3 \
    WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL RETURNING id";
pub(super) const GET_MEMBERSHIP: &str =
    "SELECT membership, membership_fetched_at FROM users WHERE id = $1";
pub(super) const SAVE_MEMBERSHIP: &str =
    "UPDATE users SET membership = $2, membership_fetched_at = $3 WHERE id = $1";
pub(super) const GET_UPSTREAM_TOKENS: &str =
    "SELECT discord_tokens, discord_token_expires_at FROM users WHERE id = $1";
pub(super) const SAVE_UPSTREAM_TOKENS: &str =
    "UPDATE users SET discord_tokens = $2, discord_token_expires_at = $3 WHERE id = $1";
/// The migrations applied (sqlx's own table), oldest first.
pub(super) const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
/// Kept Discord tokens after the person `$1` (by id, `''` for the first page), `$2` at most.
pub(super) const LIST_KEPT_TOKENS: &str = "SELECT id, discord_tokens FROM users \
    WHERE discord_tokens IS NOT NULL AND id > $1 ORDER BY id LIMIT $2";
/// Replaces `$1`'s kept tokens with `$3` only if they are still `$2` (a re-check may have
/// stored new ones meanwhile: those win).
pub(super) const REPLACE_KEPT_TOKENS: &str =
    "UPDATE users SET discord_tokens = $3 WHERE id = $1 AND discord_tokens = $2";
/// Takes the re-check lease unless another holder's lease is still running at `$4`.
pub(super) const CLAIM_RECHECK: &str = "UPDATE users SET recheck_holder = $2, recheck_until = $3 \
    WHERE id = $1 AND (recheck_until IS NULL OR recheck_until <= $4 OR recheck_holder = $2)";
pub(super) const RELEASE_RECHECK: &str = "UPDATE users SET recheck_holder = NULL, \
    recheck_until = NULL WHERE id = $1 AND recheck_holder = $2";

// ---- The back-channel logout queue (claiming is per engine: see the backends).

pub(super) const ENQUEUE_LOGOUT: &str = "INSERT INTO logout_deliveries (id, client_id, \
    session_id, user_id, uri, logout_token, attempts, next_attempt_at, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(super) const FINISH_LOGOUT: &str = "DELETE FROM logout_deliveries WHERE id = $1";
pub(super) const COUNT_LOGOUTS: &str = "SELECT COUNT(*) FROM logout_deliveries";
/// The sessions [`LIST_SESSIONS`] would list, counted (for the metrics scrape).
pub(super) const COUNT_LIVE_SESSIONS: &str =
    "SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND expires_at > $1";
pub(super) const RETRY_LOGOUT: &str =
    "UPDATE logout_deliveries SET attempts = $2, next_attempt_at = $3 WHERE id = $1";

// ---- Clean-up.

/// A queued back-channel logout still undelivered this long after it was queued is abandoned
/// (the deliverer gives up after about a day of backoff; this catches crashed leases too).
pub(super) const LOGOUT_DELIVERY_MAX_AGE_SECS: i64 = 3 * 24 * 3600;

/// Each statement deletes rows whose time column is at or before `$1` (now, less the grace
/// beside it), at most `LIMIT $2` of them, found through that column's index (the small logout
/// queue is scanned). Rotated refresh tokens, session clients and codes go with their grant or
/// session (`ON DELETE CASCADE`); a revoked grant stays until it expires so that its reused
/// refresh tokens are still recognised.
pub(super) const GC: &[(&str, i64)] = &[
    (
        "DELETE FROM auth_codes WHERE code_hash IN \
            (SELECT code_hash FROM auth_codes WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM upstream_logins WHERE state_hash IN \
            (SELECT state_hash FROM upstream_logins WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM sessions WHERE id IN \
            (SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM device_authorizations WHERE device_code_hash IN \
            (SELECT device_code_hash FROM device_authorizations WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM pushed_requests WHERE request_uri_hash IN \
            (SELECT request_uri_hash FROM pushed_requests WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM used_jtis WHERE jti_key IN \
            (SELECT jti_key FROM used_jtis WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM revoked_access_tokens WHERE jti IN \
            (SELECT jti FROM revoked_access_tokens WHERE expires_at <= $1 LIMIT $2)",
        0,
    ),
    (
        "DELETE FROM logout_deliveries WHERE id IN \
            (SELECT id FROM logout_deliveries WHERE created_at <= $1 LIMIT $2)",
        LOGOUT_DELIVERY_MAX_AGE_SECS,
    ),
];
