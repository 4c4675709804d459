//! Postgres backend: for production and for more than one guildgate process.
//!
//! The SQL is the same text as in `sqlite.rs` (`$N` parameters, `ON CONFLICT`, `RETURNING`), so
//! the two files differ only where the engines do: how the pool connects, and how a writing
//! transaction starts. Keep the two in step. Under READ COMMITTED a conditional `UPDATE` takes
//! the row lock and re-checks its `WHERE` after a concurrent winner commits, which is what makes
//! the single-use gates below exclusive.

use super::{
    AccessCheck, AuthCodeRecord, CodeRedemption, EndedSession, GrantRecord, NewRefreshToken,
    Rotation, SessionRecord, Store, StoreError, UpstreamLogin, UserRecord, from_unix, to_unix,
};
use crate::domain::TokenHash;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, FromRow, Row};
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// How long start-up (and any request) waits for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Store`] on a Postgres database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url`, failing within about five seconds with the driver's reason.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        // The pool retries a refused connection until its deadline and then reports only
        // "pool timed out"; one direct attempt first surfaces the real reason (refused, bad
        // password, no such database) as one clear start-up line.
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(probe)) => probe.close().await?,
            Ok(Err(error)) => return Err(StoreError::Backend(error)),
            Err(_elapsed) => {
                return Err(StoreError::Backend(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer from the database within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                ))));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// A writing transaction (row locks do the serialising on Postgres).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

super::lifecycle::impl_store! { PgStore;
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // See `SqliteStore::migrate` for why the macro is reached through `sqlx_macros`.
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        sqlx::query(UPSERT_USER)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.global_name)
            .bind(&user.avatar)
            .bind(&user.email)
            .bind(user.email_verified)
            .bind(&user.locale)
            .bind(to_unix(user.updated_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRecord>(GET_USER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<(), StoreError> {
        sqlx::query(INSERT_UPSTREAM_LOGIN)
            .bind(login.state_hash.as_str())
            .bind(login.binding_hash.as_str())
            .bind(&login.pkce_verifier)
            .bind(&login.request)
            .bind(to_unix(login.created_at))
            .bind(to_unix(login.expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_upstream_login(
        &self,
        state_hash: &TokenHash,
        binding_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<UpstreamLogin>, StoreError> {
        let row = sqlx::query_as::<_, UpstreamLogin>(TAKE_UPSTREAM_LOGIN)
            .bind(state_hash.as_str())
            .bind(binding_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_SESSION)
            .bind(&session.id)
            .bind(session.secret_hash.as_str())
            .bind(&session.user_id)
            .bind(to_unix(session.auth_time))
            .bind(to_unix(session.created_at))
            .bind(to_unix(session.expires_at))
            .bind(to_unix(session.last_seen_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_session(
        &self,
        secret_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query_as::<_, SessionRecord>(FIND_SESSION)
            .bind(secret_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn touch_session(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(TOUCH_SESSION)
            .bind(id)
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_session_client(
        &self,
        session_id: &str,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(ADD_SESSION_CLIENT)
            .bind(session_id)
            .bind(client_id)
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_session(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<EndedSession>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query_as::<_, SessionRecord>(END_SESSION)
            .bind(id)
            .bind(to_unix(now))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(session) = ended else {
            return Ok(None); // dropping `tx` rolls back
        };
        sqlx::query(REVOKE_SESSION_GRANTS)
            .bind(id)
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await?;
        let mut clients = sqlx::query_scalar::<_, String>(SESSION_CLIENTS)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        // Sorted here, not by ORDER BY, so both backends agree whatever the collation.
        clients.sort();
        tx.commit().await?;
        Ok(Some(EndedSession { session, clients }))
    }

    async fn list_sessions(
        &self,
        user_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = match user_id {
            Some(user) => {
                sqlx::query_as::<_, SessionRecord>(LIST_USER_SESSIONS)
                    .bind(user)
                    .bind(to_unix(now))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as::<_, SessionRecord>(LIST_SESSIONS)
                    .bind(to_unix(now))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_AUTH_CODE)
            .bind(code.code_hash.as_str())
            .bind(&code.client_id)
            .bind(&code.redirect_uri)
            .bind(&code.user_id)
            .bind(&code.session_id)
            .bind(&code.grant_id)
            .bind(&code.scopes)
            .bind(&code.nonce)
            .bind(&code.code_challenge)
            .bind(to_unix(code.auth_time))
            .bind(to_unix(code.created_at))
            .bind(to_unix(code.expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn consume_auth_code(
        &self,
        code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        // The gate: a single conditional UPDATE, so of concurrent callers exactly one sees the row.
        let spent = sqlx::query_as::<_, AuthCodeRecord>(SPEND_AUTH_CODE)
            .bind(code_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(&self.pool)
            .await?;
        if let Some(code) = spent {
            return Ok(CodeRedemption::Redeemed(Box::new(code)));
        }
        // RFC 6749 §4.1.2: a replayed code SHOULD revoke what it issued. One autocommitted
        // statement, so the revocation persists although the caller then fails the request.
        let revoked = sqlx::query_scalar::<_, String>(REVOKE_REPLAYED_CODE_GRANT)
            .bind(code_hash.as_str())
            .bind(to_unix(now))
            .bind(REPLAY_TOMBSTONE_SECS)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match revoked {
            Some(grant_id) => CodeRedemption::Replayed { grant_id },
            None => CodeRedemption::Unknown,
        })
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(INSERT_GRANT)
            .bind(&grant.id)
            .bind(&grant.client_id)
            .bind(&grant.user_id)
            .bind(&grant.session_id)
            .bind(&grant.scopes)
            .bind(to_unix(grant.auth_time))
            .bind(to_unix(grant.created_at))
            .bind(to_unix(grant.expires_at))
            .bind(grant.revoked_at.map(to_unix))
            .execute(&mut *tx)
            .await?;
        if let Some(token) = refresh {
            insert_refresh_token(&mut tx, &grant.id, token, grant.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query_as::<_, GrantRecord>(GET_GRANT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &TokenHash,
        client_id: &str,
        new: &NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The gate: spends the token only if it is live, this client's, and its grant is live.
        let spent = sqlx::query_scalar::<_, String>(SPEND_REFRESH_TOKEN)
            .bind(old_hash.as_str())
            .bind(client_id)
            .bind(to_unix(now))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(grant_id) = spent {
            insert_refresh_token(&mut tx, &grant_id, new, now).await?;
            let grant = sqlx::query_as::<_, GrantRecord>(GET_GRANT)
                .bind(&grant_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated(grant));
        }
        let presented = sqlx::query_as::<_, (String, String, Option<i64>)>(PRESENTED_REFRESH_TOKEN)
            .bind(old_hash.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        match presented {
            // RFC 9700 §4.14.2: a rotated token presented again means one copy was stolen, so
            // the family dies. Committed here; the caller still answers `invalid_grant`.
            Some((grant_id, owner, Some(_used_at))) if owner == client_id => {
                sqlx::query(REVOKE_GRANT)
                    .bind(&grant_id)
                    .bind(to_unix(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Rotation::Reused { grant_id })
            }
            // Unknown, another client's (which must not let it kill the family), or expired.
            _ => Ok(Rotation::Invalid),
        }
    }

    async fn find_refresh_grant(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query_as::<_, GrantRecord>(FIND_REFRESH_GRANT)
            .bind(token_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_LIVE_GRANT)
            .bind(grant_id)
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(REVOKE_ACCESS_TOKEN)
            .bind(jti)
            .bind(to_unix(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn check_access(
        &self,
        grant_id: &str,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<AccessCheck, StoreError> {
        let user = sqlx::query_scalar::<_, String>(CHECK_ACCESS)
            .bind(grant_id)
            .bind(jti)
            .bind(to_unix(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match user {
            Some(user_id) => AccessCheck::Active { user_id },
            None => AccessCheck::Inactive,
        })
    }

    async fn gc(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for statement in GC {
            let done = sqlx::query(*statement)
                .bind(to_unix(now))
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }
}

async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    grant_id: &str,
    token: &NewRefreshToken,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_REFRESH_TOKEN)
        .bind(token.token_hash.as_str())
        .bind(grant_id)
        .bind(to_unix(now))
        .bind(to_unix(token.expires_at))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Keep a replayed code's revoked grant row this long past the code's expiry: long enough that
/// an in-flight redemption's `insert_grant` for the same id still meets it and fails.
const REPLAY_TOMBSTONE_SECS: i64 = 3600;

// ---- Rows: every time column is Unix seconds, every hash its stored text.

impl FromRow<'_, PgRow> for UserRecord {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            global_name: r.try_get("global_name")?,
            avatar: r.try_get("avatar")?,
            email: r.try_get("email")?,
            email_verified: r.try_get("email_verified")?,
            locale: r.try_get("locale")?,
            updated_at: from_unix(r.try_get("updated_at")?),
        })
    }
}

impl FromRow<'_, PgRow> for UpstreamLogin {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            state_hash: TokenHash::from_stored(r.try_get("state_hash")?),
            binding_hash: TokenHash::from_stored(r.try_get("binding_hash")?),
            pkce_verifier: r.try_get("pkce_verifier")?,
            request: r.try_get("request")?,
            created_at: from_unix(r.try_get("created_at")?),
            expires_at: from_unix(r.try_get("expires_at")?),
        })
    }
}

impl FromRow<'_, PgRow> for SessionRecord {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            secret_hash: TokenHash::from_stored(r.try_get("secret_hash")?),
            user_id: r.try_get("user_id")?,
            auth_time: from_unix(r.try_get("auth_time")?),
            created_at: from_unix(r.try_get("created_at")?),
            expires_at: from_unix(r.try_get("expires_at")?),
            last_seen_at: from_unix(r.try_get("last_seen_at")?),
        })
    }
}

impl FromRow<'_, PgRow> for AuthCodeRecord {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            code_hash: TokenHash::from_stored(r.try_get("code_hash")?),
            client_id: r.try_get("client_id")?,
            redirect_uri: r.try_get("redirect_uri")?,
            user_id: r.try_get("user_id")?,
            session_id: r.try_get("session_id")?,
            grant_id: r.try_get("grant_id")?,
            scopes: r.try_get("scopes")?,
            nonce: r.try_get("nonce")?,
            code_challenge: r.try_get("code_challenge")?,
            auth_time: from_unix(r.try_get("auth_time")?),
            created_at: from_unix(r.try_get("created_at")?),
            expires_at: from_unix(r.try_get("expires_at")?),
        })
    }
}

impl FromRow<'_, PgRow> for GrantRecord {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            session_id: r.try_get("session_id")?,
            scopes: r.try_get("scopes")?,
            auth_time: from_unix(r.try_get("auth_time")?),
            created_at: from_unix(r.try_get("created_at")?),
            expires_at: from_unix(r.try_get("expires_at")?),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_unix),
        })
    }
}

// ---- SQL: identical text in sqlite.rs. "Live" always means: not revoked/ended and
// `expires_at > now`; a grant issued under a session is live only while that session is.

const UPSERT_USER: &str = "INSERT INTO users (id, username, global_name, avatar, email, \
    email_verified, locale, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
    ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
    global_name = excluded.global_name, avatar = excluded.avatar, email = excluded.email, \
    email_verified = excluded.email_verified, locale = excluded.locale, \
    updated_at = excluded.updated_at";
const GET_USER: &str = "SELECT id, username, global_name, avatar, email, email_verified, locale, \
    updated_at FROM users WHERE id = $1";

const INSERT_UPSTREAM_LOGIN: &str = "INSERT INTO upstream_logins (state_hash, binding_hash, \
    pkce_verifier, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
const TAKE_UPSTREAM_LOGIN: &str = "DELETE FROM upstream_logins \
    WHERE state_hash = $1 AND binding_hash = $2 AND expires_at > $3 \
    RETURNING state_hash, binding_hash, pkce_verifier, request, created_at, expires_at";

const INSERT_SESSION: &str = "INSERT INTO sessions (id, secret_hash, user_id, auth_time, \
    created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const FIND_SESSION: &str = "SELECT id, secret_hash, user_id, auth_time, created_at, expires_at, \
    last_seen_at FROM sessions WHERE secret_hash = $1 AND ended_at IS NULL AND expires_at > $2";
const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL";
const ADD_SESSION_CLIENT: &str = "INSERT INTO session_clients (session_id, client_id, \
    first_seen_at) VALUES ($1, $2, $3) ON CONFLICT (session_id, client_id) DO NOTHING";
const END_SESSION: &str = "UPDATE sessions SET ended_at = $2 \
    WHERE id = $1 AND ended_at IS NULL AND expires_at > $2 \
    RETURNING id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at";
const REVOKE_SESSION_GRANTS: &str =
    "UPDATE grants SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL";
const SESSION_CLIENTS: &str = "SELECT client_id FROM session_clients WHERE session_id = $1";
const LIST_USER_SESSIONS: &str = "SELECT id, secret_hash, user_id, auth_time, created_at, \
    expires_at, last_seen_at FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
    AND expires_at > $2 ORDER BY created_at DESC, id DESC";
const LIST_SESSIONS: &str = "SELECT id, secret_hash, user_id, auth_time, created_at, expires_at, \
    last_seen_at FROM sessions WHERE ended_at IS NULL AND expires_at > $1 \
    ORDER BY created_at DESC, id DESC";

const INSERT_AUTH_CODE: &str = "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, \
    user_id, session_id, grant_id, scopes, nonce, code_challenge, auth_time, created_at, \
    expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const SPEND_AUTH_CODE: &str = "UPDATE auth_codes SET used_at = $2 \
    WHERE code_hash = $1 AND used_at IS NULL \
    RETURNING code_hash, client_id, redirect_uri, user_id, session_id, grant_id, scopes, nonce, \
    code_challenge, auth_time, created_at, expires_at";
/// Revokes the spent code's grant, or, when the first redeemer has not written it yet, writes it
/// already revoked so that redeemer's `insert_grant` fails with `Conflict`: a replay racing the
/// legitimate redemption can never leave a live grant behind.
const REVOKE_REPLAYED_CODE_GRANT: &str = "INSERT INTO grants (id, client_id, user_id, \
    session_id, scopes, auth_time, created_at, expires_at, revoked_at) \
    SELECT grant_id, client_id, user_id, session_id, scopes, auth_time, $2, expires_at + $3, $2 \
    FROM auth_codes WHERE code_hash = $1 AND used_at IS NOT NULL \
    ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(grants.revoked_at, excluded.revoked_at) \
    RETURNING id";

const INSERT_GRANT: &str = "INSERT INTO grants (id, client_id, user_id, session_id, scopes, \
    auth_time, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const GET_GRANT: &str = "SELECT id, client_id, user_id, session_id, scopes, auth_time, \
    created_at, expires_at, revoked_at FROM grants WHERE id = $1";
const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens (token_hash, grant_id, \
    created_at, expires_at) VALUES ($1, $2, $3, $4)";
const SPEND_REFRESH_TOKEN: &str = "UPDATE refresh_tokens SET used_at = $3 \
    WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $3 \
    AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id \
        AND g.client_id = $2 AND g.revoked_at IS NULL AND g.expires_at > $3 \
        AND (g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s \
            WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $3))) \
    RETURNING grant_id";
const PRESENTED_REFRESH_TOKEN: &str = "SELECT rt.grant_id, g.client_id, rt.used_at \
    FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id WHERE rt.token_hash = $1";
const FIND_REFRESH_GRANT: &str = "SELECT g.id, g.client_id, g.user_id, g.session_id, g.scopes, \
    g.auth_time, g.created_at, g.expires_at, g.revoked_at \
    FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id \
    WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > $2 \
    AND g.revoked_at IS NULL AND g.expires_at > $2 \
    AND (g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s \
        WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $2))";
const REVOKE_GRANT: &str = "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const REVOKE_LIVE_GRANT: &str = "UPDATE grants SET revoked_at = $2 \
    WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2";
const REVOKE_ACCESS_TOKEN: &str = "INSERT INTO revoked_access_tokens (jti, expires_at) \
    VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
/// Primary-key lookups only: the grant, its session, the `jti`.
const CHECK_ACCESS: &str = "SELECT g.user_id FROM grants g \
    WHERE g.id = $1 AND g.revoked_at IS NULL AND g.expires_at > $3 \
    AND (g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s \
        WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $3)) \
    AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = $2)";

/// Each bounded by `LIMIT $2` through the `expires_at` index. Rotated refresh tokens, session
/// clients and codes go with their grant or session (`ON DELETE CASCADE`); a revoked grant stays
/// until it expires so that its reused refresh tokens are still recognised.
const GC: &[&str] = &[
    "DELETE FROM auth_codes WHERE code_hash IN \
        (SELECT code_hash FROM auth_codes WHERE expires_at <= $1 LIMIT $2)",
    "DELETE FROM upstream_logins WHERE state_hash IN \
        (SELECT state_hash FROM upstream_logins WHERE expires_at <= $1 LIMIT $2)",
    "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at <= $1 LIMIT $2)",
    "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2)",
    "DELETE FROM revoked_access_tokens WHERE jti IN \
        (SELECT jti FROM revoked_access_tokens WHERE expires_at <= $1 LIMIT $2)",
];
