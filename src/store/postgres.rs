//! Postgres backend: for production and for more than one guildgate process.
//!
//! The SQL is the same text as in `sqlite.rs` (`$N` parameters, `ON CONFLICT`, `RETURNING`), so
//! the two files differ only where the engines do: how the pool connects, and how a writing
//! transaction starts. Keep the two in step. Under READ COMMITTED a conditional `UPDATE` takes
//! the row lock and re-checks its `WHERE` after a concurrent winner commits, which is what makes
//! the single-use gates below exclusive.

use super::shared::emit_store_impl;
use super::sql::*;
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
    /// Applies this backend's migrations (embedded at compile time).
    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

super::shared::impl_store!(PgStore);
super::shared::impl_helpers!(sqlx::Postgres);
super::shared::impl_rows!(PgRow);
