//! SQLite backend: one file in WAL mode, for `dev`, tests and single-process deployments.
//!
//! The SQL, the row decoding and the `Store` methods are shared with Postgres (`sql.rs`,
//! `rows.rs`, `shared.rs`, `lifecycle.rs`); this file holds only what differs: how the pool
//! connects, how a writing transaction starts, which migrations apply, and how the back-channel
//! logout queue is claimed.

use super::{ConnectError, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Writing transactions take the write lock up front: a deferred transaction that reads first
/// can fail with `SQLITE_BUSY` on upgrade (WAL snapshot), which `busy_timeout` does not retry.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// This backend's migrations, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The [`Store`](super::Store) on one SQLite file.
///
/// SQLite lets one connection write at a time. Many writing connections would queue inside
/// SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and made the p99 of
/// concurrent refreshes exceed a second; so every write goes through one dedicated connection,
/// and writers queue in order (and without sleeping) for it in the pool. Reads use the other
/// connections: in WAL mode they never wait for the writer.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens the file named by `url` (WAL, foreign keys on), creating it and its folder if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let failed = |cause| StoreError::Connect(ConnectError::new(url, cause));
        let options = SqliteConnectOptions::from_str(url)
            .map_err(failed)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durability, chosen deliberately: in WAL mode NORMAL syncs at checkpoints, not at
            // every commit. The database never corrupts; a power cut (not a crash of guildgate)
            // can lose the last commits. For a refresh that means the app holds a rotated
            // refresh token the database forgot, and signs the person in again.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        create_parent_folder(options.get_filename()).await?;
        // The writer first: it creates the file and switches it to WAL.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            .after_release(|conn, _| Box::pin(discard_if_in_transaction(conn)))
            .connect_with(options.clone())
            .await
            .map_err(failed)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.saturating_sub(1).max(1))
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(failed)?;
        Ok(Self { reader, writer })
    }

    /// Connections for statements that only read.
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The readers' and the writer's connections together.
    fn pools_in_use(&self) -> super::PoolUsage {
        let (reader, writer) = (
            super::PoolUsage::of(&self.reader),
            super::PoolUsage::of(&self.writer),
        );
        super::PoolUsage {
            size: reader.size + writer.size,
            idle: reader.idle + writer.idle,
        }
    }

    /// The one connection that writes.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Moves up to `$3` due deliveries (`next_attempt_at <= $1`) to `$2`, returning them. Run
    /// inside [`begin_write`](Self::begin_write), which holds the file's single write lock, so
    /// no other connection or process can claim the same rows meanwhile.
    const CLAIM_LOGOUTS: &str = "UPDATE logout_deliveries SET next_attempt_at = $2 \
        WHERE id IN (SELECT id FROM logout_deliveries WHERE next_attempt_at <= $1 \
            ORDER BY next_attempt_at LIMIT $3) \
        RETURNING id, client_id, session_id, user_id, uri, logout_token, attempts, \
            next_attempt_at, created_at";

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// A writing transaction holding the write lock from its first statement.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        Ok(self.writer.begin_with(BEGIN_WRITE).await?)
    }
}

/// Keeps the writer usable after a failed commit. SQLite rolls a transaction back by itself
/// when a write fails with a full disk or an I/O error; sqlx still counts it as open, its
/// rollback then fails, and every later `BEGIN` on that connection would be refused ("non-zero
/// transaction depth") until a restart. A connection released still counted inside a
/// transaction (after its queued rollback has run: the ping waits for it) is closed instead,
/// and the pool opens a fresh one.
async fn discard_if_in_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if conn.is_in_transaction() {
        conn.ping().await?;
    }
    Ok(!conn.is_in_transaction())
}

/// `sqlite://data/guildgate.db` must work on a fresh checkout, so `data/` is made on demand.
async fn create_parent_folder(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|cause| StoreError::Folder {
                    path: dir.display().to_string(),
                    cause,
                })
        }
        _ => Ok(()),
    }
}

super::shared::impl_store!(SqliteStore, sqlx::Sqlite);
