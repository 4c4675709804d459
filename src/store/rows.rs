//! Row decoding, written once for both engines and both drivers: every time column is Unix
//! seconds, every hash its stored text; the records decode from any row seen through
//! [`Columns`] (`columns.rs`: sqlx's rows, and rusqlite's).
//!
//! This is the store's edge for typed values: ids, scopes and PKCE values are parsed here, once,
//! and a stored text that does not parse is [`StoreError::Unreadable`] naming the table and
//! column, never a panic and never an empty value.

use super::columns::{Columns, FromColumns};
use super::{
    AuthCodeRecord, ClientSignIn, ConsentRecord, GrantRecord, LogoutDelivery, MembershipSnapshot,
    RefreshHolder, SessionDevice, SessionRecord, SpentCode, StoreError, TokenHolder, Unreadable,
    UpstreamLogin, UserRecord,
};
use crate::domain::{
    ClientId, DiscordId, GrantId, Jkt, PkceChallenge, PkceVerifier, Scopes, SessionId,
};
use sqlx::{FromRow, Row};

/// A value kept as text in a column, read back through its parser.
pub(super) trait Stored: Sized {
    /// What the column holds, for [`Unreadable`].
    const EXPECTED: &'static str;
    /// The value, or `None` when the text is not one.
    fn read(raw: &str) -> Option<Self>;
}

impl Stored for DiscordId {
    const EXPECTED: &'static str = "a Discord id";
    fn read(raw: &str) -> Option<Self> {
        Self::parse(raw).ok()
    }
}

impl Stored for ClientId {
    const EXPECTED: &'static str = "a client id";
    fn read(raw: &str) -> Option<Self> {
        Self::parse(raw).ok()
    }
}

impl Stored for GrantId {
    const EXPECTED: &'static str = "a grant id";
    fn read(raw: &str) -> Option<Self> {
        Self::parse(raw).ok()
    }
}

impl Stored for SessionId {
    const EXPECTED: &'static str = "a session id";
    fn read(raw: &str) -> Option<Self> {
        Self::parse(raw).ok()
    }
}

impl Stored for Scopes {
    const EXPECTED: &'static str = "a list of supported scopes";
    fn read(raw: &str) -> Option<Self> {
        Self::from_stored(raw).ok()
    }
}

impl Stored for PkceChallenge {
    const EXPECTED: &'static str = "an S256 code challenge";
    fn read(raw: &str) -> Option<Self> {
        Self::parse_s256(raw).ok()
    }
}

impl Stored for Jkt {
    const EXPECTED: &'static str = "a JWK SHA-256 thumbprint";
    fn read(raw: &str) -> Option<Self> {
        Self::parse(raw).ok()
    }
}

impl Stored for PkceVerifier {
    const EXPECTED: &'static str = "a PKCE code verifier";
    fn read(raw: &str) -> Option<Self> {
        Self::parse(raw).ok()
    }
}

/// Reads a value a statement returned on its own (a scalar, or one field of a tuple).
pub(super) fn stored<T: Stored>(
    raw: &str,
    table: &'static str,
    column: &'static str,
) -> Result<T, StoreError> {
    T::read(raw).ok_or(StoreError::Unreadable(Unreadable {
        table,
        column,
        expected: T::EXPECTED,
    }))
}

/// Reads every value of a one-column answer.
pub(super) fn all_stored<T: Stored>(
    raws: Vec<String>,
    table: &'static str,
    column: &'static str,
) -> Result<Vec<T>, StoreError> {
    raws.iter().map(|raw| stored(raw, table, column)).collect()
}

/// sqlx's `FromRow` for each [`FromColumns`] record, so `query_as` reads them too.
macro_rules! from_row_by_columns {
    ($($record:ty),+ $(,)?) => {
        $(impl<R: Row + Columns> FromRow<'_, R> for $record {
            fn from_row(r: &R) -> Result<Self, sqlx::Error> {
                <$record>::from_columns(r)
            }
        })+
    };
}

from_row_by_columns!(
    UserRecord,
    RefreshHolder,
    TokenHolder,
    UpstreamLogin,
    SessionRecord,
    AuthCodeRecord,
    GrantRecord,
    LogoutDelivery,
    ConsentRecord,
    ClientSignIn,
);

/// The id a code replay's revocation returns (`RETURNING id` of a grant).
pub(super) struct ReturnedGrantId(pub(super) GrantId);

impl FromColumns for ReturnedGrantId {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        r.typed("grants", "id").map(Self)
    }
}

impl FromColumns for UserRecord {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        user_with_id(r, r.typed("users", "id")?)
    }
}

impl FromColumns for RefreshHolder {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        let grant = GrantRecord::from_columns(r)?;
        // `username` is NOT NULL in `users`: NULL here means the LEFT JOIN found no person.
        let user = match r.opt_text("username")? {
            Some(_) => Some(user_with_id(r, grant.user_id.clone())?),
            None => None,
        };
        Ok(Self { grant, user })
    }
}

impl FromColumns for super::FreshRotation {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        let grant = GrantRecord::from_columns(r)?;
        let user = user_with_id(r, grant.user_id.clone())?;
        Ok(Self {
            grant,
            user,
            membership: StoredMembership::from_columns(r)?.0,
        })
    }
}

/// A person's columns but `id`, which the caller has (from `users.id` or a grant's `user_id`).
fn user_with_id<R: Columns + ?Sized>(r: &R, id: DiscordId) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id,
        username: r.text("username")?,
        global_name: r.opt_text("global_name")?,
        avatar: r.opt_text("avatar")?,
        email: r.opt_text("email")?,
        email_verified: r.flag("email_verified")?,
        locale: r.opt_text("locale")?,
        updated_at: r.time("updated_at")?,
    })
}

impl FromColumns for TokenHolder {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            user: UserRecord::from_columns(r)?,
            membership: StoredMembership::from_columns(r)?.0,
        })
    }
}

/// A token's holder with what keeping it in memory depends on (`TOKEN_HOLDER_CACHEABLE`).
pub(super) struct CacheableHolder {
    pub(super) holder: TokenHolder,
    /// The earlier of the grant's and its session's expiry.
    pub(super) live_until: time::OffsetDateTime,
    pub(super) session: Option<SessionId>,
}

impl FromColumns for CacheableHolder {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        let grant_ends = r.time("grant_expires_at")?;
        let live_until = match r.opt_time("session_expires_at")? {
            Some(session_ends) => grant_ends.min(session_ends),
            None => grant_ends,
        };
        Ok(Self {
            holder: TokenHolder::from_columns(r)?,
            live_until,
            session: r.opt_typed("grants", "session_id")?,
        })
    }
}

/// A person's membership snapshot, when one was taken (`membership`, `membership_fetched_at`).
pub(super) struct StoredMembership(pub(super) Option<MembershipSnapshot>);

impl FromColumns for StoredMembership {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self(
            match (
                r.opt_text("membership")?,
                r.opt_time("membership_fetched_at")?,
            ) {
                (Some(snapshot), Some(fetched_at)) => Some(MembershipSnapshot {
                    snapshot,
                    fetched_at,
                }),
                _ => None,
            },
        ))
    }
}

/// The scopes a person consented to for a client (`GET_CONSENT`).
pub(super) struct ConsentScopes(pub(super) Scopes);

impl FromColumns for ConsentScopes {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        r.typed("consents", "scopes").map(Self)
    }
}

impl FromColumns for UpstreamLogin {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            state_hash: r.hash("state_hash")?,
            binding_hash: r.hash("binding_hash")?,
            pkce_verifier: r.typed("upstream_logins", "pkce_verifier")?,
            request: r.text("request")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    }
}

impl FromColumns for SessionRecord {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.typed("sessions", "id")?,
            secret_hash: r.hash("secret_hash")?,
            user_id: r.typed("sessions", "user_id")?,
            auth_time: r.time("auth_time")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
            last_seen_at: r.time("last_seen_at")?,
            device: SessionDevice {
                user_agent: r.opt_text("user_agent")?,
                ip: r.opt_text("ip")?,
            },
        })
    }
}

impl FromColumns for AuthCodeRecord {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        const TABLE: &str = "auth_codes";
        Ok(Self {
            code_hash: r.hash("code_hash")?,
            client_id: r.typed(TABLE, "client_id")?,
            redirect_uri: r.text("redirect_uri")?,
            user_id: r.typed(TABLE, "user_id")?,
            session_id: r.typed(TABLE, "session_id")?,
            grant_id: r.typed(TABLE, "grant_id")?,
            scopes: r.typed(TABLE, "scopes")?,
            nonce: r.opt_text("nonce")?,
            code_challenge: r.opt_typed(TABLE, "code_challenge")?,
            dpop_jkt: r.opt_typed(TABLE, "dpop_jkt")?,
            auth_time: r.time("auth_time")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    }
}

impl FromColumns for SpentCode {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        // The code's columns and the person's do not share a name (`sql::spent_code_columns!`).
        Ok(Self {
            code: AuthCodeRecord::from_columns(r)?,
            person: UserRecord::from_columns(r)?,
        })
    }
}

impl FromColumns for GrantRecord {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        const TABLE: &str = "grants";
        Ok(Self {
            id: r.typed(TABLE, "id")?,
            client_id: r.typed(TABLE, "client_id")?,
            user_id: r.typed(TABLE, "user_id")?,
            session_id: r.opt_typed(TABLE, "session_id")?,
            scopes: r.typed(TABLE, "scopes")?,
            auth_time: r.time("auth_time")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
            revoked_at: r.opt_time("revoked_at")?,
            dpop_jkt: r.opt_typed(TABLE, "dpop_jkt")?,
        })
    }
}

impl FromColumns for LogoutDelivery {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        const TABLE: &str = "logout_deliveries";
        Ok(Self {
            id: r.text("id")?,
            client_id: r.typed(TABLE, "client_id")?,
            session_id: r.opt_typed(TABLE, "session_id")?,
            user_id: r.typed(TABLE, "user_id")?,
            uri: r.text("uri")?,
            logout_token: r.text("logout_token")?,
            // Only ever written from a `u32`; a corrupted value saturates rather than wraps.
            attempts: u32::try_from(r.int("attempts")?).unwrap_or(u32::MAX),
            next_attempt_at: r.time("next_attempt_at")?,
            created_at: r.time("created_at")?,
        })
    }
}

impl FromColumns for ConsentRecord {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            client_id: r.typed("consents", "client_id")?,
            scopes: r.typed("consents", "scopes")?,
            granted_at: r.time("granted_at")?,
        })
    }
}

impl FromColumns for ClientSignIn {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            client_id: r.typed("grants", "client_id")?,
            last_sign_in: r.time("last_sign_in")?,
        })
    }
}
