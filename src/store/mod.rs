//! Persistent state behind one trait: every security transition is a single atomic operation here.
//!
//! The backend is picked at run time from `database.url` (`sqlite:` or `postgres:`), so the web
//! app and every flow compile once. Times cross this boundary as `OffsetDateTime` and are stored
//! as Unix seconds (`BIGINT`/`INTEGER`) in both backends, which keeps comparisons identical.

mod args;
pub mod backup;
mod change_feed;
mod checkpoint;
mod columns;
mod connect;
mod direct;
mod emit;
mod errors;
mod gate;
mod held;
mod holder_cache;
mod lifecycle;
mod pending;
mod pending_records;
mod postgres;
mod records;
mod rows;
mod shared;
mod sql;
mod sqlite;

pub use change_feed::{Followed, POLL_EVERY as CHANGE_FEED_POLL};
pub use connect::{connect, connect_waiting, redact_url, sqlite_file_missing};
pub use errors::{ConnectError, ConnectFailure, StoreError, Unreadable};
pub use pending_records::{DeviceAuthorization, DeviceStatus, PushedRequest};
pub use postgres::{PgStore, connect_one as connect_one_postgres};
pub use records::*;
pub use sqlite::SqliteStore;

use crate::domain::{ClientId, DiscordId, GrantId, Scopes, SessionId, TokenHash};
use async_trait::async_trait;
use time::OffsetDateTime;

/// The store: intent-named operations, each atomic.
#[async_trait]
pub trait Store: Send + Sync {
    /// Answers when the database does (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// What [`migrate`](Self::migrate) would do, without changing anything (`migrate --dry-run`).
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError>;

    /// Inserts or updates the person by Discord id.
    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// A completed sign-in's writes at once, with the authorization code for the app it was
    /// for when the app gets one straight away (and that client's place in the session, as
    /// [`Store::insert_auth_code`] records it): one round trip for the whole callback.
    async fn save_sign_in(
        &self,
        sign_in: &NewSignIn<'_>,
        code: Option<&AuthCodeRecord>,
    ) -> Result<(), StoreError>;
    /// Reads a person by Discord id.
    async fn get_user(&self, id: &DiscordId) -> Result<Option<UserRecord>, StoreError>;

    /// Stores a pending Discord login, first deleting the browser's previous one (`replaces`),
    /// unless its source already has `max_per_source` unexpired ones: then nothing is written
    /// and the answer is `false`. The count and the insert are one statement.
    async fn insert_upstream_login(
        &self,
        login: &UpstreamLogin,
        cap: &PendingLoginCap<'_>,
    ) -> Result<bool, StoreError>;
    /// Deletes and returns the pending login whose state *and* browser binding match and which
    /// has not expired; a second call with the same state returns `None`.
    async fn take_upstream_login(
        &self,
        state_hash: &TokenHash,
        binding_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<UpstreamLogin>, StoreError>;

    /// Opens a session.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The live session (not ended, not past `expires_at`) whose secret hashes to this.
    async fn find_session(
        &self,
        secret_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Records use of a session (idle timeout).
    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Records that a client took part in a session (idempotent).
    async fn add_session_client(
        &self,
        session_id: &SessionId,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Ends a live session and revokes every grant issued under it, in one transaction.
    /// `None` when there was no live session with that id.
    async fn end_session(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<EndedSession>, StoreError>;
    /// Live sessions, newest first, optionally only one person's.
    async fn list_sessions(
        &self,
        user_id: Option<&DiscordId>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Stores an issued authorization code and records its client as taking part in the code's
    /// session (what [`add_session_client`](Self::add_session_client) does), at once.
    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError>;
    /// The single-use gate: spends the code atomically. A replay revokes the code's grant.
    async fn consume_auth_code(
        &self,
        code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError>;

    /// A code's redemption in one trip, for the common case: spends `code_hash` and writes its
    /// grant with the first refresh token only if the code is live and `exchange` passes every
    /// check a redemption makes; returns the code with its person. `None`: something did not
    /// hold and nothing was spent; [`consume_auth_code`](Self::consume_auth_code) then tells what.
    async fn redeem_auth_code(
        &self,
        code_hash: &TokenHash,
        exchange: &CodeExchange<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<SpentCode>, StoreError>;
    /// Creates a grant, with its first refresh token when one is issued.
    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<(), StoreError>;
    /// Reads a grant by id.
    async fn get_grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError>;
    /// Rotates a refresh token for `client_id`; of concurrent calls with one token exactly one
    /// gets `Rotated`. A presented token that was already rotated revokes its grant.
    async fn rotate_refresh_token(
        &self,
        old_hash: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError>;
    /// A refresh in one trip, for the common case: spends `old_hash` for `client_id` and stores
    /// `new` (its expiry capped at the grant's end) only if the token, its grant and the
    /// grant's session are live, the grant is bound to no DPoP key or to `proof`, and (when
    /// `fresh_since` is given) the person's membership snapshot was taken after it; returns the
    /// grant with its person and snapshot. `None`: something did not hold and nothing was
    /// spent; [`rotate_refresh_token`](Self::rotate_refresh_token) then tells what.
    #[allow(clippy::too_many_arguments)]
    async fn rotate_refresh_token_fresh(
        &self,
        old_hash: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        proof: Option<&crate::domain::Jkt>,
        fresh_since: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Option<FreshRotation>, StoreError>;
    /// The grant a live (unrotated, unexpired) refresh token belongs to, if that grant is live.
    async fn find_refresh_grant(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<GrantRecord>, StoreError>;
    /// [`find_refresh_grant`](Self::find_refresh_grant) and the grant's person, in one read.
    async fn find_refresh_holder(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<RefreshHolder>, StoreError>;
    /// Revokes a grant and so every token in it. Returns whether it was live before.
    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Revokes one access token by `jti` until it would have expired anyway.
    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// One indexed query: may an access token of this grant and `jti` still be honoured?
    async fn check_access(
        &self,
        grant_id: &GrantId,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<AccessCheck, StoreError>;
    /// Like [`check_access`](Self::check_access), answering with the person and their
    /// membership snapshot in the same statement (the hot path of `/userinfo`).
    async fn find_token_holder(
        &self,
        grant_id: &GrantId,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TokenHolder>, StoreError>;

    /// Ends every live session of a person and revokes every grant of theirs (with or without a
    /// session), in one transaction; returns the ended sessions with their clients.
    async fn end_user_sessions(
        &self,
        user_id: &DiscordId,
        now: OffsetDateTime,
    ) -> Result<Vec<EndedSession>, StoreError>;
    /// Live grants of a person: not revoked, not expired, and their session (if any) not ended.
    async fn list_user_grants(
        &self,
        user_id: &DiscordId,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantRecord>, StoreError>;
    /// The Discord ids of everyone holding a live grant (offline ones included), once each.
    async fn people_with_live_grants(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<DiscordId>, StoreError>;

    /// The scopes a person has consented to for a client, if any.
    async fn get_consent(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
    ) -> Result<Option<Scopes>, StoreError>;
    /// Records (or replaces) a consent.
    async fn save_consent(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
        scopes: Scopes,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Forgets a consent; whether there was one.
    async fn revoke_consent(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
    ) -> Result<bool, StoreError>;
    /// Every consent a person has given, by client id.
    async fn list_consents(&self, user_id: &DiscordId) -> Result<Vec<ConsentRecord>, StoreError>;
    /// When each client last signed the person in (grants not yet collected), by client id.
    async fn last_sign_ins(&self, user_id: &DiscordId) -> Result<Vec<ClientSignIn>, StoreError>;
    /// Revokes every grant of a person for one client (with a session or without); returns
    /// the revoked grant ids, sorted. The person's sessions stay open for other apps.
    async fn revoke_client_grants(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantId>, StoreError>;

    /// Queues back-channel logout deliveries (one transaction).
    async fn enqueue_logout_deliveries(
        &self,
        deliveries: &[LogoutDelivery],
    ) -> Result<(), StoreError>;
    /// Claims up to `limit` due deliveries for this process: atomically moves their
    /// `next_attempt_at` to `now + lease` so no other process sends them meanwhile.
    async fn claim_logout_deliveries(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<LogoutDelivery>, StoreError>;
    /// Removes a delivered (or abandoned) delivery.
    async fn finish_logout_delivery(&self, id: &str) -> Result<(), StoreError>;
    /// How many back-channel logouts are queued (due or not): the queue depth.
    async fn logout_queue_depth(&self) -> Result<u64, StoreError>;
    /// How many sessions are live (not ended, not past `expires_at`).
    async fn count_live_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// This process's database connections: open and idle (no query).
    fn pool_usage(&self) -> PoolUsage;
    /// Records a failed attempt and when to try again.
    async fn retry_logout_delivery(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The person's last membership snapshot.
    async fn get_membership(
        &self,
        user_id: &DiscordId,
    ) -> Result<Option<MembershipSnapshot>, StoreError>;
    /// Replaces the person's membership snapshot.
    async fn save_membership(
        &self,
        user_id: &DiscordId,
        snapshot: &MembershipSnapshot,
    ) -> Result<(), StoreError>;
    /// The person's encrypted Discord tokens.
    async fn get_upstream_tokens(
        &self,
        user_id: &DiscordId,
    ) -> Result<Option<StoredUpstreamTokens>, StoreError>;
    /// Replaces (or with `None` clears) the person's encrypted Discord tokens.
    async fn save_upstream_tokens(
        &self,
        user_id: &DiscordId,
        tokens: Option<&StoredUpstreamTokens>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` people with kept Discord tokens, by id, after `after` (`None`: from the
    /// first): their ids and sealed tokens (`guildgate reencrypt` walks them page by page).
    async fn list_kept_tokens(
        &self,
        after: Option<&DiscordId>,
        limit: u32,
    ) -> Result<Vec<(DiscordId, Vec<u8>)>, StoreError>;
    /// Replaces the person's sealed tokens with `new` if they are still `old`; whether they
    /// were (a re-check that stored fresh tokens meanwhile wins).
    async fn replace_kept_tokens(
        &self,
        user_id: &DiscordId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;
    /// Takes the person's membership re-check lease for `holder` until `until`, unless another
    /// holder's lease is still running at `now`; whether `holder` now holds it. One process at
    /// a time spends the person's Discord refresh token (Discord rotates it on every use).
    async fn claim_recheck(
        &self,
        user_id: &DiscordId,
        holder: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Gives the lease back, if `holder` still holds it.
    async fn release_recheck(&self, user_id: &DiscordId, holder: &str) -> Result<(), StoreError>;

    /// Stores a new device authorization; `Conflict` when its user code is in use (draw
    /// another code and try again).
    async fn insert_device_authorization(
        &self,
        authorization: &DeviceAuthorization,
    ) -> Result<(), StoreError>;
    /// A device polls (RFC 8628 §3.4): the authorization as it stands, with `slow_down` set
    /// when this poll came before the previous one allowed, in which case the interval grows by
    /// five seconds (§3.5). `None` for an unknown, spent, or another client's device code.
    async fn poll_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// Spends an approved, unexpired device code: of concurrent polls exactly one gets it.
    async fn spend_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// A person typed this user code: counts the entry and returns the authorization, if it
    /// is pending and unexpired.
    async fn enter_user_code(
        &self,
        user_code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// The unexpired authorization of this device code, whatever its status.
    async fn find_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// Approves (with the person and the scopes granted) or denies a pending, unexpired
    /// authorization; whether it was still pending.
    async fn decide_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        status: &DeviceStatus,
        scopes: Scopes,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Stores a pushed authorization request.
    async fn insert_pushed_request(&self, request: &PushedRequest) -> Result<(), StoreError>;
    /// Deletes and returns client `client_id`'s unexpired pushed request with this
    /// `request_uri`; a second call returns `None`.
    async fn take_pushed_request(
        &self,
        request_uri_hash: &TokenHash,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<PushedRequest>, StoreError>;
    /// Records a one-time JWT id (`key` names the kind, the signer and the `jti`) until
    /// `expires_at`; `false` when it was already recorded: a replay.
    async fn spend_jti(
        &self,
        key: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Whether an access token was revoked by its `jti` (service tokens, which have no grant).
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;

    /// Reads the change feed once: drops what this process cached about grants, sessions,
    /// people and `jti`s changed by any process (or admin command), and keeps the cache
    /// answering for a while; what it found.
    async fn follow_changes(&self) -> Result<Followed, StoreError>;
    /// Tells every process following the change feed that the shared keys folder changed, so
    /// each re-reads it within the feed's bound.
    async fn announce_keys_changed(&self) -> Result<(), StoreError>;
    /// One round of SQLite's WAL checkpoint, off the request path (`checkpoint.rs`); how soon
    /// the next round is due, or `None` for a backend without one (Postgres).
    async fn checkpoint(&self) -> Result<Option<std::time::Duration>, StoreError>;

    /// Deletes expired codes, pending logins, sessions, grants and revoked-`jti` entries, and
    /// back-channel logout deliveries abandoned for three days, at most `batch` rows of each
    /// kind; returns how many rows went.
    async fn gc(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError>;
}

/// The migrations of a database compared with this release's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied, oldest first.
    pub applied: Vec<i64>,
    /// This release's migrations not applied yet: version and description, in order.
    pub pending: Vec<(i64, String)>,
    /// Versions applied that this release does not know (a newer release migrated it).
    pub unknown: Vec<i64>,
}

/// The migrations of the backend `url` names (version and description), for a database that
/// does not exist yet.
pub fn known_migrations(url: &str) -> Result<Vec<(i64, String)>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(SqliteStore::known_migrations())
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(PgStore::known_migrations())
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Version and description of each forward migration of `migrator`.
fn migration_list(migrator: &sqlx::migrate::Migrator) -> Vec<(i64, String)> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.description.to_string()))
        .collect()
}

/// A snapshot of this process's connection pool(s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open.
    pub size: u64,
    /// Of those, idle.
    pub idle: u64,
}

impl PoolUsage {
    fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Self {
        Self {
            size: u64::from(pool.size()),
            idle: u64::try_from(pool.num_idle()).unwrap_or(u64::MAX),
        }
    }
}

/// Two pools' connections counted together.
impl std::ops::Add for PoolUsage {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            size: self.size + other.size,
            idle: self.idle + other.idle,
        }
    }
}

/// Seconds since the Unix epoch, the stored form of every time.
pub(crate) fn to_unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// The inverse of [`to_unix`]; out-of-range values (never written by us) clamp to the epoch.
pub(crate) fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
