//! SQLite backend: one file in WAL mode, for `dev`, tests and single-process deployments.
//!
//! The SQL and the `Store` methods are shared with Postgres (`sql.rs`, `shared.rs`); this file
//! holds only what differs: how the pool connects, how a writing transaction starts, and which
//! migrations apply.

use super::shared::emit_store_impl;
use super::sql::*;
use super::{
    AccessCheck, AuthCodeRecord, CodeRedemption, EndedSession, GrantRecord, NewRefreshToken,
    Rotation, SessionRecord, Store, StoreError, UpstreamLogin, UserRecord, from_unix, to_unix,
};
use crate::domain::TokenHash;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{FromRow, Row};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Writing transactions take the write lock up front: a deferred transaction that reads first
/// can fail with `SQLITE_BUSY` on upgrade (WAL snapshot), which `busy_timeout` does not retry.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The [`Store`] on one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the file named by `url` (WAL, foreign keys on), creating it and its folder if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        create_parent_folder(options.get_filename()).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// A writing transaction holding the write lock from its first statement.
    /// Applies this backend's migrations (embedded at compile time).
    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with(BEGIN_WRITE).await?)
    }
}

/// `sqlite://data/guildgate.db` must work on a fresh checkout, so `data/` is made on demand.
async fn create_parent_folder(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::Folder {
                    path: dir.display().to_string(),
                    source,
                })
        }
        _ => Ok(()),
    }
}

super::shared::impl_store!(SqliteStore);
super::shared::impl_helpers!(sqlx::Sqlite);
super::shared::impl_rows!(SqliteRow);
