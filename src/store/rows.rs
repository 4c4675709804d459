//! Row decoding, written once for both engines: every time column is Unix seconds, every hash
//! its stored text, and the `FromRow` impls below hold for any sqlx row that decodes those.

use super::{
    AuthCodeRecord, ClientSignIn, ConsentRecord, GrantRecord, LogoutDelivery, MembershipSnapshot,
    SessionDevice, SessionRecord, TokenHolder, UpstreamLogin, UserRecord, from_unix,
};
use crate::domain::TokenHash;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;

/// Typed access to the column kinds our schema uses, by column name.
///
/// Implemented for every row type whose engine decodes `TEXT`, `BIGINT`/`INTEGER` and `BOOLEAN`
/// (SQLite's and Postgres's), so the decoders below need only this one bound.
pub(super) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, name: &str) -> Result<String, sqlx::Error>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, name: &str) -> Result<Option<String>, sqlx::Error>;
    /// A `NOT NULL` integer column.
    fn int(&self, name: &str) -> Result<i64, sqlx::Error>;
    /// A nullable integer column.
    fn opt_int(&self, name: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A `BOOLEAN NOT NULL` column.
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error>;

    /// A `NOT NULL` time column.
    fn time(&self, name: &str) -> Result<OffsetDateTime, sqlx::Error> {
        self.int(name).map(from_unix)
    }
    /// A nullable time column.
    fn opt_time(&self, name: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
        Ok(self.opt_int(name)?.map(from_unix))
    }
    /// A stored SHA-256 (base64url text).
    fn hash(&self, name: &str) -> Result<TokenHash, sqlx::Error> {
        self.text(name).map(TokenHash::from_stored)
    }
}

impl<R> Columns for R
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, name: &str) -> Result<String, sqlx::Error> {
        self.try_get(name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(name)
    }
    fn int(&self, name: &str) -> Result<i64, sqlx::Error> {
        self.try_get(name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(name)
    }
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.try_get(name)
    }
}

impl<R: Row + Columns> FromRow<'_, R> for UserRecord {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.text("id")?,
            username: r.text("username")?,
            global_name: r.opt_text("global_name")?,
            avatar: r.opt_text("avatar")?,
            email: r.opt_text("email")?,
            email_verified: r.flag("email_verified")?,
            locale: r.opt_text("locale")?,
            updated_at: r.time("updated_at")?,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for TokenHolder {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        let membership = match (
            r.opt_text("membership")?,
            r.opt_time("membership_fetched_at")?,
        ) {
            (Some(snapshot), Some(fetched_at)) => Some(MembershipSnapshot {
                snapshot,
                fetched_at,
            }),
            _ => None,
        };
        Ok(Self {
            user: UserRecord::from_row(r)?,
            membership,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for UpstreamLogin {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            state_hash: r.hash("state_hash")?,
            binding_hash: r.hash("binding_hash")?,
            pkce_verifier: r.text("pkce_verifier")?,
            request: r.text("request")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for SessionRecord {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.text("id")?,
            secret_hash: r.hash("secret_hash")?,
            user_id: r.text("user_id")?,
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

impl<R: Row + Columns> FromRow<'_, R> for AuthCodeRecord {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            code_hash: r.hash("code_hash")?,
            client_id: r.text("client_id")?,
            redirect_uri: r.text("redirect_uri")?,
            user_id: r.text("user_id")?,
            session_id: r.text("session_id")?,
            grant_id: r.text("grant_id")?,
            scopes: r.text("scopes")?,
            nonce: r.opt_text("nonce")?,
            code_challenge: r.opt_text("code_challenge")?,
            auth_time: r.time("auth_time")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for GrantRecord {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.text("id")?,
            client_id: r.text("client_id")?,
            user_id: r.text("user_id")?,
            session_id: r.opt_text("session_id")?,
            scopes: r.text("scopes")?,
            auth_time: r.time("auth_time")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
            revoked_at: r.opt_time("revoked_at")?,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for LogoutDelivery {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.text("id")?,
            client_id: r.text("client_id")?,
            session_id: r.opt_text("session_id")?,
            user_id: r.text("user_id")?,
            uri: r.text("uri")?,
            logout_token: r.text("logout_token")?,
            // Only ever written from a `u32`; a corrupted value saturates rather than wraps.
            attempts: u32::try_from(r.int("attempts")?).unwrap_or(u32::MAX),
            next_attempt_at: r.time("next_attempt_at")?,
            created_at: r.time("created_at")?,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for ConsentRecord {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            client_id: r.text("client_id")?,
            scopes: r.text("scopes")?,
            granted_at: r.time("granted_at")?,
        })
    }
}

impl<R: Row + Columns> FromRow<'_, R> for ClientSignIn {
    fn from_row(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            client_id: r.text("client_id")?,
            last_sign_in: r.time("last_sign_in")?,
        })
    }
}
